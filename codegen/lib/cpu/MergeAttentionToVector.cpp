//===- MergeAttentionToVector.cpp - swan.merge_attention to vectors -------===//

#include "SwanToVectorPatterns.h"

#include "KernelBuilder.h"
#include "swan/Dialect/SwanOps.h"

using namespace mlir;
using namespace swan;

namespace {

struct LowerMergeAttention : OpRewritePattern<MergeAttentionOp> {
  LowerMergeAttention(MLIRContext *context,
                      const VectorLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}

  LogicalResult matchAndRewrite(MergeAttentionOp op,
                                PatternRewriter &rewriter) const override {
    auto accType = cast<RankedTensorType>(op.getAccumulator().getType());
    int64_t groups = accType.getDimSize(1);
    int64_t headDim = accType.getDimSize(2);
    FailureOr<int64_t> lanes = lanesFor(headDim, options.vectorWidth);
    if (failed(lanes) || ShapedType::isDynamic(groups))
      return rewriter.notifyMatchFailure(op, "group or head dimension");
    int64_t chunks = headDim / *lanes;
    KernelBuilder kb(rewriter, op.getLoc());
    Type f32 = rewriter.getF32Type();
    VectorType chunkType = kb.vectorOf(*lanes, f32);
    Value maxima = kb.view(op.getMax());
    Value sums = kb.view(op.getSum());
    Value partials = kb.view(op.getAccumulator());
    Value rotation =
        op.getValueRotation() ? kb.view(op.getValueRotation()) : Value();
    auto resultType = cast<RankedTensorType>(op.getResult().getType());
    Value out =
        kb.emptyTensor(resultType, {kb.index(groups), kb.index(headDim)});
    Value merged = kb.scratch({headDim}, f32);
    Value rotatedBack = kb.scratch({headDim}, f32);
    Value blocks = kb.create<memref::DimOp>(maxima, int64_t(0));
    Value minusInf = kb.negativeInfinity();
    Value zeroF = kb.f32(0.0);

    SmallVector<Value> result = kb.loop(
        kb.index(0), kb.index(groups), kb.index(1), {out},
        [&](Value g, ValueRange outs) {
          // A block counts iff its sum is positive: empty blocks carry
          // max = -inf and sum = 0 and may hold anything else.
          auto isLive = [&](Value s) {
            Value sum = kb.create<memref::LoadOp>(sums, ValueRange{s, g});
            Value max = kb.create<memref::LoadOp>(maxima, ValueRange{s, g});
            Value live = kb.create<arith::AndIOp>(
                kb.create<arith::CmpFOp>(arith::CmpFPredicate::OGT, sum, zeroF),
                kb.create<arith::CmpFOp>(arith::CmpFPredicate::OGT, max,
                                         minusInf));
            return std::make_tuple(live, max, sum);
          };
          Value globalMax =
              kb.loop(kb.index(0), blocks, kb.index(1), {minusInf},
                      [&](Value s, ValueRange m) {
                        auto [live, max, sum] = isLive(s);
                        (void)sum;
                        Value candidate =
                            kb.create<arith::SelectOp>(live, max, minusInf);
                        return SmallVector<Value>{
                            kb.create<arith::MaximumFOp>(m[0], candidate)};
                      })[0];
          Value zero = kb.zeroVector(*lanes, f32);
          for (int64_t c = 0; c < chunks; ++c)
            kb.create<vector::StoreOp>(zero, merged,
                                       ValueRange{kb.index(c * *lanes)});
          Value total = kb.loop(
              kb.index(0), blocks, kb.index(1), {zeroF},
              [&](Value s, ValueRange l) {
                auto [live, max, sum] = isLive(s);
                Value weight = kb.create<arith::SelectOp>(
                    live, kb.exp(kb.sub(max, globalMax)), zeroF);
                kb.when(live, [&] {
                  Value w = kb.splat(weight, *lanes);
                  for (int64_t c = 0; c < chunks; ++c) {
                    Value at = kb.index(c * *lanes);
                    Value acc = kb.create<vector::LoadOp>(chunkType, merged,
                                                          ValueRange{at});
                    Value part = kb.loadF32(partials, {s, g, at}, *lanes);
                    kb.create<vector::StoreOp>(kb.fma(w, part, acc), merged,
                                               ValueRange{at});
                  }
                });
                return SmallVector<Value>{kb.create<arith::SelectOp>(
                    live, kb.fma(weight, sum, l[0]), l[0])};
              })[0];
          Value positive =
              kb.create<arith::CmpFOp>(arith::CmpFPredicate::OGT, total, zeroF);
          Value inverse = kb.create<arith::SelectOp>(
              positive, kb.create<arith::DivFOp>(kb.f32(1.0), total), zeroF);
          Value source = merged;
          if (rotation) {
            // o · Rᵀ: output i is the dot product of o with row i of R.
            kb.loop(kb.index(0), kb.index(headDim), kb.index(1), [&](Value i) {
              Value acc = kb.zeroVector(*lanes, f32);
              for (int64_t c = 0; c < chunks; ++c) {
                Value at = kb.index(c * *lanes);
                acc = kb.fma(kb.create<vector::LoadOp>(chunkType, merged,
                                                       ValueRange{at}),
                             kb.loadF32(rotation, {i, at}, *lanes), acc);
              }
              kb.create<memref::StoreOp>(kb.sum(acc), rotatedBack,
                                         ValueRange{i});
            });
            source = rotatedBack;
          }
          Value written = outs[0];
          Value scale = kb.splat(inverse, *lanes);
          for (int64_t c = 0; c < chunks; ++c) {
            Value at = kb.index(c * *lanes);
            Value chunk = kb.mul(
                kb.create<vector::LoadOp>(chunkType, source, ValueRange{at}),
                scale);
            written = kb.writeToTensor(
                kb.convertFloat(chunk, resultType.getElementType()), written,
                {g, at});
          }
          return SmallVector<Value>{written};
        });
    rewriter.replaceOp(op, result);
    return success();
  }

  VectorLoweringOptions options;
};

} // namespace

void swan::populateMergeAttentionToVectorPatterns(
    RewritePatternSet &patterns, const VectorLoweringOptions &options) {
  patterns.add<LowerMergeAttention>(patterns.getContext(), options);
}
