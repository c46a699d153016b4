//===- DensePartialAttentionToVector.cpp - [G, D] partial attention -------===//
//
// swan.partial_attention over dense blocks (the buffer), blocks mixing
// dense and winnowed operands, and, with expand-winnowed, winnowed tokens
// expanded into registers. Winnowed keys and values otherwise take the
// transposed kernel of WinnowedPartialAttentionToVector.cpp.
//
//===----------------------------------------------------------------------===//

#include "SwanToVectorPatterns.h"

#include "KernelBuilder.h"
#include "PartialAttention.h"
#include "swan/Dialect/SwanOps.h"

#include "mlir/Dialect/X86Vector/X86VectorDialect.h"

#include <numeric>

using namespace mlir;
using namespace swan;

namespace {

/// Online softmax over one block of tokens, tile by tile, with the scaled
/// query and the accumulator as [G, D] scratch.
class DensePartialAttentionKernel {
public:
  DensePartialAttentionKernel(KernelBuilder &kb, PartialAttentionOp op,
                              int64_t lanes, int64_t tile, bool expand = false)
      : kb(kb), op(op), lanes(lanes), tile(tile), expand(expand) {
    RankedTensorType queryType = op.getQuery().getType();
    groups = queryType.getDimSize(0);
    headDim = queryType.getDimSize(1);
    chunks = headDim / lanes;
  }

  SmallVector<Value> build() {
    Type f32 = kb.builder().getF32Type();
    keys = kb.view(op.getKeyValues());
    values = kb.view(op.getValueValues());
    if (op.getKeyIndices())
      keyIndices = kb.view(op.getKeyIndices());
    if (op.getValueIndices())
      valueIndices = kb.view(op.getValueIndices());
    if (op.getKeyScales())
      keyScales = kb.view(op.getKeyScales());
    if (op.getValueScales())
      valueScales = kb.view(op.getValueScales());
    maskedKeys = op.getKeyEncoding() == Encoding::mask;
    maskedValues = op.getValueEncoding() == Encoding::mask;

    // The scaled query, [G, D] in L1: scores then need no multiply.
    Value query = kb.view(op.getQuery());
    Value scale = kb.splat(op.getScale(), lanes);
    scaledQuery = kb.scratch({groups, headDim}, f32);
    accumulator = kb.scratch({groups, headDim}, f32);
    scores = kb.scratch({groups, tile}, f32);
    runningMax = kb.scratch({groups}, f32);
    runningSum = kb.scratch({groups}, f32);
    Value zero = kb.zeroVector(lanes, f32);
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t c = 0; c < chunks; ++c) {
        SmallVector<Value> at{kb.index(g), kb.index(c * lanes)};
        kb.create<vector::StoreOp>(kb.mul(kb.loadF32(query, at, lanes), scale),
                                   scaledQuery, at);
        kb.create<vector::StoreOp>(zero, accumulator, at);
      }
      kb.create<memref::StoreOp>(kb.negativeInfinity(), runningMax,
                                 ValueRange{kb.index(g)});
      kb.create<memref::StoreOp>(kb.f32(0.0), runningSum,
                                 ValueRange{kb.index(g)});
    }

    Value tokens = kb.create<memref::DimOp>(keys, int64_t(0));
    kb.loop(kb.index(0), tokens, kb.index(tile), [&](Value first) {
      Value count = kb.create<arith::MinSIOp>(
          kb.index(tile), kb.create<arith::SubIOp>(tokens, first));
      bool denseValues = !expand && !maskedValues && !valueIndices;
      kb.loop(kb.index(0), count, kb.index(1), [&](Value t) {
        Value token = kb.create<arith::AddIOp>(first, t);
        // The chunk-major value loop below meets each row in pieces, which
        // the hardware prefetchers do not follow: ask for the row now.
        if (denseValues)
          kb.prefetchRow(values, token);
        SmallVector<Value> s = expand || maskedKeys ? expandedScores(token)
                               : keyIndices         ? sparseScores(token)
                                                    : denseScores(token);
        // An int8 key's scale multiplies its scores.
        Value keyScale = rowScale(keyScales, token);
        for (int64_t g = 0; g < groups; ++g)
          kb.create<memref::StoreOp>(keyScale ? kb.mul(s[g], keyScale) : s[g],
                                     scores, ValueRange{kb.index(g), t});
      });
      for (int64_t g = 0; g < groups; ++g)
        updateSoftmax(g, count);
      if (denseValues)
        return accumulateDense(first, count);
      kb.loop(kb.index(0), count, kb.index(1), [&](Value t) {
        Value token = kb.create<arith::AddIOp>(first, t);
        // An int8 value's scale multiplies its weights.
        Value valueScale = rowScale(valueScales, token);
        SmallVector<Value> weights;
        for (int64_t g = 0; g < groups; ++g) {
          Value w =
              kb.create<memref::LoadOp>(scores, ValueRange{kb.index(g), t});
          weights.push_back(
              kb.splat(valueScale ? kb.mul(w, valueScale) : w, lanes));
        }
        if (expand || maskedValues)
          accumulateExpanded(token, weights);
        else
          accumulateSparse(token, weights);
      });
    });
    return writeResults();
  }

private:
  /// The scale of an int8 row, or a null Value for float rows.
  Value rowScale(Value scales, Value token) {
    if (!scales)
      return Value();
    return kb.create<memref::LoadOp>(scales, ValueRange{token});
  }

  /// The D/16 dense f32 chunks of one winnowed token, built in registers
  /// and never stored: vp2intersect of each chunk's positions with the
  /// token's indices gives the chunk's kept lanes, then `expandChunks`.
  SmallVector<Value> expandToken(Value indices, Value valuesView, Value token) {
    OpBuilder &b = kb.builder();
    VectorType maskType = kb.vectorOf(16, b.getI1Type());
    Value none = kb.create<arith::ConstantOp>(
        maskType, DenseElementsAttr::get(maskType, false));
    Value kept = kb.create<memref::DimOp>(valuesView, int64_t(1));
    SmallVector<Value> masks = kb.loop(
        kb.index(0), kept, kb.index(16), SmallVector<Value>(chunks, none),
        [&](Value j, ValueRange found) {
          Value live = kb.prefixMask(kb.create<arith::SubIOp>(kept, j), 16);
          // Lanes past k hold -1, which matches no position.
          Value idx = kb.create<arith::SelectOp>(
              live, kb.loadIndices(indices, {token, j}, 16, live),
              kb.splat(kb.i32(-1), 16));
          SmallVector<Value> next;
          for (int64_t c = 0; c < chunks; ++c) {
            auto hit = kb.create<x86vector::Vp2IntersectOp>(
                kb.laneNumbers(16, c * 16), idx);
            next.push_back(kb.create<arith::OrIOp>(found[c], hit.getK1()));
          }
          return next;
        });
    return expandChunks(valuesView, token, masks);
  }

  /// The D/lanes dense f32 chunks of a token stored in the mask encoding:
  /// the occupancy bits are the chunks' masks as they are.
  SmallVector<Value> maskedToken(Value maskView, Value valuesView,
                                 Value token) {
    OpBuilder &b = kb.builder();
    SmallVector<Value> masks;
    for (int64_t c = 0; c < chunks; ++c) {
      Value bytes = kb.create<vector::LoadOp>(
          kb.vectorOf(lanes / 8, b.getI8Type()), maskView,
          ValueRange{token, kb.index(c * lanes / 8)});
      masks.push_back(kb.create<vector::BitCastOp>(
          kb.vectorOf(lanes, b.getI1Type()), bytes));
    }
    return expandChunks(valuesView, token, masks);
  }

  /// Places a token's kept values in dense f32 chunks given each chunk's
  /// kept lanes: popcounts give where a chunk's values start, and an
  /// expanding load (vexpandps, or vpexpandw on the bits of 16-bit floats)
  /// puts them in place.
  SmallVector<Value> expandChunks(Value valuesView, Value token,
                                  ArrayRef<Value> masks) {
    OpBuilder &b = kb.builder();
    Type i32 = b.getI32Type(), f32 = b.getF32Type();
    SmallVector<Value> starts;
    Value start = kb.index(0);
    for (int64_t c = 0; c < chunks; ++c) {
      starts.push_back(start);
      Value bits = kb.create<vector::ExtractOp>(
          kb.create<vector::BitCastOp>(
              VectorType::get({1}, b.getIntegerType(lanes)), masks[c]),
          int64_t(0));
      Value count = kb.create<math::CtPopOp>(bits);
      if (lanes < 32)
        count = kb.create<arith::ExtUIOp>(i32, count);
      start = kb.create<arith::AddIOp>(
          start, kb.create<arith::IndexCastOp>(b.getIndexType(), count));
    }
    Type storage = cast<MemRefType>(valuesView.getType()).getElementType();
    SmallVector<Value> dense;
    if (storage.isF32()) {
      for (int64_t c = 0; c < chunks; ++c)
        dense.push_back(kb.create<vector::ExpandLoadOp>(
            kb.vectorOf(lanes, f32), valuesView, ValueRange{token, starts[c]},
            masks[c], kb.zeroVector(lanes, f32)));
      return dense;
    }
    // 16-bit floats or int8, two chunks at a time where they pair up
    // (swan-legalize-narrow-expandload later makes this vpexpandw on the
    // bits of 16-bit floats, or byte shuffles without AVX-512).
    int64_t pair = chunks % 2 == 0 ? 2 : 1;
    SmallVector<int64_t> concat(pair * lanes);
    std::iota(concat.begin(), concat.end(), 0);
    VectorType narrow = kb.vectorOf(pair * lanes, storage);
    for (int64_t c = 0; c < chunks; c += pair) {
      Value mask =
          pair == 2
              ? kb.create<vector::ShuffleOp>(masks[c], masks[c + 1], concat)
              : masks[c];
      Value loaded = kb.create<vector::ExpandLoadOp>(
          narrow, valuesView, ValueRange{token, starts[c]}, mask,
          kb.zeroVector(pair * lanes, storage));
      Value wide = kb.convertFloat(loaded, f32);
      for (int64_t part = 0; part < pair; ++part)
        dense.push_back(kb.create<vector::ExtractStridedSliceOp>(
            wide, ArrayRef<int64_t>{part * lanes}, ArrayRef<int64_t>{lanes},
            ArrayRef<int64_t>{1}));
    }
    return dense;
  }

  SmallVector<Value> expandedScores(Value token) {
    Type f32 = kb.builder().getF32Type();
    SmallVector<Value> key = maskedKeys ? maskedToken(keyIndices, keys, token)
                                        : expandToken(keyIndices, keys, token);
    SmallVector<Value> result;
    for (int64_t g = 0; g < groups; ++g) {
      Value acc = kb.zeroVector(lanes, f32);
      for (int64_t c = 0; c < chunks; ++c)
        acc = kb.fma(kb.create<vector::LoadOp>(
                         kb.vectorOf(lanes, f32), scaledQuery,
                         ValueRange{kb.index(g), kb.index(c * lanes)}),
                     key[c], acc);
      result.push_back(kb.sum(acc));
    }
    return result;
  }

  void accumulateExpanded(Value token, ArrayRef<Value> weights) {
    Type f32 = kb.builder().getF32Type();
    SmallVector<Value> value = maskedValues
                                   ? maskedToken(valueIndices, values, token)
                                   : expandToken(valueIndices, values, token);
    for (int64_t c = 0; c < chunks; ++c)
      for (int64_t g = 0; g < groups; ++g) {
        SmallVector<Value> at{kb.index(g), kb.index(c * lanes)};
        Value acc =
            kb.create<vector::LoadOp>(kb.vectorOf(lanes, f32), accumulator, at);
        kb.create<vector::StoreOp>(kb.fma(weights[g], value[c], acc),
                                   accumulator, at);
      }
  }

  /// Scores of a winnowed key: the scaled query gathered at its indices.
  SmallVector<Value> sparseScores(Value token) {
    Type f32 = kb.builder().getF32Type();
    Value kept = kb.create<memref::DimOp>(keys, int64_t(1));
    SmallVector<Value> zeros(groups, kb.zeroVector(lanes, f32));
    SmallVector<Value> partial = kb.loop(
        kb.index(0), kept, kb.index(lanes), zeros,
        [&](Value j, ValueRange acc) {
          Value mask = kb.prefixMask(kb.create<arith::SubIOp>(kept, j), lanes);
          Value indices = kb.loadIndices(keyIndices, {token, j}, lanes, mask);
          Value keyValues = kb.loadF32(keys, {token, j}, lanes, mask);
          SmallVector<Value> next;
          for (int64_t g = 0; g < groups; ++g) {
            Value q = kb.create<vector::GatherOp>(
                Type(kb.vectorOf(lanes, f32)), scaledQuery,
                ValueRange{kb.index(g), kb.index(0)}, indices, mask,
                kb.zeroVector(lanes, f32), IntegerAttr());
            next.push_back(kb.fma(q, keyValues, acc[g]));
          }
          return next;
        });
    SmallVector<Value> result;
    for (Value p : partial)
      result.push_back(kb.sum(p));
    return result;
  }

  SmallVector<Value> denseScores(Value token) {
    Type f32 = kb.builder().getF32Type();
    SmallVector<Value> acc(groups, kb.zeroVector(lanes, f32));
    for (int64_t c = 0; c < chunks; ++c) {
      Value key = kb.loadF32(keys, {token, kb.index(c * lanes)}, lanes);
      for (int64_t g = 0; g < groups; ++g) {
        Value q = kb.create<vector::LoadOp>(
            kb.vectorOf(lanes, f32), scaledQuery,
            ValueRange{kb.index(g), kb.index(c * lanes)});
        acc[g] = kb.fma(q, key, acc[g]);
      }
    }
    SmallVector<Value> result;
    for (Value a : acc)
      result.push_back(kb.sum(a));
    return result;
  }

  /// Folds the tile's scores of query head g into the running max and sum,
  /// rescales the accumulator once, and turns the scores into weights.
  void updateSoftmax(int64_t g, Value count) {
    OpBuilder &b = kb.builder();
    Type f32 = b.getF32Type();
    Value gi = kb.index(g);
    VectorType tileType = kb.vectorOf(tile, f32);
    Value live = kb.prefixMask(count, tile);
    Value minusInf = kb.splat(kb.negativeInfinity(), tile);
    Value tileScores = kb.create<arith::SelectOp>(
        live,
        kb.create<vector::LoadOp>(tileType, scores,
                                  ValueRange{gi, kb.index(0)}),
        minusInf);
    Value oldMax = kb.create<memref::LoadOp>(runningMax, ValueRange{gi});
    Value newMax = kb.create<arith::MaximumFOp>(oldMax, kb.maximum(tileScores));
    // exp(-inf - m) is 0 mathematically; select it rather than trust the
    // approximation at infinity.
    Value wasEmpty = kb.create<arith::CmpFOp>(arith::CmpFPredicate::OEQ, oldMax,
                                              kb.negativeInfinity());
    Value alpha = kb.create<arith::SelectOp>(wasEmpty, kb.f32(0.0),
                                             kb.exp(kb.sub(oldMax, newMax)));
    Value weights = kb.create<arith::SelectOp>(
        live, kb.exp(kb.sub(tileScores, kb.splat(newMax, tile))),
        kb.zeroVector(tile, f32));
    kb.create<vector::StoreOp>(weights, scores, ValueRange{gi, kb.index(0)});
    Value oldSum = kb.create<memref::LoadOp>(runningSum, ValueRange{gi});
    kb.create<memref::StoreOp>(kb.fma(oldSum, alpha, kb.sum(weights)),
                               runningSum, ValueRange{gi});
    kb.create<memref::StoreOp>(newMax, runningMax, ValueRange{gi});
    Value alphaVector = kb.splat(alpha, lanes);
    for (int64_t c = 0; c < chunks; ++c) {
      SmallVector<Value> at{gi, kb.index(c * lanes)};
      Value acc =
          kb.create<vector::LoadOp>(kb.vectorOf(lanes, f32), accumulator, at);
      kb.create<vector::StoreOp>(kb.mul(acc, alphaVector), accumulator, at);
    }
  }

  /// acc[g, idx_j] += w_g · val_j: gather, fma, scatter on the L1
  /// accumulator; a token's indices are distinct, so lanes never collide.
  void accumulateSparse(Value token, ArrayRef<Value> weights) {
    Type f32 = kb.builder().getF32Type();
    Value kept = kb.create<memref::DimOp>(values, int64_t(1));
    kb.loop(kb.index(0), kept, kb.index(lanes), [&](Value j) {
      Value mask = kb.prefixMask(kb.create<arith::SubIOp>(kept, j), lanes);
      Value indices = kb.loadIndices(valueIndices, {token, j}, lanes, mask);
      Value v = kb.loadF32(values, {token, j}, lanes, mask);
      for (int64_t g = 0; g < groups; ++g) {
        SmallVector<Value> at{kb.index(g), kb.index(0)};
        Value acc = kb.create<vector::GatherOp>(
            Type(kb.vectorOf(lanes, f32)), accumulator, at, indices, mask,
            kb.zeroVector(lanes, f32), IntegerAttr());
        kb.create<vector::ScatterOp>(Type(), accumulator, at, indices, mask,
                                     kb.fma(weights[g], v, acc), IntegerAttr());
      }
    });
  }

  /// acc[g, :] += Σ_t w_g,t · v_t over the tile's dense value rows,
  /// chunk-major: the accumulator rows of a few chunks stay in registers
  /// while the tile's tokens pass (the tile's rows stay in L1 from one pass
  /// to the next), instead of a load and a store of the accumulator per
  /// FMA. The rows are prefetched while the tile is scored.
  void accumulateDense(Value first, Value count) {
    Type f32 = kb.builder().getF32Type();
    VectorType chunkType = kb.vectorOf(lanes, f32);
    int64_t perPass =
        std::clamp<int64_t>(accumulatorRegisters(lanes) / groups, 1, chunks);
    forPasses(kb, chunks, perPass, [&](Value c0, int64_t passChunks) {
      SmallVector<Value> columns;
      for (int64_t i = 0; i < passChunks; ++i)
        columns.push_back(kb.create<arith::MulIOp>(
            kb.create<arith::AddIOp>(c0, kb.index(i)), kb.index(lanes)));
      auto at = [&](int64_t g, int64_t i) {
        return SmallVector<Value>{kb.index(g), columns[i]};
      };
      // rows[g * passChunks + i]: query head g, chunk c0 + i.
      SmallVector<Value> rows;
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t i = 0; i < passChunks; ++i)
          rows.push_back(
              kb.create<vector::LoadOp>(chunkType, accumulator, at(g, i)));
      rows = kb.loop(
          kb.index(0), count, kb.index(1), rows, [&](Value t, ValueRange acc) {
            Value token = kb.create<arith::AddIOp>(first, t);
            SmallVector<Value> v;
            for (int64_t i = 0; i < passChunks; ++i)
              v.push_back(kb.loadF32(values, {token, columns[i]}, lanes));
            SmallVector<Value> next;
            for (int64_t g = 0; g < groups; ++g) {
              Value w = kb.splat(
                  kb.create<memref::LoadOp>(scores, ValueRange{kb.index(g), t}),
                  lanes);
              for (int64_t i = 0; i < passChunks; ++i)
                next.push_back(kb.fma(w, v[i], acc[g * passChunks + i]));
            }
            return next;
          });
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t i = 0; i < passChunks; ++i)
          kb.create<vector::StoreOp>(rows[g * passChunks + i], accumulator,
                                     at(g, i));
    });
  }

  SmallVector<Value> writeResults() {
    Type f32 = kb.builder().getF32Type();
    Value zero = kb.index(0);
    Value max = kb.create<vector::LoadOp>(kb.vectorOf(groups, f32), runningMax,
                                          ValueRange{zero});
    Value sum = kb.create<vector::LoadOp>(kb.vectorOf(groups, f32), runningSum,
                                          ValueRange{zero});
    return partialResults(kb, op, max, sum, accumulator, groups, headDim);
  }

  KernelBuilder &kb;
  PartialAttentionOp op;
  int64_t lanes, tile, groups = 0, headDim = 0, chunks = 0;
  bool expand, maskedKeys = false, maskedValues = false;
  Value keys, keyIndices, values, valueIndices;
  Value keyScales, valueScales; // int8 rows only
  Value scaledQuery, accumulator, scores, runningMax, runningSum;
};

struct LowerDensePartialAttention : OpRewritePattern<PartialAttentionOp> {
  LowerDensePartialAttention(MLIRContext *context,
                             const VectorLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}

  LogicalResult matchAndRewrite(PartialAttentionOp op,
                                PatternRewriter &rewriter) const override {
    FailureOr<int64_t> lanes = partialAttentionLanes(op, options, rewriter);
    if (failed(lanes))
      return failure();
    if (takesWinnowedKernel(op, *lanes, options))
      return rewriter.notifyMatchFailure(
          op, "winnowed keys and values take the transposed kernel");
    KernelBuilder kb(rewriter, op.getLoc());
    // Winnowed keys and values come here only to be expanded.
    bool expand = op.getKeyIndices() && op.getValueIndices();
    DensePartialAttentionKernel kernel(kb, op, *lanes, options.tileSize,
                                       expand);
    rewriter.replaceOp(op, kernel.build());
    return success();
  }

  VectorLoweringOptions options;
};

} // namespace

void swan::populateDensePartialAttentionToVectorPatterns(
    RewritePatternSet &patterns, const VectorLoweringOptions &options) {
  patterns.add<LowerDensePartialAttention>(patterns.getContext(), options);
}
