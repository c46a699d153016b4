//===- DecomposeDecodeAttention.cpp - decode attention as flash decoding --===//
//
// swan.decode_attention becomes, per (sequence, KV head): rotate the G query
// rows, partial attention over `num-splits` blocks of the sparse tokens and
// over the dense buffer, then one merge. Every block is a tensor.extract_slice
// of the cache, so bufferization reads the cache in place.
//
//===----------------------------------------------------------------------===//

#include "swan/Passes/Passes.h"

#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace swan {
#define GEN_PASS_DEF_SWANDECOMPOSEDECODEATTENTION
#include "swan/Passes/Passes.h.inc"
} // namespace swan

using namespace mlir;
using namespace swan;

namespace {

/// Size `d` of `tensor`: an attribute when static, a tensor.dim otherwise.
OpFoldResult sizeOf(OpBuilder &b, Location loc, Value tensor, int64_t d) {
  auto type = cast<RankedTensorType>(tensor.getType());
  if (!type.isDynamicDim(d))
    return b.getIndexAttr(type.getDimSize(d));
  return tensor::DimOp::create(b, loc, tensor, d).getResult();
}

/// Rank-reducing slice of the trailing dimensions of `source` at the leading
/// coordinates `lead` (each of size 1): `source[lead..., offsets...]` with
/// `sizes` in the kept dimensions.
Value sliceAt(OpBuilder &b, Location loc, Value source, ArrayRef<Value> lead,
              ArrayRef<OpFoldResult> offsets, ArrayRef<OpFoldResult> sizes) {
  auto sourceType = cast<RankedTensorType>(source.getType());
  SmallVector<OpFoldResult> allOffsets, allSizes, strides;
  for (Value v : lead) {
    allOffsets.push_back(v);
    allSizes.push_back(b.getIndexAttr(1));
  }
  llvm::append_range(allOffsets, offsets);
  llvm::append_range(allSizes, sizes);
  strides.assign(allOffsets.size(), b.getIndexAttr(1));
  SmallVector<int64_t> shape;
  for (OpFoldResult size : sizes)
    shape.push_back(getConstantIntValue(size).value_or(ShapedType::kDynamic));
  auto type = RankedTensorType::get(shape, sourceType.getElementType());
  return tensor::ExtractSliceOp::create(b, loc, type, source, allOffsets,
                                        allSizes, strides);
}

/// The length of sequence `batch`, as an index.
Value lengthAt(OpBuilder &b, Location loc, Value lengths, Value batch) {
  Value length = tensor::ExtractOp::create(b, loc, lengths, batch);
  if (length.getType().isIndex())
    return length;
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), length);
}

struct DecomposeDecodeAttention : OpRewritePattern<DecodeAttentionOp> {
  DecomposeDecodeAttention(MLIRContext *context, int64_t numSplits)
      : OpRewritePattern(context), numSplits(numSplits) {}

  LogicalResult matchAndRewrite(DecodeAttentionOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType queryType = op.getQuery().getType();
    int64_t groups = op.getGroupSize();
    int64_t headDim = queryType.getDimSize(2);
    if (!queryType.getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "query must be f32");
    if (ShapedType::isDynamic(headDim))
      return rewriter.notifyMatchFailure(op, "head dimension must be static");

    Location loc = op.getLoc();
    auto resultType = cast<RankedTensorType>(op.getResult().getType());
    SmallVector<Value> dynamicSizes;
    for (int64_t d = 0; d < resultType.getRank(); ++d)
      if (resultType.isDynamicDim(d))
        dynamicSizes.push_back(
            tensor::DimOp::create(rewriter, loc, op.getQuery(), d));
    Value out =
        tensor::EmptyOp::create(rewriter, loc, resultType.getShape(),
                                resultType.getElementType(), dynamicSizes);
    SmallVector<OpFoldResult> bounds{
        sizeOf(rewriter, loc, op.getQuery(), 0),
        sizeOf(rewriter, loc, op.getKeyRotation(), 0)};
    auto forall = scf::ForallOp::create(rewriter, loc, bounds, ValueRange{out},
                                        std::nullopt);

    OpBuilder::InsertionGuard guard(rewriter);
    rewriter.setInsertionPoint(forall.getTerminator());
    Value batch = forall.getInductionVars()[0];
    Value head = forall.getInductionVars()[1];
    Value firstRow = arith::MulIOp::create(
        rewriter, loc, head,
        arith::ConstantIndexOp::create(rewriter, loc, groups));
    OpFoldResult groupSize = rewriter.getIndexAttr(groups);
    OpFoldResult dim = rewriter.getIndexAttr(headDim);
    OpFoldResult zero = rewriter.getIndexAttr(0);
    Type f32 = rewriter.getF32Type();

    Value query = sliceAt(rewriter, loc, op.getQuery(), {batch},
                          {firstRow, zero}, {groupSize, dim});
    Value keyRotation = sliceAt(rewriter, loc, op.getKeyRotation(), {head},
                                {zero, zero}, {dim, dim});
    Value rotatedQuery =
        RotateOp::create(rewriter, loc, query.getType(), query, keyRotation);

    auto maxType = RankedTensorType::get({groups}, f32);
    auto accType = RankedTensorType::get({groups, headDim}, f32);
    SmallVector<Value> maxima, sums, accumulators;
    auto addPartial = [&](Value keys, Value keyPositions, Value keyScales,
                          Value values, Value valuePositions, Value valueScales,
                          Encoding keyEncoding, Encoding valueEncoding) {
      auto partial = PartialAttentionOp::create(
          rewriter, loc, maxType, maxType, accType, rotatedQuery, op.getScale(),
          keys, keyPositions, keyScales, values, valuePositions, valueScales,
          keyEncoding, valueEncoding);
      maxima.push_back(partial.getMax());
      sums.push_back(partial.getSum());
      accumulators.push_back(partial.getAccumulator());
    };

    // Sparse blocks of ceil(length / numSplits) tokens; the last ones may
    // be short or empty.
    Value sparseLength = lengthAt(rewriter, loc, op.getSparseLengths(), batch);
    Value splits = arith::ConstantIndexOp::create(rewriter, loc, numSplits);
    Value blockLength =
        arith::CeilDivUIOp::create(rewriter, loc, sparseLength, splits);
    OpFoldResult keptKeys = sizeOf(rewriter, loc, op.getSparseKeyValues(), 3);
    OpFoldResult keptValues =
        sizeOf(rewriter, loc, op.getSparseValueValues(), 3);
    // Indices have one entry per kept component, masks one byte per 8
    // dimensions.
    auto positionsPerToken = [&](Encoding encoding, Value positions,
                                 OpFoldResult kept) {
      return encoding == Encoding::mask ? sizeOf(rewriter, loc, positions, 3)
                                        : kept;
    };
    OpFoldResult keyPositionsPerToken = positionsPerToken(
        op.getKeyEncoding(), op.getSparseKeyIndices(), keptKeys);
    OpFoldResult valuePositionsPerToken = positionsPerToken(
        op.getValueEncoding(), op.getSparseValueIndices(), keptValues);
    for (int64_t s = 0; s < numSplits; ++s) {
      Value start = arith::MinUIOp::create(
          rewriter, loc,
          arith::MulIOp::create(
              rewriter, loc, blockLength,
              arith::ConstantIndexOp::create(rewriter, loc, s)),
          sparseLength);
      Value length = arith::MinUIOp::create(
          rewriter, loc, blockLength,
          arith::SubIOp::create(rewriter, loc, sparseLength, start));
      auto tokens = [&](Value source, OpFoldResult kept) {
        return sliceAt(rewriter, loc, source, {batch, head}, {start, zero},
                       {length, kept});
      };
      // SWAN-Q8 scales: one per token.
      auto scales = [&](Value source) {
        return source ? sliceAt(rewriter, loc, source, {batch, head}, {start},
                                {length})
                      : Value();
      };
      addPartial(tokens(op.getSparseKeyValues(), keptKeys),
                 tokens(op.getSparseKeyIndices(), keyPositionsPerToken),
                 scales(op.getSparseKeyScales()),
                 tokens(op.getSparseValueValues(), keptValues),
                 tokens(op.getSparseValueIndices(), valuePositionsPerToken),
                 scales(op.getSparseValueScales()), op.getKeyEncoding(),
                 op.getValueEncoding());
    }

    Value bufferLength = lengthAt(rewriter, loc, op.getBufferLengths(), batch);
    auto bufferTokens = [&](Value source) {
      return sliceAt(rewriter, loc, source, {batch, head}, {zero, zero},
                     {bufferLength, dim});
    };
    addPartial(bufferTokens(op.getBufferKeys()), Value(), Value(),
               bufferTokens(op.getBufferValues()), Value(), Value(),
               Encoding::indices, Encoding::indices);

    // Stack the blocks for the merge.
    int64_t blocks = numSplits + 1;
    Value stackedMax =
        tensor::EmptyOp::create(rewriter, loc, {blocks, groups}, f32);
    Value stackedSum =
        tensor::EmptyOp::create(rewriter, loc, {blocks, groups}, f32);
    Value stackedAcc =
        tensor::EmptyOp::create(rewriter, loc, {blocks, groups, headDim}, f32);
    OpFoldResult one = rewriter.getIndexAttr(1);
    for (int64_t s = 0; s < blocks; ++s) {
      OpFoldResult at = rewriter.getIndexAttr(s);
      stackedMax = tensor::InsertSliceOp::create(rewriter, loc, maxima[s],
                                                 stackedMax, {at, zero},
                                                 {one, groupSize}, {one, one});
      stackedSum = tensor::InsertSliceOp::create(rewriter, loc, sums[s],
                                                 stackedSum, {at, zero},
                                                 {one, groupSize}, {one, one});
      stackedAcc = tensor::InsertSliceOp::create(
          rewriter, loc, accumulators[s], stackedAcc, {at, zero, zero},
          {one, groupSize, dim}, {one, one, one});
    }
    Value valueRotation;
    if (!op.getRotatedOutput())
      valueRotation = sliceAt(rewriter, loc, op.getValueRotation(), {head},
                              {zero, zero}, {dim, dim});
    auto headResultType =
        RankedTensorType::get({groups, headDim}, resultType.getElementType());
    Value merged =
        MergeAttentionOp::create(rewriter, loc, headResultType, stackedMax,
                                 stackedSum, stackedAcc, valueRotation);

    rewriter.setInsertionPointToStart(forall.getTerminator().getBody());
    tensor::ParallelInsertSliceOp::create(
        rewriter, loc, merged, forall.getRegionIterArgs()[0],
        {OpFoldResult(batch), OpFoldResult(firstRow), zero},
        {one, groupSize, dim}, {one, one, one});
    rewriter.replaceOp(op, forall.getResults());
    return success();
  }

  int64_t numSplits;
};

struct SwanDecomposeDecodeAttentionPass
    : swan::impl::SwanDecomposeDecodeAttentionBase<
          SwanDecomposeDecodeAttentionPass> {
  using Base::Base;

  void runOnOperation() override {
    if (numSplits < 1) {
      getOperation()->emitError("num-splits must be positive");
      return signalPassFailure();
    }
    RewritePatternSet patterns(&getContext());
    populateDecomposeDecodeAttentionPatterns(patterns, numSplits);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    WalkResult leftover = getOperation()->walk([](DecodeAttentionOp op) {
      op.emitError("cannot decompose: the query must be f32 and the head "
                   "dimension static");
      return WalkResult::interrupt();
    });
    if (leftover.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace

void swan::populateDecomposeDecodeAttentionPatterns(RewritePatternSet &patterns,
                                                    int64_t numSplits) {
  patterns.add<DecomposeDecodeAttention>(patterns.getContext(), numSplits);
}
