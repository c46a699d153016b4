//===- WinnowedPartialAttentionToVector.cpp - winnowed partial attention --===//
//
// swan.partial_attention when keys and values are both winnowed, in the
// index or the mask encoding: the transposed [D, G] kernel, never
// expanding a token into memory.
//
//===----------------------------------------------------------------------===//

#include "SwanToVectorPatterns.h"

#include "KernelBuilder.h"
#include "PartialAttention.h"
#include "swan/Dialect/SwanOps.h"

#include <numeric>

using namespace mlir;
using namespace swan;

namespace {

/// Joins a power-of-two count of equal-width vectors end to end, pairwise,
/// so that LLVM sees one full-width vector.
Value concatenate(KernelBuilder &kb, SmallVector<Value> rows) {
  while (rows.size() > 1) {
    SmallVector<Value> joined;
    for (size_t r = 0; r < rows.size(); r += 2) {
      int64_t n = cast<VectorType>(rows[r].getType()).getNumElements();
      SmallVector<int64_t> both(2 * n);
      std::iota(both.begin(), both.end(), 0);
      joined.push_back(
          kb.create<vector::ShuffleOp>(rows[r], rows[r + 1], both));
    }
    rows = std::move(joined);
  }
  return rows.front();
}

/// Dimensions [c · width, (c + 1) · width) of a token stored in the mask
/// encoding, its occupancy bytes in row `token` of `masks` and its values
/// in row `valueRow` of `values` (see PaddedRows): its kept values from
/// `start` on, expanded into place as f32 (one expanding load), and how
/// many values the chunk keeps.
std::pair<Value, Value> expandMaskedChunk(KernelBuilder &kb, Value masks,
                                          Value token, Value values,
                                          Value valueRow, Value start, Value c,
                                          int64_t width) {
  OpBuilder &b = kb.builder();
  Type storage = cast<MemRefType>(values.getType()).getElementType();
  Value bytes = kb.create<vector::LoadOp>(
      kb.vectorOf(width / 8, b.getI8Type()), masks,
      ValueRange{token, kb.create<arith::MulIOp>(c, kb.index(width / 8))});
  // One integer serves the popcount and the mask.
  Value word = kb.create<vector::BitCastOp>(
      VectorType::get({1}, b.getIntegerType(width)), bytes);
  Value mask =
      kb.create<vector::BitCastOp>(kb.vectorOf(width, b.getI1Type()), word);
  auto load = kb.create<vector::ExpandLoadOp>(
      kb.vectorOf(width, storage), values, ValueRange{valueRow, start}, mask,
      kb.zeroVector(width, storage));
  load->setAttr(kReadableTailAttrName, b.getI64IntegerAttr(kReadableTailBytes));
  Value expanded = kb.convertFloat(load, b.getF32Type());
  Value kept =
      kb.create<math::CtPopOp>(kb.create<vector::ExtractOp>(word, int64_t(0)));
  return {expanded,
          kb.create<arith::IndexCastUIOp>(b.getIndexType(), kept).getResult()};
}

/// The value rows of a mask-encoded stream as its expanding loads read
/// them. A load may read up to kReadableTailBytes past its row (a pshufb
/// window, swan-legalize-narrow-expandload), which stays inside the stream
/// while that many bytes of rows follow. The block's last rows, which they
/// may not follow, are read from a copy in stack scratch with room after
/// each row, so every load can promise its tail; the kernel gives them a
/// tile of their own (one copy of the tile's code reads either).
class PaddedRows {
public:
  /// How many of the last rows of `rows` are not followed by
  /// kReadableTailBytes of rows.
  static Value rowsToCopy(KernelBuilder &kb, Value rows) {
    Value tokens = kb.create<memref::DimOp>(rows, int64_t(0));
    Value stride =
        kb.create<memref::ExtractStridedMetadataOp>(rows).getStrides()[0];
    Value rowBytes = kb.create<arith::MaxUIOp>(
        kb.create<arith::MulIOp>(stride, kb.index(elementBytes(rows))),
        kb.index(1));
    return kb.create<arith::MinUIOp>(
        tokens,
        kb.create<arith::CeilDivUIOp>(kb.index(kReadableTailBytes), rowBytes));
  }
  /// The most rowsToCopy can be (rows hold at least one element).
  static int64_t maxRowsToCopy(Value rows) {
    return kReadableTailBytes / elementBytes(rows);
  }

  PaddedRows() = default;
  /// Copies rows [firstCopied, tokens), at most `copyRows` of them.
  PaddedRows(KernelBuilder &kb, Value rows, int64_t headDim, Value firstCopied,
             int64_t copyRows)
      : firstCopied(firstCopied) {
    Type element = cast<MemRefType>(rows.getType()).getElementType();
    int64_t rowLength = headDim + kReadableTailBytes / elementBytes(rows);
    Value scratch = kb.scratch({copyRows, rowLength}, element);
    for (int64_t r = 0; r < copyRows; ++r)
      kb.create<vector::StoreOp>(kb.zeroVector(rowLength, element), scratch,
                                 ValueRange{kb.index(r), kb.index(0)});
    Value tokens = kb.create<memref::DimOp>(rows, int64_t(0));
    Value kept = kb.create<memref::DimOp>(rows, int64_t(1));
    Value copied = kb.create<arith::SubIOp>(tokens, firstCopied);
    kb.loop(kb.index(0), copied, kb.index(1), [&](Value r) {
      Value from = kb.create<arith::AddIOp>(firstCopied, r);
      kb.loop(kb.index(0), kept, kb.index(1), [&](Value j) {
        kb.create<memref::StoreOp>(
            kb.create<memref::LoadOp>(rows, ValueRange{from, j}), scratch,
            ValueRange{r, j});
      });
    });
    Value view = kb.create<memref::SubViewOp>(
        scratch, ArrayRef<OpFoldResult>{kb.index(0), kb.index(0)},
        ArrayRef<OpFoldResult>{kb.builder().getIndexAttr(copyRows), kept},
        ArrayRef<OpFoldResult>{kb.builder().getIndexAttr(1),
                               kb.builder().getIndexAttr(1)});
    // One type for both, which selecting between them needs.
    MemRefType dynamic = MemRefType::get(
        {ShapedType::kDynamic, ShapedType::kDynamic}, element,
        StridedLayoutAttr::get(kb.builder().getContext(), ShapedType::kDynamic,
                               {ShapedType::kDynamic, 1}));
    inPlace = kb.create<memref::CastOp>(dynamic, rows);
    copy = kb.create<memref::CastOp>(dynamic, view);
  }

  /// The memref a tile from token `first` reads its rows from, and the row
  /// of token `first` there: the copy when `fromCopy`, else in place.
  std::pair<Value, Value> tileRows(KernelBuilder &kb, Value fromCopy,
                                   Value first) const {
    return {kb.create<arith::SelectOp>(fromCopy, copy, inPlace),
            kb.create<arith::SelectOp>(
                fromCopy, kb.create<arith::SubIOp>(first, firstCopied), first)};
  }

private:
  static int64_t elementBytes(Value rows) {
    return cast<MemRefType>(rows.getType()).getElementTypeBitWidth() / 8;
  }

  Value inPlace, copy, firstCopied;
};

/// Tokens between a row's prefetch and its use in winnowed partial attention.
constexpr int64_t kPrefetchTokens = 32;

/// Partial attention when keys and values are both winnowed. The rotated
/// query and the accumulator are kept transposed, [D, G] in L1, so that
/// each kept entry j of a token touches one G-wide row:
///   s += val_j · q'[idx_j, :]        acc[idx_j, :] += val_j · p
/// No gathers or scatters (slow on these cores), no horizontal reductions:
/// the G scores of a token come out as one vector.
///
/// Keys or values in the mask encoding go the other way: each token's row
/// is expanded into dense chunks of the head dimension (one vpexpandw per
/// 32 dimensions of f16). Keys then meet the [G, D] scaled query; values
/// accumulate into a [G, D] accumulator, a few chunks of it in registers
/// while the whole tile's tokens pass. Their cost per token follows D, not k.
///
/// int8 rows (SWAN-Q8) are read as they are, widened in registers: a key's
/// scale multiplies its G scores, a value's its G weights.
class WinnowedPartialAttentionKernel {
public:
  WinnowedPartialAttentionKernel(KernelBuilder &kb, PartialAttentionOp op,
                                 int64_t lanes, int64_t tile)
      : kb(kb), op(op), lanes(lanes), tile(tile) {
    RankedTensorType queryType = op.getQuery().getType();
    groups = queryType.getDimSize(0);
    headDim = queryType.getDimSize(1);
    maskedKeys = op.getKeyEncoding() == Encoding::mask;
    maskedValues = op.getValueEncoding() == Encoding::mask;
  }

  SmallVector<Value> build() {
    Type f32 = kb.builder().getF32Type();
    keys = kb.view(op.getKeyValues());
    keyIndices = kb.view(op.getKeyIndices());
    values = kb.view(op.getValueValues());
    valueIndices = kb.view(op.getValueIndices());
    if (op.getKeyScales())
      keyScales = kb.view(op.getKeyScales());
    if (op.getValueScales())
      valueScales = kb.view(op.getValueScales());
    Value query = kb.view(op.getQuery());
    queryT = kb.scratch({headDim, groups}, f32);
    weights = kb.scratch({tile * groups}, f32);
    Value zero = row(0.0);
    if (maskedKeys) {
      // Expanded keys meet the query row by row.
      queryGD = kb.scratch({groups, headDim}, f32);
      Value scale = kb.splat(op.getScale(), headDim);
      for (int64_t g = 0; g < groups; ++g)
        kb.create<vector::StoreOp>(
            kb.mul(kb.loadF32(query, {kb.index(g), kb.index(0)}, headDim),
                   scale),
            queryGD, ValueRange{kb.index(g), kb.index(0)});
    }
    // Rows from firstCopied on form the last tile, read from copies.
    Value tokens = kb.create<memref::DimOp>(keys, int64_t(0));
    Value firstCopied = tokens;
    int64_t copyRows = 0;
    for (auto [masked, rows] :
         {std::pair(maskedKeys, keys), std::pair(maskedValues, values)})
      if (masked) {
        firstCopied = kb.create<arith::MinUIOp>(
            firstCopied,
            kb.create<arith::SubIOp>(tokens, PaddedRows::rowsToCopy(kb, rows)));
        copyRows = std::max(copyRows, PaddedRows::maxRowsToCopy(rows));
      }
    if (maskedKeys)
      paddedKeys = PaddedRows(kb, keys, headDim, firstCopied, copyRows);
    if (maskedValues)
      paddedValues = PaddedRows(kb, values, headDim, firstCopied, copyRows);
    if (maskedValues) {
      accGD = kb.scratch({groups, headDim}, f32);
      valueStarts = kb.scratch({tile}, kb.builder().getIndexType());
      for (int64_t g = 0; g < groups; ++g)
        kb.create<vector::StoreOp>(kb.zeroVector(headDim, f32), accGD,
                                   ValueRange{kb.index(g), kb.index(0)});
    } else {
      accT = kb.scratch({headDim, groups}, f32);
    }
    kb.loop(kb.index(0), kb.index(headDim), kb.index(1), [&](Value d) {
      for (int64_t g = 0; g < groups && !maskedKeys; ++g) {
        Value x = kb.create<memref::LoadOp>(query, ValueRange{kb.index(g), d});
        kb.create<memref::StoreOp>(kb.mul(x, op.getScale()), queryT,
                                   ValueRange{d, kb.index(g)});
      }
      if (!maskedValues)
        kb.create<vector::StoreOp>(zero, accT, ValueRange{d, kb.index(0)});
    });

    // Tiles of `tile` tokens over [0, firstCopied), then over the copied
    // rows.
    Value tileSize = kb.index(tile);
    Value inPlaceTiles = kb.create<arith::CeilDivUIOp>(firstCopied, tileSize);
    Value tiles = kb.create<arith::AddIOp>(
        inPlaceTiles,
        kb.create<arith::CeilDivUIOp>(
            kb.create<arith::SubIOp>(tokens, firstCopied), tileSize));
    SmallVector<Value> state = kb.loop(
        kb.index(0), tiles, kb.index(1),
        {kb.splat(kb.negativeInfinity(), groups), zero},
        [&](Value i, ValueRange carried) {
          Value fromCopy =
              maskedKeys || maskedValues
                  ? kb.create<arith::CmpIOp>(arith::CmpIPredicate::uge, i,
                                             inPlaceTiles)
                        .getResult()
                  : kb.create<arith::ConstantIntOp>(kb.builder().getI1Type(), 0)
                        .getResult();
          auto pick = [&](Value copied, Value inPlace) {
            return kb.create<arith::SelectOp>(fromCopy, copied, inPlace)
                .getResult();
          };
          Value first = kb.create<arith::AddIOp>(
              pick(firstCopied, kb.index(0)),
              kb.create<arith::MulIOp>(
                  pick(kb.create<arith::SubIOp>(i, inPlaceTiles), i),
                  tileSize));
          Value end = kb.create<arith::MinUIOp>(
              kb.create<arith::AddIOp>(first, tileSize),
              pick(tokens, firstCopied));
          return processTile(first, kb.create<arith::SubIOp>(end, first),
                             fromCopy, tokens, carried[0], carried[1]);
        });
    return writeResults(state[0], state[1]);
  }

private:
  Value row(double value) { return kb.splat(kb.f32(value), groups); }

  /// `g` (one entry per query head) times the token's int8 row scale, or
  /// `g` itself when `scales` is null (float rows).
  Value scaled(Value g, Value scales, Value token) {
    if (!scales)
      return g;
    Value scale = kb.create<memref::LoadOp>(scales, ValueRange{token});
    return kb.mul(g, kb.splat(scale, groups));
  }

  /// One kept entry: its position (unsigned) and value (as f32).
  std::pair<Value, Value> entry(Value indexMemref, Value valueMemref,
                                Value token, Value j) {
    OpBuilder &b = kb.builder();
    Value raw = kb.create<memref::LoadOp>(indexMemref, ValueRange{token, j});
    Value position = kb.create<arith::IndexCastUIOp>(b.getIndexType(), raw);
    // Broadcast in the storage type, then convert: vpbroadcastw +
    // vcvtph2ps rather than a scalar conversion and a broadcast.
    Value raw16 = kb.create<memref::LoadOp>(valueMemref, ValueRange{token, j});
    Value value = kb.convertFloat(kb.splat(raw16, groups), b.getF32Type());
    return {position, value};
  }

  /// Runs `body(j)` for j in [0, count): four at a time, then the rest, so
  /// that four independent chains are in flight.
  void unrolledByFour(Value count,
                      function_ref<SmallVector<Value>(Value, ValueRange)> body,
                      SmallVector<Value> &carried, bool fourChains) {
    Value four = kb.index(4);
    Value whole =
        kb.create<arith::SubIOp>(count, kb.create<arith::RemUIOp>(count, four));
    size_t chains = fourChains ? 4 : 1;
    size_t width = carried.size() / chains;
    carried = kb.loop(
        kb.index(0), whole, four, carried, [&](Value j, ValueRange acc) {
          SmallVector<Value> next(acc.begin(), acc.end());
          for (int64_t u = 0; u < 4; ++u) {
            Value ju = kb.create<arith::AddIOp>(j, kb.index(u));
            size_t chain = fourChains ? u : 0;
            SmallVector<Value> slice(next.begin() + chain * width,
                                     next.begin() + (chain + 1) * width);
            SmallVector<Value> out = body(ju, slice);
            std::copy(out.begin(), out.end(), next.begin() + chain * width);
          }
          return next;
        });
    SmallVector<Value> first(carried.begin(), carried.begin() + width);
    SmallVector<Value> rest =
        kb.loop(whole, count, kb.index(1), first,
                [&](Value j, ValueRange acc) { return body(j, acc); });
    std::copy(rest.begin(), rest.end(), carried.begin());
  }

  /// Chunk width of the expanding loads over a row of `storage`: with
  /// AVX-512 one 512-bit load (32 dimensions of f16, one vpexpandw), or one
  /// vector of f32 lanes when that does not divide D; narrower hosts expand
  /// one vector of f32 lanes at a time (8 dimensions: one byte-shuffle
  /// window of f16, no halves to join and split again).
  int64_t expandWidth(Type storage) const {
    if (lanes < 16)
      return lanes;
    // int8 as f16: 32 dimensions, so that G = 8 keeps its accumulators in
    // registers (64 would need G · 4 of them).
    int64_t width = lanes * 32 / std::max(storage.getIntOrFloatBitWidth(), 16u);
    return headDim % width == 0 ? width : lanes;
  }

  /// The G scaled scores of a token whose key is in the mask encoding: the
  /// key expanded chunk by chunk and dotted with each query row, so the cost
  /// follows G · D rather than k (the better deal for small G).
  Value maskedScore(Value token, std::pair<Value, Value> keyRow) {
    Type f32 = kb.builder().getF32Type();
    int64_t width =
        expandWidth(cast<MemRefType>(keys.getType()).getElementType());
    SmallVector<Value> acc(groups, kb.zeroVector(width, f32));
    Value start = kb.index(0);
    for (int64_t c = 0; c < headDim / width; ++c) {
      auto [key, kept] =
          expandMaskedChunk(kb, keyIndices, token, keyRow.first, keyRow.second,
                            start, kb.index(c), width);
      start = kb.create<arith::AddIOp>(start, kept);
      for (int64_t g = 0; g < groups; ++g)
        acc[g] = kb.fma(kb.create<vector::LoadOp>(
                            kb.vectorOf(width, f32), queryGD,
                            ValueRange{kb.index(g), kb.index(c * width)}),
                        key, acc[g]);
    }
    SmallVector<Value> scores;
    for (Value a : acc)
      scores.push_back(kb.sum(a));
    return kb.create<vector::FromElementsOp>(kb.vectorOf(groups, f32), scores);
  }

  /// The G scaled scores of one token; `keyRow`: the memref and row its
  /// mask-encoded key's values are read at (PaddedRows).
  Value score(Value token, std::pair<Value, Value> keyRow) {
    if (maskedKeys)
      return maskedScore(token, keyRow);
    Value kept = kb.create<memref::DimOp>(keys, int64_t(1));
    // With 2 <= G < 16 dividing 16, 16 / G entries share one 16-lane FMA:
    // their query rows side by side, each value repeated G times.
    int64_t packed = 16 / groups;
    auto [strides, offset] =
        cast<MemRefType>(keys.getType()).getStridesAndOffset();
    (void)offset;
    if (groups >= 2 && groups < 16 && 16 % groups == 0 && strides.back() == 1)
      return packedScore(token, kept, packed);
    SmallVector<Value> acc(4, row(0.0));
    unrolledByFour(
        kept,
        [&](Value j, ValueRange partial) {
          auto [position, value] = entry(keyIndices, keys, token, j);
          Value q = kb.create<vector::LoadOp>(
              kb.vectorOf(groups, kb.builder().getF32Type()), queryT,
              ValueRange{position, kb.index(0)});
          return SmallVector<Value>{kb.fma(value, q, partial[0])};
        },
        acc, /*fourChains=*/true);
    return kb.add(kb.add(acc[0], acc[1]), kb.add(acc[2], acc[3]));
  }

  Value packedScore(Value token, Value kept, int64_t packed) {
    OpBuilder &b = kb.builder();
    Type f32 = b.getF32Type();
    Type storage = cast<MemRefType>(keys.getType()).getElementType();
    // Two packs per iteration, on two chains.
    int64_t step = 2 * packed;
    Value whole = kb.create<arith::SubIOp>(
        kept, kb.create<arith::RemUIOp>(kept, kb.index(step)));
    SmallVector<int64_t> repeat;
    for (int64_t e = 0; e < packed; ++e)
      for (int64_t g = 0; g < groups; ++g)
        repeat.push_back(e);
    auto pack = [&](Value j, Value acc) {
      // Query rows of the pack, concatenated pairwise.
      SmallVector<Value> rows;
      for (int64_t e = 0; e < packed; ++e) {
        Value je = kb.create<arith::AddIOp>(j, kb.index(e));
        Value raw =
            kb.create<memref::LoadOp>(keyIndices, ValueRange{token, je});
        Value position = kb.create<arith::IndexCastUIOp>(b.getIndexType(), raw);
        rows.push_back(
            kb.create<vector::LoadOp>(kb.vectorOf(groups, f32), queryT,
                                      ValueRange{position, kb.index(0)}));
      }
      Value row = concatenate(kb, std::move(rows));
      Value values = kb.create<vector::LoadOp>(kb.vectorOf(packed, storage),
                                               keys, ValueRange{token, j});
      Value spread = kb.convertFloat(
          kb.create<vector::ShuffleOp>(values, values, repeat), f32);
      return kb.fma(spread, row, acc);
    };
    Value zero = kb.zeroVector(16, f32);
    SmallVector<Value> chains = kb.loop(
        kb.index(0), whole, kb.index(step), {zero, zero},
        [&](Value j, ValueRange acc) {
          return SmallVector<Value>{
              pack(j, acc[0]),
              pack(kb.create<arith::AddIOp>(j, kb.index(packed)), acc[1])};
        });
    Value wide = kb.add(chains[0], chains[1]);
    Value total = kb.create<vector::ExtractStridedSliceOp>(
        wide, ArrayRef<int64_t>{0}, ArrayRef<int64_t>{groups},
        ArrayRef<int64_t>{1});
    for (int64_t e = 1; e < packed; ++e)
      total =
          kb.add(total, kb.create<vector::ExtractStridedSliceOp>(
                            wide, ArrayRef<int64_t>{e * groups},
                            ArrayRef<int64_t>{groups}, ArrayRef<int64_t>{1}));
    // The last k mod (2 · 16 / G) entries one at a time.
    return kb.loop(
        whole, kept, kb.index(1), {total}, [&](Value j, ValueRange acc) {
          auto [position, value] = entry(keyIndices, keys, token, j);
          Value q =
              kb.create<vector::LoadOp>(kb.vectorOf(groups, f32), queryT,
                                        ValueRange{position, kb.index(0)});
          return SmallVector<Value>{kb.fma(value, q, acc[0])};
        })[0];
  }

  /// acc[idx_j, :] += val_j · p for every kept value of one token.
  void accumulate(Value token, Value p) {
    Value kept = kb.create<memref::DimOp>(values, int64_t(1));
    auto [strides, offset] =
        cast<MemRefType>(values.getType()).getStridesAndOffset();
    (void)offset;
    if (groups >= 2 && groups < 16 && 16 % groups == 0 && strides.back() == 1)
      return packedAccumulate(token, p, kept, 16 / groups);
    SmallVector<Value> none;
    unrolledByFour(
        kept,
        [&](Value j, ValueRange) {
          auto [position, value] = entry(valueIndices, values, token, j);
          SmallVector<Value> at{position, kb.index(0)};
          Value old = kb.create<vector::LoadOp>(
              kb.vectorOf(groups, kb.builder().getF32Type()), accT, at);
          kb.create<vector::StoreOp>(kb.fma(value, p, old), accT, at);
          return SmallVector<Value>();
        },
        none, /*fourChains=*/false);
  }

  /// 16 / G kept values per 16-lane FMA: their accumulator rows side by
  /// side, each value repeated G times, p tiled; the rows go back one by
  /// one (a token's indices are distinct, so they never overlap).
  void packedAccumulate(Value token, Value p, Value kept, int64_t packed) {
    OpBuilder &b = kb.builder();
    Type f32 = b.getF32Type();
    Type storage = cast<MemRefType>(values.getType()).getElementType();
    Value whole = kb.create<arith::SubIOp>(
        kept, kb.create<arith::RemUIOp>(kept, kb.index(packed)));
    SmallVector<int64_t> repeat, tile;
    for (int64_t e = 0; e < packed; ++e)
      for (int64_t g = 0; g < groups; ++g) {
        repeat.push_back(e);
        tile.push_back(g);
      }
    Value tiledP = kb.create<vector::ShuffleOp>(p, p, tile);
    kb.loop(kb.index(0), whole, kb.index(packed), [&](Value j) {
      SmallVector<SmallVector<Value>> at;
      SmallVector<Value> rows;
      for (int64_t e = 0; e < packed; ++e) {
        Value je = kb.create<arith::AddIOp>(j, kb.index(e));
        Value raw =
            kb.create<memref::LoadOp>(valueIndices, ValueRange{token, je});
        Value position = kb.create<arith::IndexCastUIOp>(b.getIndexType(), raw);
        at.push_back({position, kb.index(0)});
        rows.push_back(kb.create<vector::LoadOp>(kb.vectorOf(groups, f32), accT,
                                                 at.back()));
      }
      Value row = concatenate(kb, std::move(rows));
      Value vals = kb.create<vector::LoadOp>(kb.vectorOf(packed, storage),
                                             values, ValueRange{token, j});
      Value spread = kb.convertFloat(
          kb.create<vector::ShuffleOp>(vals, vals, repeat), f32);
      Value updated = kb.fma(spread, tiledP, row);
      for (int64_t e = 0; e < packed; ++e)
        kb.create<vector::StoreOp>(kb.create<vector::ExtractStridedSliceOp>(
                                       updated, ArrayRef<int64_t>{e * groups},
                                       ArrayRef<int64_t>{groups},
                                       ArrayRef<int64_t>{1}),
                                   accT, at[e]);
    });
    kb.loop(whole, kept, kb.index(1), [&](Value j) {
      auto [position, value] = entry(valueIndices, values, token, j);
      SmallVector<Value> at{position, kb.index(0)};
      Value old = kb.create<vector::LoadOp>(kb.vectorOf(groups, f32), accT, at);
      kb.create<vector::StoreOp>(kb.fma(value, p, old), accT, at);
    });
  }

  /// The `count` tokens from `first`; `fromCopy`: mask-encoded rows are
  /// read from their copies (PaddedRows).
  SmallVector<Value> processTile(Value first, Value count, Value fromCopy,
                                 Value tokens, Value oldMax, Value oldSum) {
    Type f32 = kb.builder().getF32Type();
    VectorType rowType = kb.vectorOf(groups, f32);
    std::pair<Value, Value> keyRows =
        maskedKeys ? paddedKeys.tileRows(kb, fromCopy, first)
                   : std::pair<Value, Value>();
    Value tileMax = kb.loop(
        kb.index(0), count, kb.index(1), {row(0.0)},
        [&](Value t, ValueRange m) {
          Value token = kb.create<arith::AddIOp>(first, t);
          if (maskedKeys || maskedValues)
            prefetchAhead(token, tokens);
          std::pair<Value, Value> keyRow;
          if (maskedKeys)
            keyRow = {keyRows.first,
                      kb.create<arith::AddIOp>(keyRows.second, t)};
          Value s = scaled(score(token, keyRow), keyScales, token);
          kb.create<vector::StoreOp>(
              s, weights,
              ValueRange{kb.create<arith::MulIOp>(t, kb.index(groups))});
          Value isFirst = kb.create<arith::CmpIOp>(arith::CmpIPredicate::eq, t,
                                                   kb.index(0));
          Value best = kb.create<arith::MaximumFOp>(m[0], s);
          return SmallVector<Value>{
              kb.create<arith::SelectOp>(isFirst, s, best)};
        })[0];
    Value newMax = kb.create<arith::MaximumFOp>(oldMax, tileMax);
    // exp(-inf - m) is 0; select it rather than trust the approximation.
    Value wasEmpty =
        kb.create<arith::CmpFOp>(arith::CmpFPredicate::OEQ, oldMax,
                                 kb.splat(kb.negativeInfinity(), groups));
    Value alpha = kb.create<arith::SelectOp>(wasEmpty, row(0.0),
                                             kb.exp(kb.sub(oldMax, newMax)));

    // Weights of the whole tile in one flat exp; rows past `count` hold
    // leftovers that nothing reads.
    int64_t flat = tile * groups;
    VectorType flatType = kb.vectorOf(flat, f32);
    Value shifted = kb.create<vector::ShapeCastOp>(
        flatType, kb.create<vector::BroadcastOp>(
                      VectorType::get({tile, groups}, f32), newMax));
    Value scores =
        kb.create<vector::LoadOp>(flatType, weights, ValueRange{kb.index(0)});
    kb.create<vector::StoreOp>(kb.exp(kb.sub(scores, shifted)), weights,
                               ValueRange{kb.index(0)});

    if (!maskedValues)
      kb.loop(kb.index(0), kb.index(headDim), kb.index(1), [&](Value d) {
        Value acc = kb.create<vector::LoadOp>(rowType, accT,
                                              ValueRange{d, kb.index(0)});
        kb.create<vector::StoreOp>(kb.mul(acc, alpha), accT,
                                   ValueRange{d, kb.index(0)});
      });
    Value sum = kb.loop(
        kb.index(0), count, kb.index(1), {kb.mul(oldSum, alpha)},
        [&](Value t, ValueRange l) {
          Value at = kb.create<arith::MulIOp>(t, kb.index(groups));
          Value p = kb.create<vector::LoadOp>(rowType, weights, ValueRange{at});
          Value token = kb.create<arith::AddIOp>(first, t);
          // int8 values: the weights that meet them carry their scale.
          Value valueWeights = scaled(p, valueScales, token);
          if (!maskedValues)
            accumulate(token, valueWeights);
          else if (valueScales)
            kb.create<vector::StoreOp>(valueWeights, weights, ValueRange{at});
          return SmallVector<Value>{kb.add(l[0], p)};
        })[0];
    if (maskedValues)
      accumulateMasked(first, count, fromCopy, alpha);
    return {newMax, sum};
  }

  /// Asks for the rows of the token kPrefetchTokens ahead in all four
  /// streams while scores are computed. Mask-encoded value rows are
  /// otherwise first touched by the chunk-major value loop, whose loads
  /// overlap little (swan-bench, G = 4, D = 128, L = 65536, k = 64 as
  /// masks: 10.6 ms without one prefetch per 64 bytes of a row, 6.6 ms
  /// with). The index encoding's loop reads each row right after scoring
  /// it and showed no gain, so it does not prefetch.
  void prefetchAhead(Value token, Value tokens) {
    Value ahead = kb.create<arith::MinSIOp>(
        kb.create<arith::AddIOp>(token, kb.index(kPrefetchTokens)),
        kb.create<arith::SubIOp>(tokens, kb.index(1)));
    for (Value stream : {keys, keyIndices, values, valueIndices})
      kb.prefetchRow(stream, ahead);
  }

  /// acc[g, :] = alpha_g · acc[g, :] + Σ_t p_t,g · v_t for the tile's
  /// tokens, v_t expanded chunk by chunk from the mask encoding. Chunk-major:
  /// the accumulator rows of a few chunks stay in registers across the tile
  /// (as many as accumulatorRegisters allows), each token's G weights are
  /// broadcast once per pass, and valueStarts[t] carries where token t's
  /// next chunk begins from one pass to the next.
  void accumulateMasked(Value first, Value count, Value fromCopy, Value alpha) {
    Type f32 = kb.builder().getF32Type();
    Type storage = cast<MemRefType>(values.getType()).getElementType();
    int64_t width = expandWidth(storage);
    int64_t chunks = headDim / width;
    int64_t registersPerChunk = groups * width / lanes;
    int64_t perPass = std::clamp<int64_t>(
        accumulatorRegisters(lanes) / registersPerChunk, 1, chunks);
    VectorType chunkType = kb.vectorOf(width, f32);
    std::pair<Value, Value> tileRows =
        paddedValues.tileRows(kb, fromCopy, first);
    Value valueRows = tileRows.first, firstRow = tileRows.second;
    // valueStarts starts each tile at zero (one pass needs none).
    bool severalPasses = chunks > perPass;
    if (severalPasses)
      kb.loop(kb.index(0), count, kb.index(1), [&](Value t) {
        kb.create<memref::StoreOp>(kb.index(0), valueStarts, ValueRange{t});
      });
    forPasses(kb, chunks, perPass, [&](Value c0, int64_t passChunks) {
      SmallVector<Value> chunkIndex, columns;
      for (int64_t i = 0; i < passChunks; ++i) {
        chunkIndex.push_back(kb.create<arith::AddIOp>(c0, kb.index(i)));
        columns.push_back(
            kb.create<arith::MulIOp>(chunkIndex.back(), kb.index(width)));
      }
      // rows[g * passChunks + i]: query head g, chunk c0 + i.
      SmallVector<Value> rows;
      for (int64_t g = 0; g < groups; ++g) {
        Value scale = kb.splat(kb.create<vector::ExtractOp>(alpha, g), width);
        for (int64_t i = 0; i < passChunks; ++i)
          rows.push_back(
              kb.mul(kb.create<vector::LoadOp>(
                         chunkType, accGD, ValueRange{kb.index(g), columns[i]}),
                     scale));
      }
      rows = kb.loop(
          kb.index(0), count, kb.index(1), rows, [&](Value t, ValueRange acc) {
            Value token = kb.create<arith::AddIOp>(first, t);
            Value valueRow = kb.create<arith::AddIOp>(firstRow, t);
            Value start =
                severalPasses
                    ? kb.create<memref::LoadOp>(valueStarts, ValueRange{t})
                          .getResult()
                    : kb.index(0);
            SmallVector<Value> chunkValues;
            for (int64_t i = 0; i < passChunks; ++i) {
              auto [chunk, kept] =
                  expandMaskedChunk(kb, valueIndices, token, valueRows,
                                    valueRow, start, chunkIndex[i], width);
              chunkValues.push_back(chunk);
              start = kb.create<arith::AddIOp>(start, kept);
            }
            if (severalPasses)
              kb.create<memref::StoreOp>(start, valueStarts, ValueRange{t});
            Value at = kb.create<arith::MulIOp>(t, kb.index(groups));
            SmallVector<Value> next;
            for (int64_t g = 0; g < groups; ++g) {
              Value p = kb.splat(
                  kb.create<memref::LoadOp>(
                      weights,
                      ValueRange{kb.create<arith::AddIOp>(at, kb.index(g))}),
                  width);
              for (int64_t i = 0; i < passChunks; ++i)
                next.push_back(
                    kb.fma(p, chunkValues[i], acc[g * passChunks + i]));
            }
            return next;
          });
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t i = 0; i < passChunks; ++i)
          kb.create<vector::StoreOp>(rows[g * passChunks + i], accGD,
                                     ValueRange{kb.index(g), columns[i]});
    });
  }

  SmallVector<Value> writeResults(Value max, Value sum) {
    if (maskedValues)
      return partialResults(kb, op, max, sum, accGD, groups, headDim);
    Type f32 = kb.builder().getF32Type();
    Value zero = kb.index(0);
    // Back to [G, D] through a small scratch.
    Value acc = kb.scratch({groups, headDim}, f32);
    kb.loop(kb.index(0), kb.index(headDim), kb.index(1), [&](Value d) {
      Value r = kb.create<vector::LoadOp>(kb.vectorOf(groups, f32), accT,
                                          ValueRange{d, zero});
      for (int64_t g = 0; g < groups; ++g)
        kb.create<memref::StoreOp>(kb.create<vector::ExtractOp>(r, g), acc,
                                   ValueRange{kb.index(g), d});
    });
    return partialResults(kb, op, max, sum, acc, groups, headDim);
  }

  KernelBuilder &kb;
  PartialAttentionOp op;
  int64_t lanes, tile, groups = 0, headDim = 0;
  bool maskedKeys = false, maskedValues = false;
  Value keys, keyIndices, values, valueIndices;
  Value keyScales, valueScales; // int8 rows only
  Value queryT, queryGD, accT, accGD, valueStarts, weights;
  PaddedRows paddedKeys, paddedValues;
};

struct LowerWinnowedPartialAttention : OpRewritePattern<PartialAttentionOp> {
  LowerWinnowedPartialAttention(MLIRContext *context,
                                const VectorLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}

  LogicalResult matchAndRewrite(PartialAttentionOp op,
                                PatternRewriter &rewriter) const override {
    FailureOr<int64_t> lanes = partialAttentionLanes(op, options, rewriter);
    if (failed(lanes))
      return failure();
    if (!takesWinnowedKernel(op, *lanes, options))
      return rewriter.notifyMatchFailure(
          op, "keys and values not both winnowed, or expanded instead");
    KernelBuilder kb(rewriter, op.getLoc());
    WinnowedPartialAttentionKernel kernel(kb, op, *lanes, options.tileSize);
    rewriter.replaceOp(op, kernel.build());
    return success();
  }

  VectorLoweringOptions options;
};

} // namespace

void swan::populateWinnowedPartialAttentionToVectorPatterns(
    RewritePatternSet &patterns, const VectorLoweringOptions &options) {
  patterns.add<LowerWinnowedPartialAttention>(patterns.getContext(), options);
}
