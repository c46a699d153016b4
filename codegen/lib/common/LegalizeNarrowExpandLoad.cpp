//===- LegalizeNarrowExpandLoad.cpp - f16 expandload as i16 ---------------===//

#include "swan/Codegen/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace swan {
#define GEN_PASS_DEF_SWANLEGALIZENARROWEXPANDLOAD
#include "swan/Codegen/Passes.h.inc"
} // namespace swan

using namespace mlir;

namespace {
struct NarrowExpandLoadAsBits : OpRewritePattern<vector::ExpandLoadOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(vector::ExpandLoadOp op,
                                PatternRewriter &rewriter) const override {
    VectorType type = op.getVectorType();
    Type element = type.getElementType();
    auto memrefType = dyn_cast<MemRefType>(op.getBase().getType());
    if (!memrefType || !isa<FloatType>(element) ||
        element.getIntOrFloatBitWidth() != 16 || type.getRank() != 1)
      return rewriter.notifyMatchFailure(op, "not a 16-bit float load");

    Location loc = op.getLoc();
    auto metadata =
        memref::ExtractStridedMetadataOp::create(rewriter, loc, op.getBase());
    Value linear = metadata.getOffset();
    for (auto [index, stride] :
         llvm::zip(op.getIndices(), metadata.getStrides()))
      linear = arith::AddIOp::create(
          rewriter, loc, linear,
          arith::MulIOp::create(rewriter, loc, index, stride));
    Value base = memref::ExtractAlignedPointerAsIndexOp::create(rewriter, loc,
                                                                op.getBase());
    Value address = arith::AddIOp::create(
        rewriter, loc, base,
        arith::MulIOp::create(
            rewriter, loc, linear,
            arith::ConstantIndexOp::create(rewriter, loc, 2)));
    Value address64 = arith::IndexCastOp::create(
        rewriter, loc, rewriter.getI64Type(), address);
    Value pointer = LLVM::IntToPtrOp::create(
        rewriter, loc, LLVM::LLVMPointerType::get(rewriter.getContext()),
        address64);
    VectorType bitsType = type.clone(rewriter.getIntegerType(16));
    Value passThru =
        arith::BitcastOp::create(rewriter, loc, bitsType, op.getPassThru());
    Value bits = LLVM::masked_expandload::create(
        rewriter, loc, TypeRange{bitsType}, pointer, op.getMask(), passThru,
        /*align=*/2);
    rewriter.replaceOpWithNewOp<arith::BitcastOp>(op, type, bits);
    return success();
  }
};

struct SwanLegalizeNarrowExpandLoadPass
    : swan::impl::SwanLegalizeNarrowExpandLoadBase<
          SwanLegalizeNarrowExpandLoadPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<NarrowExpandLoadAsBits>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
