//===- FuseRotateWinnow.cpp - swan.rotate + swan.winnow -> compress -------===//

#include "swan/Passes/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace swan {
#define GEN_PASS_DEF_SWANFUSEROTATEWINNOW
#include "swan/Passes/Passes.h.inc"
} // namespace swan

using namespace mlir;
using namespace swan;

namespace {
struct FuseRotateIntoWinnow : OpRewritePattern<WinnowOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(WinnowOp winnow,
                                PatternRewriter &rewriter) const override {
    auto rotate = winnow.getInput().getDefiningOp<RotateOp>();
    // Another user would still need the rotated rows stored.
    if (!rotate || !rotate->hasOneUse())
      return rewriter.notifyMatchFailure(winnow, "input is not a lone rotate");
    Value scales = winnow.getScales();
    rewriter.replaceOpWithNewOp<CompressOp>(
        winnow, winnow.getValues().getType(), winnow.getIndices().getType(),
        scales ? scales.getType() : Type(), rotate.getInput(),
        rotate.getRotation(), winnow.getK(), winnow.getEncoding());
    rewriter.eraseOp(rotate);
    return success();
  }
};

struct SwanFuseRotateWinnowPass
    : swan::impl::SwanFuseRotateWinnowBase<SwanFuseRotateWinnowPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFuseRotateWinnowPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace

void swan::populateFuseRotateWinnowPatterns(RewritePatternSet &patterns) {
  patterns.add<FuseRotateIntoWinnow>(patterns.getContext());
}
