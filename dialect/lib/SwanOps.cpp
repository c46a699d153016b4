//===- SwanOps.cpp - swan operations: verifiers and canonicalisation ------===//

#include "swan/Dialect/SwanOps.h"

#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace swan;

//===----------------------------------------------------------------------===//
// Shared shape checks. Dynamic sizes always agree; the kernels check them
// again at run time.
//===----------------------------------------------------------------------===//

namespace {

RankedTensorType tensorType(Value v) {
  return cast<RankedTensorType>(v.getType());
}

LogicalResult verifyRank(Operation *op, StringRef name, Value v,
                         int64_t rank) {
  int64_t actual = tensorType(v).getRank();
  if (actual != rank)
    return op->emitOpError() << name << " must have rank " << rank
                             << ", got rank " << actual;
  return success();
}

LogicalResult verifySameSize(Operation *op, StringRef what, int64_t a,
                             int64_t b) {
  if (!ShapedType::isDynamic(a) && !ShapedType::isDynamic(b) && a != b)
    return op->emitOpError() << what << " disagree (" << a << " vs " << b
                             << ")";
  return success();
}

/// Winnowed rows keep between 1 and D components.
LogicalResult verifyKeptCount(Operation *op, StringRef name, int64_t kept,
                              int64_t headDim) {
  if (ShapedType::isDynamic(kept))
    return success();
  if (kept < 1)
    return op->emitOpError() << name << " must keep at least one component";
  if (!ShapedType::isDynamic(headDim) && kept > headDim)
    return op->emitOpError() << name << " keeps " << kept
                             << " components, more than the head dimension "
                             << headDim;
  return success();
}

/// Indices are read as unsigned, so iN addresses 2^N dimensions.
LogicalResult verifyIndexWidth(Operation *op, StringRef name, Value indices,
                               int64_t headDim) {
  Type elementType = tensorType(indices).getElementType();
  unsigned width = elementType.getIntOrFloatBitWidth();
  if (ShapedType::isDynamic(headDim) || width >= 63)
    return success();
  if ((int64_t(1) << width) < headDim)
    return op->emitOpError() << name << " of type " << elementType
                             << " cannot address head dimension " << headDim;
  return success();
}

/// A winnowed matrix: values and indices of the same shape [rows, k].
LogicalResult verifyWinnowed(Operation *op, StringRef name, Value values,
                             Value indices, int64_t rank, int64_t headDim) {
  if (failed(verifyRank(op, (name + " values").str(), values, rank)) ||
      failed(verifyRank(op, (name + " indices").str(), indices, rank)))
    return failure();
  ArrayRef<int64_t> v = tensorType(values).getShape();
  ArrayRef<int64_t> i = tensorType(indices).getShape();
  for (int64_t d = 0; d < rank; ++d)
    if (failed(verifySameSize(op, ("shapes of " + name + " values and indices")
                                      .str(),
                              v[d], i[d])))
      return failure();
  if (failed(verifyKeptCount(op, name, v.back(), headDim)))
    return failure();
  return verifyIndexWidth(op, (name + " indices").str(), indices, headDim);
}

/// A winnowed matrix in the mask encoding: values [rows, k] and masks
/// [rows, ceil(D/8)] of i8.
LogicalResult verifyMasked(Operation *op, StringRef name, Value values,
                           Value masks, int64_t rank, int64_t headDim) {
  if (failed(verifyRank(op, (name + " values").str(), values, rank)) ||
      failed(verifyRank(op, (name + " masks").str(), masks, rank)))
    return failure();
  ArrayRef<int64_t> v = tensorType(values).getShape();
  ArrayRef<int64_t> m = tensorType(masks).getShape();
  for (int64_t d = 0; d + 1 < rank; ++d)
    if (failed(verifySameSize(
            op, ("shapes of " + name + " values and masks").str(), v[d], m[d])))
      return failure();
  if (failed(verifyKeptCount(op, name, v.back(), headDim)))
    return failure();
  Type elementType = tensorType(masks).getElementType();
  if (!elementType.isInteger(8))
    return op->emitOpError() << name << " masks must be i8, got "
                             << elementType;
  if (ShapedType::isDynamic(headDim))
    return success();
  return verifySameSize(op, ("bytes per row of " + name + " masks").str(),
                        m.back(), (headDim + 7) / 8);
}

/// A winnowed matrix in either encoding.
LogicalResult verifyEncoded(Operation *op, StringRef name, Encoding encoding,
                            Value values, Value positions, int64_t rank,
                            int64_t headDim) {
  if (encoding == Encoding::mask)
    return verifyMasked(op, name, values, positions, rank, headDim);
  return verifyWinnowed(op, name, values, positions, rank, headDim);
}

/// SWAN-Q8: int8 winnowed values come with one f32 scale per row, float
/// values with none. Scales have the shape of the values without their last
/// dimension.
LogicalResult verifyScales(Operation *op, StringRef name, Value values,
                           Value scales, int64_t rank) {
  Type elementType = tensorType(values).getElementType();
  bool quantised = elementType.isInteger(8);
  if (quantised && !scales)
    return op->emitOpError()
           << "int8 " << name << " values need a scale per row";
  if (!scales)
    return success();
  if (!quantised)
    return op->emitOpError() << name << " scales need int8 values, got "
                             << elementType << " values";
  if (failed(verifyRank(op, (name + " scales").str(), scales, rank - 1)))
    return failure();
  ArrayRef<int64_t> v = tensorType(values).getShape();
  ArrayRef<int64_t> s = tensorType(scales).getShape();
  for (int64_t d = 0; d + 1 < rank; ++d)
    if (failed(verifySameSize(
            op, ("shapes of " + name + " values and scales").str(), v[d],
            s[d])))
      return failure();
  return success();
}

/// Square rotation matrices whose trailing size is the head dimension.
LogicalResult verifyRotation(Operation *op, Value rotation, int64_t rank,
                             int64_t headDim) {
  if (failed(verifyRank(op, "rotation", rotation, rank)))
    return failure();
  ArrayRef<int64_t> r = tensorType(rotation).getShape();
  if (failed(verifySameSize(op, "rotation rows and columns", r[rank - 2],
                            r[rank - 1])))
    return failure();
  return verifySameSize(op, "head dimensions of the rotation and the input",
                        r[rank - 1], headDim);
}

/// Rows in, rows of kept components out; `k`, when constant, in [1, D].
LogicalResult verifyWinnowResults(Operation *op, Value input, Value values,
                                  Value positions, Value scales, Value k,
                                  Encoding encoding) {
  if (failed(verifyRank(op, "input", input, 2)))
    return failure();
  int64_t headDim = tensorType(input).getDimSize(1);
  if (failed(verifyEncoded(op, "result", encoding, values, positions, 2,
                           headDim)) ||
      failed(verifyScales(op, "result", values, scales, 2)) ||
      failed(verifySameSize(op, "row counts of input and results",
                            tensorType(input).getDimSize(0),
                            tensorType(values).getDimSize(0))))
    return failure();
  APInt constantK;
  if (!matchPattern(k, m_ConstantInt(&constantK)))
    return success();
  int64_t kValue = constantK.getSExtValue();
  if (kValue < 1 || (!ShapedType::isDynamic(headDim) && kValue > headDim))
    return op->emitOpError() << "k = " << kValue
                             << " is outside [1, head dimension]";
  return verifySameSize(op, "constant k and the results' kept count", kValue,
                        tensorType(values).getDimSize(1));
}

} // namespace

//===----------------------------------------------------------------------===//
// RotateOp
//===----------------------------------------------------------------------===//

LogicalResult RotateOp::verify() {
  if (failed(verifyRank(*this, "input", getInput(), 2)) ||
      failed(verifyRotation(*this, getRotation(), 2,
                            getInput().getType().getDimSize(1))))
    return failure();
  if (getResult().getType().getElementType() !=
      getInput().getType().getElementType())
    return emitOpError("result element type must match the input's");
  if (failed(verifyRank(*this, "result", getResult(), 2)))
    return failure();
  for (int64_t d = 0; d < 2; ++d)
    if (failed(verifySameSize(*this, "shapes of input and result",
                              getInput().getType().getDimSize(d),
                              getResult().getType().getDimSize(d))))
      return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// WinnowOp
//===----------------------------------------------------------------------===//

LogicalResult WinnowOp::verify() {
  return verifyWinnowResults(*this, getInput(), getValues(), getIndices(),
                             getScales(), getK(), getEncoding());
}

namespace {
/// Keeping all D components of a row keeps the row itself, at positions
/// 0..D-1: the winnow disappears when it does not change the element type
/// (indices encoding; a full mask is left to the lowering).
struct WinnowKeepingEverything : OpRewritePattern<WinnowOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(WinnowOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType inputType = op.getInput().getType();
    RankedTensorType valuesType = op.getValues().getType();
    int64_t headDim = inputType.getDimSize(1);
    APInt k;
    if (op.getEncoding() != Encoding::indices ||
        ShapedType::isDynamic(headDim) ||
        !matchPattern(op.getK(), m_ConstantInt(&k)) ||
        k.getSExtValue() != headDim ||
        valuesType.getElementType() != inputType.getElementType())
      return failure();

    Location loc = op.getLoc();
    Value values = op.getInput();
    if (values.getType() != valuesType)
      values = tensor::CastOp::create(rewriter, loc, valuesType, values);

    RankedTensorType indicesType = op.getIndices().getType();
    SmallVector<Value> dynamicSizes;
    for (int64_t d = 0; d < 2; ++d)
      if (indicesType.isDynamicDim(d))
        dynamicSizes.push_back(
            d == 0 ? tensor::DimOp::create(rewriter, loc, op.getInput(), 0)
                         .getResult()
                   : op.getK());
    auto positions = tensor::GenerateOp::create(
        rewriter, loc, indicesType, dynamicSizes,
        [&](OpBuilder &b, Location l, ValueRange ivs) {
          Value position = arith::IndexCastOp::create(
              b, l, indicesType.getElementType(), ivs[1]);
          tensor::YieldOp::create(b, l, position);
        });
    rewriter.replaceOp(op, {values, positions});
    return success();
  }
};
} // namespace

void WinnowOp::getCanonicalizationPatterns(RewritePatternSet &patterns,
                                           MLIRContext *context) {
  patterns.add<WinnowKeepingEverything>(context);
}

//===----------------------------------------------------------------------===//
// CompressOp
//===----------------------------------------------------------------------===//

LogicalResult CompressOp::verify() {
  if (failed(verifyWinnowResults(*this, getInput(), getValues(), getIndices(),
                                 getScales(), getK(), getEncoding())))
    return failure();
  return verifyRotation(*this, getRotation(), 2,
                        getInput().getType().getDimSize(1));
}

//===----------------------------------------------------------------------===//
// DecodeAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult DecodeAttentionOp::verify() {
  if (failed(verifyRank(*this, "query", getQuery(), 3)))
    return failure();
  ArrayRef<int64_t> q = getQuery().getType().getShape();
  int64_t batch = q[0], queryHeads = q[1], headDim = q[2];

  if (failed(verifyRotation(*this, getKeyRotation(), 3, headDim)) ||
      failed(verifyEncoded(*this, "sparse key", getKeyEncoding(),
                           getSparseKeyValues(), getSparseKeyIndices(), 4,
                           headDim)) ||
      failed(verifyEncoded(*this, "sparse value", getValueEncoding(),
                           getSparseValueValues(), getSparseValueIndices(), 4,
                           headDim)) ||
      failed(verifyScales(*this, "sparse key", getSparseKeyValues(),
                          getSparseKeyScales(), 4)) ||
      failed(verifyScales(*this, "sparse value", getSparseValueValues(),
                          getSparseValueScales(), 4)) ||
      failed(verifyRank(*this, "buffer", getBufferKeys(), 4)) ||
      failed(verifyRank(*this, "lengths", getSparseLengths(), 1)))
    return failure();

  ArrayRef<int64_t> rot = getKeyRotation().getType().getShape();
  ArrayRef<int64_t> sk = getSparseKeyValues().getType().getShape();
  ArrayRef<int64_t> sv = getSparseValueValues().getType().getShape();
  ArrayRef<int64_t> buf = getBufferKeys().getType().getShape();
  int64_t lengths = getSparseLengths().getType().getDimSize(0);
  if (failed(verifySameSize(*this, "batch sizes of query and sparse keys",
                            batch, sk[0])) ||
      failed(verifySameSize(*this, "batch sizes of query and sparse values",
                            batch, sv[0])) ||
      failed(verifySameSize(*this, "batch sizes of query and buffer", batch,
                            buf[0])) ||
      failed(verifySameSize(*this, "batch sizes of query and lengths", batch,
                            lengths)) ||
      failed(verifySameSize(*this, "KV heads of rotations and sparse keys",
                            rot[0], sk[1])) ||
      failed(verifySameSize(*this, "KV heads of rotations and sparse values",
                            rot[0], sv[1])) ||
      failed(verifySameSize(*this, "KV heads of rotations and buffer", rot[0],
                            buf[1])) ||
      failed(verifySameSize(*this, "token counts of sparse keys and values",
                            sk[2], sv[2])) ||
      failed(verifySameSize(*this, "head dimensions of query and buffer",
                            headDim, buf[3])))
    return failure();

  int64_t groupSize = getGroupSize();
  if (!ShapedType::isDynamic(queryHeads) && !ShapedType::isDynamic(rot[0]) &&
      queryHeads != rot[0] * groupSize)
    return emitOpError() << "query heads (" << queryHeads
                         << ") must equal KV heads (" << rot[0]
                         << ") times group_size (" << groupSize << ")";
  if (getResult().getType().getShape() != getQuery().getType().getShape())
    return emitOpError("result shape must match the query's");
  return success();
}

//===----------------------------------------------------------------------===//
// PartialAttentionOp
//===----------------------------------------------------------------------===//

namespace {
/// Keys or values of a block: dense rotated rows [n, D], or winnowed rows
/// [n, k] with indices or masks (and, when int8, scales).
LogicalResult verifyBlockOperand(Operation *op, StringRef name, Value values,
                                 Value positions, Value scales, int64_t headDim,
                                 Encoding encoding) {
  if (positions) {
    if (failed(
            verifyEncoded(op, name, encoding, values, positions, 2, headDim)))
      return failure();
    return verifyScales(op, name, values, scales, 2);
  }
  if (encoding == Encoding::mask)
    return op->emitOpError()
           << "dense " << name << "s have no mask: " << name
           << "_encoding = mask needs winnowed " << name << "s";
  if (tensorType(values).getElementType().isInteger(8))
    return op->emitOpError()
           << "dense " << name << "s cannot be int8: only winnowed " << name
           << "s have a scale per row";
  if (scales)
    return op->emitOpError() << "dense " << name << "s have no scales";
  if (failed(verifyRank(op, (name + " values").str(), values, 2)))
    return failure();
  return verifySameSize(
      op, ("head dimensions of query and dense " + name).str(), headDim,
      tensorType(values).getDimSize(1));
}
} // namespace

LogicalResult PartialAttentionOp::verify() {
  if (failed(verifyRank(*this, "query", getQuery(), 2)))
    return failure();
  int64_t groups = getQuery().getType().getDimSize(0);
  int64_t headDim = getQuery().getType().getDimSize(1);
  if (failed(verifyBlockOperand(*this, "key", getKeyValues(), getKeyIndices(),
                                getKeyScales(), headDim, getKeyEncoding())) ||
      failed(verifyBlockOperand(*this, "value", getValueValues(),
                                getValueIndices(), getValueScales(), headDim,
                                getValueEncoding())) ||
      failed(verifySameSize(*this, "token counts of keys and values",
                            getKeyValues().getType().getDimSize(0),
                            getValueValues().getType().getDimSize(0))) ||
      failed(verifyRank(*this, "max", getMax(), 1)) ||
      failed(verifyRank(*this, "accumulator", getAccumulator(), 2)) ||
      failed(verifySameSize(*this, "query heads of query and max", groups,
                            getMax().getType().getDimSize(0))))
    return failure();
  ArrayRef<int64_t> acc = getAccumulator().getType().getShape();
  if (failed(verifySameSize(*this, "query heads of query and accumulator",
                            groups, acc[0])) ||
      failed(verifySameSize(*this, "head dimensions of query and accumulator",
                            headDim, acc[1])))
    return failure();
  return success();
}

//===----------------------------------------------------------------------===//
// MergeAttentionOp
//===----------------------------------------------------------------------===//

LogicalResult MergeAttentionOp::verify() {
  if (failed(verifyRank(*this, "max", getMax(), 2)) ||
      failed(verifyRank(*this, "accumulator", getAccumulator(), 3)) ||
      failed(verifyRank(*this, "result", getResult(), 2)))
    return failure();
  ArrayRef<int64_t> m = getMax().getType().getShape();
  ArrayRef<int64_t> acc = getAccumulator().getType().getShape();
  ArrayRef<int64_t> out = getResult().getType().getShape();
  if (failed(verifySameSize(*this, "block counts of max and accumulator", m[0],
                            acc[0])) ||
      failed(verifySameSize(*this, "query heads of max and accumulator", m[1],
                            acc[1])) ||
      failed(verifySameSize(*this, "query heads of accumulator and result",
                            acc[1], out[0])) ||
      failed(verifySameSize(*this,
                            "head dimensions of accumulator and result",
                            acc[2], out[1])))
    return failure();
  if (Value rotation = getValueRotation())
    return verifyRotation(*this, rotation, 2, acc[2]);
  return success();
}

#include "swan/Dialect/SwanOpsEnums.cpp.inc"

#define GET_OP_CLASSES
#include "swan/Dialect/SwanOps.cpp.inc"
