//===- KernelBuilder.h - emits scf loops and vector code --------*- C++ -*-===//
//
// The small vocabulary the swan vector lowerings write their kernels in:
// constants, loops with carried values, vector loads converted to f32,
// reductions, results written into tensors.
// Private to codegen/lib/cpu.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_CPU_KERNELBUILDER_H
#define SWAN_CODEGEN_CPU_KERNELBUILDER_H

#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"

namespace swan {

class KernelBuilder {
public:
  KernelBuilder(mlir::OpBuilder &builder, mlir::Location loc)
      : b(builder), loc(loc) {}

  template <typename OpTy, typename... Args> OpTy create(Args &&...args) {
    return OpTy::create(b, loc, std::forward<Args>(args)...);
  }

  mlir::OpBuilder &builder() { return b; }
  mlir::Location location() const { return loc; }

  mlir::Value index(int64_t value);
  mlir::Value f32(double value);
  mlir::Value i32(int64_t value);
  mlir::Value negativeInfinity();

  mlir::VectorType vectorOf(int64_t lanes, mlir::Type elementType);
  mlir::Value splat(mlir::Value scalar, int64_t lanes);
  /// Lanes `0, 1, ..., lanes-1` plus `first`, as i32.
  mlir::Value laneNumbers(int64_t lanes, int64_t first);
  /// The first `count` lanes set (count may exceed `lanes`).
  mlir::Value prefixMask(mlir::Value count, int64_t lanes);
  mlir::Value zeroVector(int64_t lanes, mlir::Type elementType);

  /// A read-only memref view of `tensor` with a unit innermost stride, so
  /// that bufferization passes the caller's buffer through without a copy.
  mlir::Value view(mlir::Value tensor);
  /// A stack buffer (L1-resident scratch) of the given shape.
  mlir::Value scratch(llvm::ArrayRef<int64_t> shape, mlir::Type elementType);
  /// A tensor.empty of `type`, its dynamic sizes taken from `sizes` (one
  /// candidate per dimension).
  mlir::Value emptyTensor(mlir::RankedTensorType type,
                          llvm::ArrayRef<mlir::Value> sizes);
  /// Writes `vector` into `tensor` at `indices`. `inBounds` false lets a
  /// vector longer than the tensor's row write only the row.
  mlir::Value writeToTensor(mlir::Value vector, mlir::Value tensor,
                            mlir::ValueRange indices, bool inBounds = true);

  /// Converts floats (scalar or vector) to `elementType` by extf/truncf;
  /// int8 stored values (SWAN-Q8, signed) widen to a float by sitofp.
  mlir::Value convertFloat(mlir::Value value, mlir::Type elementType);
  /// `lanes` elements of `memref` at `indices`, as f32. With a mask, lanes
  /// outside it read as zero and touch no memory.
  mlir::Value loadF32(mlir::Value memref, mlir::ValueRange indices,
                      int64_t lanes, mlir::Value mask = {});
  /// `lanes` unsigned indices of `memref` at `indices`, as i32.
  mlir::Value loadIndices(mlir::Value memref, mlir::ValueRange indices,
                          int64_t lanes, mlir::Value mask);
  /// Stores an f32 vector as the memref's element type.
  void storeConverted(mlir::Value vector, mlir::Value memref,
                      mlir::ValueRange indices);
  /// Asks for row `row` of the 2-D memref `rows`, one prefetch per 64 bytes:
  /// rows are contiguous, so a stream of rows is covered whatever their
  /// alignment (a 128-byte row may span three cache lines).
  void prefetchRow(mlir::Value rows, mlir::Value row);

  mlir::Value fma(mlir::Value a, mlir::Value b, mlir::Value c);
  mlir::Value add(mlir::Value a, mlir::Value b);
  mlir::Value sub(mlir::Value a, mlir::Value b);
  mlir::Value mul(mlir::Value a, mlir::Value b);
  mlir::Value sum(mlir::Value vector);
  mlir::Value maximum(mlir::Value vector);
  mlir::Value exp(mlir::Value value);

  /// `for (iv = lower; iv < upper; iv += step)` carrying `inits`; `body`
  /// returns the values carried to the next iteration.
  using LoopBody = llvm::function_ref<llvm::SmallVector<mlir::Value>(
      mlir::Value iv, mlir::ValueRange carried)>;
  llvm::SmallVector<mlir::Value> loop(mlir::Value lower, mlir::Value upper,
                                      mlir::Value step, mlir::ValueRange inits,
                                      LoopBody body);
  void loop(mlir::Value lower, mlir::Value upper, mlir::Value step,
            llvm::function_ref<void(mlir::Value iv)> body);
  /// `if (condition) body();`
  void when(mlir::Value condition, llvm::function_ref<void()> body);
  /// `if (condition) body(); else otherwise();`
  void when(mlir::Value condition, llvm::function_ref<void()> body,
            llvm::function_ref<void()> otherwise);

private:
  mlir::OpBuilder &b;
  mlir::Location loc;
};

} // namespace swan

#endif // SWAN_CODEGEN_CPU_KERNELBUILDER_H
