//===- ApproximateMath.cpp - math.exp as a vector polynomial --------------===//

#include "swan/Codegen/Passes.h"

#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace swan {
#define GEN_PASS_DEF_SWANAPPROXIMATEMATH
#include "swan/Codegen/Passes.h.inc"
} // namespace swan

using namespace mlir;

namespace {
struct SwanApproximateMathPass
    : swan::impl::SwanApproximateMathBase<SwanApproximateMathPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      name.consume_front("math.");
      return name == "exp";
    });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
