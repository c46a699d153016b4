//===- RotateCompressKernels.cpp - swan.rotate and swan.compress kernels --===//
//
// One block per token, one thread per dimension: the token's row in shared
// memory, one rotated dimension per thread, and for compress the rank of its
// magnitude in the row.
//
//===----------------------------------------------------------------------===//

#include "SwanToGPUKernels.h"

#include "GPUKernelBuilder.h"
#include "swan/Codegen/GPU/KernelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace swan;

void swan::emitRotateOrCompress(ImplicitLocOpBuilder &b,
                                gpu::GPUModuleOp module, StringRef name,
                                ArrayRef<Value> sources, bool compress,
                                bool masks, int64_t dim) {
  MLIRContext *ctx = b.getContext();
  SmallVector<Type> argTypes =
      llvm::map_to_vector(sources, [](Value v) { return v.getType(); });
  SmallVector<Type> workgroup = {workgroupMemRef(ctx, {dim}, b.getF32Type()),
                                 workgroupMemRef(ctx, {dim}, b.getF32Type()),
                                 workgroupMemRef(ctx, {dim}, b.getI32Type())};
  gpu::GPUFuncOp kernel =
      createKernel(b, module, name, argTypes, workgroup, dim);
  enterKernel(b, kernel);
  GPUKernelBuilder kb(b);
  auto args = kernel.getArguments();
  auto shared = kernel.getWorkgroupAttributions();
  Value x = args[0], r = args[1];
  Value xs = shared[0], ys = shared[1], flags = shared[2];

  Value e = kb.threadId();
  Value token = kb.blockId(gpu::Dimension::x);
  Value zero = kb.index(0), one = kb.index(1), dimV = kb.index(dim);
  // Every thread walks the whole shared row, V words per load.
  const int64_t V = dim % 4 == 0 ? 4 : dim % 2 == 0 ? 2 : 1;
  Value vectorV = kb.index(V);
  kb.store(kb.toF32(kb.load(x, {token, e})), xs, {e});
  kb.barrier();
  // Column e of R is read by consecutive threads: coalesced.
  Value y = kb.loop(zero, dimV, vectorV, {kb.f32(0)},
                    [&](Value d, ValueRange acc) -> SmallVector<Value> {
                      SmallVector<Value> xd = kb.loadVector(xs, {d}, V);
                      Value sum = acc[0];
                      for (int64_t i = 0; i < V; ++i)
                        sum = kb.fma(
                            sum, xd[i],
                            kb.toF32(kb.load(r, {kb.add(d, kb.index(i)), e})));
                      return {sum};
                    })[0];
  if (!compress) {
    Value out = args[2];
    kb.store(kb.fromF32(y, cast<MemRefType>(out.getType()).getElementType()),
             out, {token, e});
    return;
  }
  Value k = args[2], values = args[3], indices = args[4];
  Value magnitude = kb.absF(y);
  kb.store(magnitude, ys, {e});
  kb.barrier();
  // Rank of |y| among the row, ties to the lower index: the k smallest
  // ranks are kept.
  Value rank = kb.loop(
      zero, dimV, vectorV, {zero},
      [&](Value d, ValueRange acc) -> SmallVector<Value> {
        SmallVector<Value> others = kb.loadVector(ys, {d}, V);
        Value count = acc[0];
        for (int64_t i = 0; i < V; ++i) {
          Value larger = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT,
                                               others[i], magnitude);
          Value tie = arith::AndIOp::create(
              b,
              arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, others[i],
                                    magnitude),
              kb.ult(kb.add(d, kb.index(i)), e));
          Value before = arith::OrIOp::create(b, larger, tie);
          count = arith::SelectOp::create(b, before, kb.add(count, one), count);
        }
        return {count};
      })[0];
  Value keep = kb.ult(rank, k);
  kb.store(arith::ExtUIOp::create(b, b.getI32Type(), keep), flags, {e});
  kb.barrier();
  kb.ifThen(keep, [&] {
    // Kept entries are written in ascending dimension order: the position
    // is the count of kept dimensions below e, read V flags at a time up to
    // the vector holding e.
    Value end = kb.mul(kb.div(kb.add(e, kb.index(V - 1)), vectorV), vectorV);
    Value position =
        kb.loop(zero, end, vectorV, {zero},
                [&](Value d, ValueRange acc) -> SmallVector<Value> {
                  SmallVector<Value> kept = kb.loadVector(flags, {d}, V);
                  Value count = acc[0];
                  for (int64_t i = 0; i < V; ++i) {
                    Value below = kb.ult(kb.add(d, kb.index(i)), e);
                    count =
                        kb.add(count, arith::SelectOp::create(
                                          b, below, kb.toIndex(kept[i]), zero));
                  }
                  return {count};
                })[0];
    auto valueType = cast<MemRefType>(values.getType()).getElementType();
    kb.store(kb.fromF32(y, valueType), values, {token, position});
    if (!masks) {
      auto indexType = cast<MemRefType>(indices.getType()).getElementType();
      kb.store(kb.fromIndex(e, indexType), indices, {token, position});
    }
  });
  if (!masks)
    return;
  // Thread 8 i gathers the keep flags of dimensions 8 i .. 8 i + 7 into
  // byte i of the mask (D is a multiple of 8).
  Value eight = kb.index(8);
  kb.ifThen(kb.eq(kb.rem(e, eight), zero), [&] {
    Type i32 = b.getI32Type();
    Value byte = arith::ConstantOp::create(b, b.getI32IntegerAttr(0));
    SmallVector<Value> byteFlags = kb.loadVector(flags, {e}, 4);
    llvm::append_range(byteFlags,
                       kb.loadVector(flags, {kb.add(e, kb.index(4))}, 4));
    for (int64_t i = 0; i < 8; ++i)
      byte = arith::OrIOp::create(
          b, byte,
          arith::ShLIOp::create(
              b, byteFlags[i],
              arith::ConstantOp::create(b, IntegerAttr::get(i32, i))));
    kb.store(arith::TruncIOp::create(b, b.getI8Type(), byte), indices,
             {token, kb.div(e, eight)});
  });
}
