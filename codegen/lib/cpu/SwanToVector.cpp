//===- SwanToVector.cpp - the swan-lower-to-vector pass -------------------===//
//
// One pattern set per op family (SwanToVectorPatterns.h), applied greedily;
// what is left could not be lowered.
//
//===----------------------------------------------------------------------===//

#include "SwanToVectorPatterns.h"

#include "swan/Dialect/SwanOps.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/TargetParser/Host.h"

namespace swan {
#define GEN_PASS_DEF_SWANLOWERTOVECTOR
#include "swan/Codegen/Passes.h.inc"
} // namespace swan

using namespace mlir;
using namespace swan;

FailureOr<int64_t> swan::lanesFor(int64_t headDim, int64_t vectorWidth) {
  if (ShapedType::isDynamic(headDim) || vectorWidth < 1)
    return failure();
  int64_t lanes = std::min(headDim, vectorWidth);
  if (headDim % lanes != 0)
    return failure();
  return lanes;
}

namespace {

struct SwanLowerToVectorPass
    : swan::impl::SwanLowerToVectorBase<SwanLowerToVectorPass> {
  using Base::Base;

  void runOnOperation() override {
    VectorLoweringOptions options;
    options.vectorWidth = vectorWidth > 0 ? vectorWidth : hostVectorWidth();
    options.tileSize = tileSize;
    options.expandWinnowed = expandWinnowed;
    if (options.tileSize < 1) {
      getOperation()->emitError("tile-size must be positive");
      return signalPassFailure();
    }
    RewritePatternSet patterns(&getContext());
    populateSwanToVectorPatterns(patterns, options);
    GreedyRewriteConfig config;
    config.enableFolding(false);
    if (failed(
            applyPatternsGreedily(getOperation(), std::move(patterns), config)))
      return signalPassFailure();
    // Whatever is left could not be lowered: say which and why.
    WalkResult leftover = getOperation()->walk([&](Operation *op) {
      if (isa<RotateOp, WinnowOp, CompressOp, PartialAttentionOp,
              MergeAttentionOp>(op)) {
        op->emitError() << "cannot lower to vectors of " << options.vectorWidth
                        << " lanes: needs a static head dimension that the "
                           "vector width divides (and a static group size)";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (leftover.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace

int64_t swan::hostVectorWidth() {
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  if (features.lookup("avx512f"))
    return 16;
  if (features.lookup("avx"))
    return 8;
  return 4;
}

void swan::populateSwanToVectorPatterns(RewritePatternSet &patterns,
                                        const VectorLoweringOptions &options) {
  populateRotateWinnowCompressToVectorPatterns(patterns, options);
  populateDensePartialAttentionToVectorPatterns(patterns, options);
  populateWinnowedPartialAttentionToVectorPatterns(patterns, options);
  populateMergeAttentionToVectorPatterns(patterns, options);
}
