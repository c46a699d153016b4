//===- PartialAttention.cpp - what both partial attention kernels share ---===//

#include "PartialAttention.h"

#include "SwanToVectorPatterns.h"

using namespace mlir;
using namespace swan;

FailureOr<int64_t>
swan::partialAttentionLanes(PartialAttentionOp op,
                            const VectorLoweringOptions &options,
                            PatternRewriter &rewriter) {
  RankedTensorType queryType = op.getQuery().getType();
  if (!queryType.hasStaticShape())
    return rewriter.notifyMatchFailure(op, "query shape must be static");
  FailureOr<int64_t> lanes =
      lanesFor(queryType.getDimSize(1), options.vectorWidth);
  if (failed(lanes) || options.tileSize < 1)
    return rewriter.notifyMatchFailure(op, "head dimension not tiled");
  if ((op.getKeyEncoding() == Encoding::mask ||
       op.getValueEncoding() == Encoding::mask) &&
      *lanes % 8 != 0)
    return rewriter.notifyMatchFailure(op, "masks need chunks of 8 lanes");
  return lanes;
}

/// Token expansion needs 16 lanes (vp2intersect is 16 x i32) and storage
/// it can expand: f32, or f16 / bf16 in pairs of chunks.
static bool canExpand(PartialAttentionOp op, int64_t lanes,
                      const VectorLoweringOptions &options) {
  if (!options.expandWinnowed || lanes != 16)
    return false;
  int64_t headDim = op.getQuery().getType().getDimSize(1);
  for (Value v : {op.getKeyValues(), op.getValueValues()}) {
    Type t = cast<RankedTensorType>(v.getType()).getElementType();
    bool sixteen = t.isF16() || t.isBF16();
    if (!t.isF32() && !(sixteen && headDim % 32 == 0))
      return false;
  }
  return true;
}

bool swan::takesWinnowedKernel(PartialAttentionOp op, int64_t lanes,
                               const VectorLoweringOptions &options) {
  return op.getKeyIndices() && op.getValueIndices() &&
         !canExpand(op, lanes, options);
}

SmallVector<Value> swan::partialResults(KernelBuilder &kb,
                                        PartialAttentionOp op, Value max,
                                        Value sum, Value accumulator,
                                        int64_t groups, int64_t headDim) {
  Type f32 = kb.builder().getF32Type();
  Value zero = kb.index(0);
  auto emptyLike = [&](Value result) {
    auto type = cast<RankedTensorType>(result.getType());
    return kb.emptyTensor(type, {kb.index(groups), kb.index(headDim)});
  };
  Value maxOut = kb.writeToTensor(max, emptyLike(op.getMax()), {zero});
  Value sumOut = kb.writeToTensor(sum, emptyLike(op.getSum()), {zero});
  Value accOut = emptyLike(op.getAccumulator());
  for (int64_t g = 0; g < groups; ++g)
    accOut = kb.writeToTensor(
        kb.create<vector::LoadOp>(kb.vectorOf(headDim, f32), accumulator,
                                  ValueRange{kb.index(g), zero}),
        accOut, {kb.index(g), zero});
  return {maxOut, sumOut, accOut};
}

int64_t swan::accumulatorRegisters(int64_t lanes) {
  return lanes >= 16 ? 16 : 8;
}

void swan::forPasses(KernelBuilder &kb, int64_t chunks, int64_t perPass,
                     function_ref<void(Value c0, int64_t n)> pass) {
  int64_t whole = chunks / perPass * perPass;
  if (whole == perPass)
    pass(kb.index(0), perPass);
  else
    kb.loop(kb.index(0), kb.index(whole), kb.index(perPass),
            [&](Value c0) { pass(c0, perPass); });
  if (whole < chunks)
    pass(kb.index(whole), chunks - whole);
}
