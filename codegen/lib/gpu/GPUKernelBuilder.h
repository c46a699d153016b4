//===- GPUKernelBuilder.h - one thread's code in a gpu kernel ---*- C++ -*-===//
//
// The handful of IR idioms every swan GPU kernel body is made of, and the
// kernels' creation. Private to codegen/lib/gpu.
//
// Not lib/cpu's KernelBuilder, which writes vector code: the two share only
// constants, loops and ifs, too little for a common base.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_GPU_GPUKERNELBUILDER_H
#define SWAN_CODEGEN_GPU_GPUKERNELBUILDER_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace swan {

class GPUKernelBuilder {
public:
  explicit GPUKernelBuilder(mlir::ImplicitLocOpBuilder &b) : b(b) {}

  mlir::ImplicitLocOpBuilder &builder() { return b; }

  mlir::Value index(int64_t v);
  mlir::Value f32(double v);
  mlir::Value negInf();

  /// Float or integer arithmetic by the operands' type; integers divide
  /// unsigned.
  mlir::Value add(mlir::Value x, mlir::Value y);
  mlir::Value sub(mlir::Value x, mlir::Value y);
  mlir::Value mul(mlir::Value x, mlir::Value y);
  mlir::Value div(mlir::Value x, mlir::Value y);
  mlir::Value rem(mlir::Value x, mlir::Value y);
  /// acc + x · y.
  mlir::Value fma(mlir::Value acc, mlir::Value x, mlir::Value y);
  mlir::Value minIndex(mlir::Value x, mlir::Value y);
  mlir::Value maxF(mlir::Value x, mlir::Value y);
  mlir::Value absF(mlir::Value x);
  /// One ex2.approx.f32 instruction: 2 ulp, exp2(-inf) = 0.
  mlir::Value exp2(mlir::Value x);
  mlir::Value ult(mlir::Value x, mlir::Value y);
  mlir::Value eq(mlir::Value x, mlir::Value y);

  mlir::Value threadId();
  mlir::Value blockId(mlir::gpu::Dimension d);
  mlir::Value gridDim(mlir::gpu::Dimension d);
  void barrier();
  /// A hint that L2 fetch the line holding `address` (an index).
  void prefetchL2(mlir::Value address);
  void warpSync();

  /// Butterfly reduction over the 32 lanes of a warp; every lane gets the
  /// result.
  mlir::Value warpReduce(mlir::Value v, bool isMax);
  /// Sums `values` (a power of two, at most 32 per lane) over the 32 lanes of
  /// a warp. While a lane holds fewer values than twice the shuffle distance,
  /// plain butterfly steps add every value; then transposing steps halve the
  /// values a lane holds, so 32 sums cost 31 shuffles instead of 160. Lane l
  /// ends with the sum of value l mod values.size().
  mlir::Value transposeReduce(llvm::SmallVector<mlir::Value> values,
                              mlir::Value lane);

  mlir::Value load(mlir::Value memref, mlir::ValueRange indices);
  void store(mlir::Value v, mlir::Value memref, mlir::ValueRange indices);
  /// `count` consecutive elements of the innermost dimension in one access
  /// (ld.shared.v4 and the like; shared buffers are 16-byte aligned).
  llvm::SmallVector<mlir::Value>
  loadVector(mlir::Value memref, mlir::ValueRange indices, int64_t count);
  void storeVector(llvm::ArrayRef<mlir::Value> elements, mlir::Value memref,
                   mlir::ValueRange indices);
  static uint64_t vectorAlignment(int64_t count, mlir::Type element);

  mlir::Value dim(mlir::Value memref, int64_t i);

  mlir::Value toF32(mlir::Value v);
  mlir::Value fromF32(mlir::Value v, mlir::Type to);
  /// Stored indices and lengths are unsigned integers of any width.
  mlir::Value toIndex(mlir::Value v);
  mlir::Value fromIndex(mlir::Value v, mlir::Type to);

  /// for (iv = lb; iv < ub; iv += step) body(iv)
  void loop(mlir::Value lb, mlir::Value ub, mlir::Value step,
            llvm::function_ref<void(mlir::Value)> body);
  /// A loop carrying values: body returns the next values of `init`.
  llvm::SmallVector<mlir::Value>
  loop(mlir::Value lb, mlir::Value ub, mlir::Value step, mlir::ValueRange init,
       llvm::function_ref<llvm::SmallVector<mlir::Value>(mlir::Value,
                                                         mlir::ValueRange)>
           body);
  void ifThen(mlir::Value cond, llvm::function_ref<void()> then);
  void ifThenElse(mlir::Value cond, llvm::function_ref<void()> then,
                  llvm::function_ref<void()> otherwise);

private:
  mlir::ImplicitLocOpBuilder &b;
};

/// A workgroup (shared memory) memref type.
mlir::MemRefType workgroupMemRef(mlir::MLIRContext *ctx,
                                 llvm::ArrayRef<int64_t> shape,
                                 mlir::Type element);

/// Creates an empty kernel with a known block size; the caller fills its
/// body before the gpu.return.
mlir::gpu::GPUFuncOp createKernel(mlir::ImplicitLocOpBuilder &b,
                                  mlir::gpu::GPUModuleOp module,
                                  llvm::StringRef name,
                                  mlir::TypeRange arguments,
                                  mlir::TypeRange workgroup, int64_t blockSize);

/// Positions the builder before a kernel's terminator.
void enterKernel(mlir::ImplicitLocOpBuilder &b, mlir::gpu::GPUFuncOp kernel);

} // namespace swan

#endif // SWAN_CODEGEN_GPU_GPUKERNELBUILDER_H
