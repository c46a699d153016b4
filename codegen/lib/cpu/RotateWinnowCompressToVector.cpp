//===- RotateWinnowCompressToVector.cpp - swan.rotate, winnow, compress ---===//
//
// Rotation streams R once per block of rows; winnowing is an exact,
// branch-free bitwise search for the k-th largest magnitude. Compress
// winnows rotated rows straight from L1 scratch.
//
//===----------------------------------------------------------------------===//

#include "SwanToVectorPatterns.h"

#include "KernelBuilder.h"
#include "swan/Dialect/SwanOps.h"

using namespace mlir;
using namespace swan;

namespace {

/// Rows per block of the rotation: R ([D, D], 64 KiB at D = 128, more than
/// L1) is streamed once per block instead of once per row.
constexpr int64_t kRotationRowBlock = 4;

/// Rotates rows [first, first + rows) of `x`, `rows` static, into rows
/// [at, at + rows) of the f32 `scratch` ([·, D], in L1): for each group of
/// output chunks, rows x chunks accumulators (at most 16 vector registers),
/// one pass over R.
void rotateRowBlock(KernelBuilder &kb, Value x, Value first, int64_t rows,
                    Value rotation, int64_t headDim, int64_t lanes,
                    Value scratch, Value at) {
  Type f32 = kb.builder().getF32Type();
  int64_t chunks = headDim / lanes;
  int64_t group = std::max<int64_t>(1, std::min<int64_t>(chunks, 16 / rows));
  SmallVector<Value> rowIndex;
  for (int64_t r = 0; r < rows; ++r)
    rowIndex.push_back(kb.create<arith::AddIOp>(first, kb.index(r)));
  for (int64_t c0 = 0; c0 < chunks; c0 += group) {
    int64_t width = std::min(group, chunks - c0);
    SmallVector<Value> zeros(rows * width, kb.zeroVector(lanes, f32));
    SmallVector<Value> acc = kb.loop(
        kb.index(0), kb.index(headDim), kb.index(1), zeros,
        [&](Value j, ValueRange partial) {
          SmallVector<Value> xj;
          for (int64_t r = 0; r < rows; ++r)
            xj.push_back(
                kb.splat(kb.convertFloat(kb.create<memref::LoadOp>(
                                             x, ValueRange{rowIndex[r], j}),
                                         f32),
                         lanes));
          SmallVector<Value> next(partial.begin(), partial.end());
          for (int64_t c = 0; c < width; ++c) {
            Value rc =
                kb.loadF32(rotation, {j, kb.index((c0 + c) * lanes)}, lanes);
            for (int64_t r = 0; r < rows; ++r)
              next[r * width + c] = kb.fma(xj[r], rc, next[r * width + c]);
          }
          return next;
        });
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < width; ++c)
        kb.create<vector::StoreOp>(
            acc[r * width + c], scratch,
            ValueRange{kb.create<arith::AddIOp>(at, kb.index(r)),
                       kb.index((c0 + c) * lanes)});
  }
}

/// Runs `block(first, count)` over [0, rows): blocks of `blockRows`, then
/// the remaining rows one at a time.
void forRowBlocks(
    KernelBuilder &kb, Value rows, int64_t blockRows, ValueRange inits,
    SmallVector<Value> &results,
    function_ref<SmallVector<Value>(Value, int64_t, ValueRange)> block) {
  Value blockCount = kb.index(blockRows);
  Value whole = kb.create<arith::SubIOp>(
      rows, kb.create<arith::RemUIOp>(rows, blockCount));
  results = kb.loop(kb.index(0), whole, blockCount, inits,
                    [&](Value first, ValueRange carried) {
                      return block(first, blockRows, carried);
                    });
  results = kb.loop(whole, rows, kb.index(1), results,
                    [&](Value first, ValueRange carried) {
                      return block(first, 1, carried);
                    });
}

/// Winnows the f32 row `r` of `rows` ([·, D] scratch): its k entries of largest
/// magnitude, ties to the lower index, compacted in ascending index order
/// into `keptValues` and `keptIndices` ([D] scratch each).
///
/// Exact and branch-free, in O(D · 40 / lanes) vector operations: the bits
/// of |x| order like the magnitudes, so a bitwise search finds T, the k-th
/// largest magnitude (the largest T with #{|x| >= T} >= k). Every entry
/// above T is kept; of the entries equal to T, the first k - #{|x| > T} in
/// index order are, found by a second bitwise search over positions.
/// `keptPositions` receives the kept indices, or with the mask encoding the
/// row's occupancy bytes (lanes is then a multiple of 8).
///
/// With int8 `keptValues` (SWAN-Q8) the kept entries are stored as
/// round(x / s), s = max|x| / 127, and s is returned (else a null Value).
/// The row's largest magnitude is always kept, so s needs no search.
Value winnowRow(KernelBuilder &kb, Value rows, Value r, Value k,
                int64_t headDim, int64_t lanes, Value keptValues,
                Value keptPositions, Encoding encoding) {
  OpBuilder &b = kb.builder();
  Type i32 = b.getI32Type();
  VectorType i32Vector = kb.vectorOf(lanes, i32);
  int64_t chunks = headDim / lanes;
  SmallVector<Value> magnitudes, positions;
  for (int64_t c = 0; c < chunks; ++c) {
    Value chunk =
        kb.create<vector::LoadOp>(kb.vectorOf(lanes, b.getF32Type()), rows,
                                  ValueRange{r, kb.index(c * lanes)});
    magnitudes.push_back(
        kb.create<arith::BitcastOp>(i32Vector, kb.create<math::AbsFOp>(chunk)));
    positions.push_back(kb.laneNumbers(lanes, c * lanes));
  }
  // #{lanes where predicate(c) holds}, as an i32: each chunk's mask as an
  // integer, popcount, then a balanced sum. The searches below are chains
  // of these counts, so their latency is what matters.
  Type maskInteger = b.getIntegerType(lanes);
  auto countWhere = [&](function_ref<Value(int64_t)> predicate) {
    SmallVector<Value> counts;
    for (int64_t c = 0; c < chunks; ++c) {
      Value bits = kb.create<vector::ExtractOp>(
          kb.create<vector::BitCastOp>(VectorType::get({1}, maskInteger),
                                       predicate(c)),
          int64_t(0));
      Value population = kb.create<math::CtPopOp>(bits);
      if (lanes < 32)
        population = kb.create<arith::ExtUIOp>(i32, population);
      else if (lanes > 32)
        population = kb.create<arith::TruncIOp>(i32, population);
      counts.push_back(population);
    }
    while (counts.size() > 1) {
      SmallVector<Value> sums;
      for (size_t i = 0; i + 1 < counts.size(); i += 2)
        sums.push_back(kb.create<arith::AddIOp>(counts[i], counts[i + 1]));
      if (counts.size() % 2)
        sums.push_back(counts.back());
      counts = std::move(sums);
    }
    return counts.front();
  };
  auto compare = [&](arith::CmpIPredicate predicate, Value lhs, Value rhs) {
    return kb.create<arith::CmpIOp>(predicate, lhs, rhs).getResult();
  };
  // Greedy from the high bit: the largest value with `accept(candidate)`.
  auto bitwiseSearch = [&](int64_t bits,
                           function_ref<Value(Value candidate)> accept) {
    return kb.loop(kb.index(0), kb.index(bits), kb.index(1), {kb.i32(0)},
                   [&](Value step, ValueRange found) {
                     Value shift = kb.create<arith::SubIOp>(
                         kb.i32(bits - 1),
                         kb.create<arith::IndexCastOp>(i32, step));
                     Value candidate = kb.create<arith::OrIOp>(
                         found[0], kb.create<arith::ShLIOp>(kb.i32(1), shift));
                     return SmallVector<Value>{kb.create<arith::SelectOp>(
                         accept(candidate), candidate, found[0])};
                   })[0];
  };

  Value k32 = kb.create<arith::IndexCastOp>(i32, k);
  // Magnitudes are non-negative, so their bits fit in 31.
  Value threshold = bitwiseSearch(31, [&](Value candidate) {
    Value bound = kb.splat(candidate, lanes);
    return compare(arith::CmpIPredicate::sge, countWhere([&](int64_t c) {
                     return compare(arith::CmpIPredicate::sge, magnitudes[c],
                                    bound);
                   }),
                   k32);
  });
  Value thresholdVector = kb.splat(threshold, lanes);
  SmallVector<Value> above, tied;
  for (int64_t c = 0; c < chunks; ++c) {
    above.push_back(
        compare(arith::CmpIPredicate::sgt, magnitudes[c], thresholdVector));
    tied.push_back(
        compare(arith::CmpIPredicate::eq, magnitudes[c], thresholdVector));
  }
  Value needed = kb.create<arith::SubIOp>(
      k32, countWhere([&](int64_t c) { return above[c]; }));
  // The last position whose tied predecessors number fewer than `needed`.
  int64_t positionBits = llvm::Log2_64_Ceil(uint64_t(headDim));
  Value lastTied =
      bitwiseSearch(std::max<int64_t>(positionBits, 1), [&](Value candidate) {
        Value bound = kb.splat(candidate, lanes);
        Value before = countWhere([&](int64_t c) {
          return kb.create<arith::AndIOp>(
              tied[c], compare(arith::CmpIPredicate::slt, positions[c], bound));
        });
        return compare(arith::CmpIPredicate::slt, before, needed);
      });
  Value anyTied =
      kb.splat(compare(arith::CmpIPredicate::sgt, needed, kb.i32(0)), lanes);
  Value lastTiedVector = kb.splat(lastTied, lanes);
  SmallVector<Value> keep;
  for (int64_t c = 0; c < chunks; ++c) {
    Value tiedKept = kb.create<arith::AndIOp>(
        kb.create<arith::AndIOp>(tied[c], anyTied),
        compare(arith::CmpIPredicate::sle, positions[c], lastTiedVector));
    keep.push_back(kb.create<arith::OrIOp>(above[c], tiedKept));
  }

  Type valueType = cast<MemRefType>(keptValues.getType()).getElementType();
  Type indexType = cast<MemRefType>(keptPositions.getType()).getElementType();
  Value scale;
  if (isa<IntegerType>(valueType)) {
    // Non-negative floats order like their bits.
    Value largest = magnitudes.front();
    for (int64_t c = 1; c < chunks; ++c)
      largest = kb.create<arith::MaxSIOp>(largest, magnitudes[c]);
    Value maxBits =
        kb.create<vector::ReductionOp>(vector::CombiningKind::MAXSI, largest);
    scale = kb.create<arith::DivFOp>(
        kb.create<arith::BitcastOp>(b.getF32Type(), maxBits), kb.f32(127.0));
  }
  // A kept entry as stored: converted, or quantised by `scale`.
  auto stored = [&](Value x) -> Value {
    if (!scale)
      return kb.convertFloat(x, valueType);
    // An all-zero row has s = 0 and stores zeros.
    Value zeroScale =
        kb.create<arith::CmpFOp>(arith::CmpFPredicate::OEQ, scale, kb.f32(0.0));
    Value q = kb.create<arith::SelectOp>(zeroScale, kb.f32(0.0),
                                         kb.create<arith::DivFOp>(x, scale));
    q = kb.create<math::RoundEvenOp>(q);
    q = kb.create<arith::MinimumFOp>(
        kb.create<arith::MaximumFOp>(q, kb.f32(-127.0)), kb.f32(127.0));
    return kb.create<arith::FPToSIOp>(valueType, q);
  };
  if (encoding == Encoding::mask)
    for (int64_t c = 0; c < chunks; ++c) {
      // Lane d of the i1 vector is bit d of the bytes (little-endian).
      Value bytes = kb.create<vector::BitCastOp>(
          kb.vectorOf(lanes / 8, indexType), keep[c]);
      kb.create<vector::StoreOp>(bytes, keptPositions,
                                 ValueRange{kb.index(c * lanes / 8)});
    }
  // Compaction: one step per kept entry, over the keep bits of up to 64
  // positions at a time. vector.compressstore would be one instruction with
  // AVX-512 but a branch per lane elsewhere: several times the code, for
  // nothing against the search above.
  int64_t chunksPerWord = 64 % lanes == 0 ? 64 / lanes : 1;
  Type word = b.getIntegerType(chunksPerWord * lanes);
  Value next = kb.index(0);
  for (int64_t c0 = 0; c0 < chunks; c0 += chunksPerWord) {
    Value bits = kb.create<arith::ConstantOp>(IntegerAttr::get(word, 0));
    for (int64_t c = c0; c < std::min(chunks, c0 + chunksPerWord); ++c) {
      Value piece = kb.create<vector::ExtractOp>(
          kb.create<vector::BitCastOp>(
              VectorType::get({1}, b.getIntegerType(lanes)), keep[c]),
          int64_t(0));
      if (piece.getType() != word)
        piece = kb.create<arith::ExtUIOp>(word, piece);
      Value shift = kb.create<arith::ConstantOp>(
          IntegerAttr::get(word, (c - c0) * lanes));
      bits =
          kb.create<arith::OrIOp>(bits, kb.create<arith::ShLIOp>(piece, shift));
    }
    Value count = kb.create<arith::IndexCastUIOp>(
        b.getIndexType(), kb.create<math::CtPopOp>(bits));
    Value oneBit = kb.create<arith::ConstantOp>(IntegerAttr::get(word, 1));
    kb.loop(
        kb.index(0), count, kb.index(1), {bits}, [&](Value i, ValueRange left) {
          Value lowest = kb.create<arith::IndexCastUIOp>(
              b.getIndexType(), kb.create<math::CountTrailingZerosOp>(left[0]));
          Value position =
              kb.create<arith::AddIOp>(lowest, kb.index(c0 * lanes));
          Value slot = kb.create<arith::AddIOp>(next, i);
          Value value =
              kb.create<memref::LoadOp>(rows, ValueRange{r, position});
          kb.create<memref::StoreOp>(stored(value), keptValues,
                                     ValueRange{slot});
          if (encoding != Encoding::mask)
            kb.create<memref::StoreOp>(
                kb.create<arith::IndexCastUIOp>(indexType, position),
                keptPositions, ValueRange{slot});
          return SmallVector<Value>{kb.create<arith::AndIOp>(
              left[0], kb.create<arith::SubIOp>(left[0], oneBit))};
        });
    next = kb.create<arith::AddIOp>(next, count);
  }
  return scale;
}

//===----------------------------------------------------------------------===//
// rotate
//===----------------------------------------------------------------------===//

struct LowerRotate : OpRewritePattern<RotateOp> {
  LowerRotate(MLIRContext *context, const VectorLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}

  LogicalResult matchAndRewrite(RotateOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType inputType = op.getInput().getType();
    int64_t headDim = inputType.getDimSize(1);
    FailureOr<int64_t> lanes = lanesFor(headDim, options.vectorWidth);
    if (failed(lanes))
      return rewriter.notifyMatchFailure(op, "head dimension not tiled");
    KernelBuilder kb(rewriter, op.getLoc());
    Value x = kb.view(op.getInput());
    Value rotation = kb.view(op.getRotation());
    Value rows = kb.create<tensor::DimOp>(op.getInput(), int64_t(0));
    auto resultType = cast<RankedTensorType>(op.getResult().getType());
    Value out = kb.emptyTensor(resultType, {rows, kb.index(headDim)});
    // Chunks gather in L1 scratch and each row is written whole: one tensor
    // write per chunk made a chain that bufferization analyses in quadratic
    // time.
    Value scratch =
        kb.scratch({kRotationRowBlock, headDim}, kb.builder().getF32Type());
    SmallVector<Value> result;
    forRowBlocks(
        kb, rows, kRotationRowBlock, {out}, result,
        [&](Value first, int64_t count, ValueRange t) {
          rotateRowBlock(kb, x, first, count, rotation, headDim, *lanes,
                         scratch, kb.index(0));
          Value written = t[0];
          for (int64_t r = 0; r < count; ++r) {
            Value row =
                kb.loadF32(scratch, {kb.index(r), kb.index(0)}, headDim);
            written = kb.writeToTensor(
                kb.convertFloat(row, resultType.getElementType()), written,
                {kb.create<arith::AddIOp>(first, kb.index(r)), kb.index(0)});
          }
          return SmallVector<Value>{written};
        });
    rewriter.replaceOp(op, result);
    return success();
  }

  VectorLoweringOptions options;
};

//===----------------------------------------------------------------------===//
// winnow and compress
//===----------------------------------------------------------------------===//

/// Writes elements [0, count) of the 1-D memref `source` into row `row` of
/// the 2-D tensor `out`, `lanes` at a time: whole pieces, then one masked
/// piece. `source` holds `lanes` elements more than `count` can reach. (One
/// masked write of the whole row would be a branch per element without
/// AVX-512.)
Value writeRowPrefix(KernelBuilder &kb, Value source, Value count, Value out,
                     Value row, int64_t lanes) {
  VectorType piece =
      kb.vectorOf(lanes, cast<MemRefType>(source.getType()).getElementType());
  Value step = kb.index(lanes);
  Value whole =
      kb.create<arith::SubIOp>(count, kb.create<arith::RemUIOp>(count, step));
  auto load = [&](Value column) {
    return kb.create<vector::LoadOp>(piece, source, ValueRange{column});
  };
  out = kb.loop(
      kb.index(0), whole, step, {out}, [&](Value column, ValueRange written) {
        return SmallVector<Value>{
            kb.writeToTensor(load(column), written[0], {row, column})};
      })[0];
  return kb.writeToTensor(load(whole), out, {row, whole}, /*inBounds=*/false);
}

/// The shared kernel: `fillRows(first, count, scratch, at)` puts `count` f32
/// input rows from `first` on (count static, at most `blockRows`) into rows
/// [at, at + count) of the [blockRows, D] scratch; then a loop winnows each
/// row and writes it out. Whole blocks and the last partial one share that
/// loop: the winnowing is most of the kernel's compile time.
LogicalResult lowerWinnowing(
    Operation *op, Value input, Value k, Value valuesResult,
    Value indicesResult, Value scalesResult, Encoding encoding,
    const VectorLoweringOptions &options, PatternRewriter &rewriter,
    int64_t blockRows,
    llvm::function_ref<void(KernelBuilder &, Value first, int64_t count,
                            Value scratch, Value at, int64_t lanes)>
        fillRows) {
  auto inputType = cast<RankedTensorType>(input.getType());
  int64_t headDim = inputType.getDimSize(1);
  FailureOr<int64_t> lanes = lanesFor(headDim, options.vectorWidth);
  if (failed(lanes))
    return rewriter.notifyMatchFailure(op, "head dimension not tiled");
  bool masked = encoding == Encoding::mask;
  if (masked && *lanes % 8 != 0)
    return rewriter.notifyMatchFailure(op, "masks need chunks of 8 lanes");
  KernelBuilder kb(rewriter, op->getLoc());
  auto valuesType = cast<RankedTensorType>(valuesResult.getType());
  auto indicesType = cast<RankedTensorType>(indicesResult.getType());
  Value rows = kb.create<tensor::DimOp>(input, int64_t(0));
  Value values = kb.emptyTensor(valuesType, {rows, k});
  int64_t positionsPerRow = masked ? headDim / 8 : headDim;
  Value indices = kb.emptyTensor(
      indicesType, {rows, masked ? kb.index(positionsPerRow) : k});
  SmallVector<Value> outputs{values, indices};
  if (scalesResult)
    outputs.push_back(
        kb.emptyTensor(cast<RankedTensorType>(scalesResult.getType()), {rows}));
  Value rowScratch = kb.scratch({blockRows, headDim}, rewriter.getF32Type());
  // Room for one piece past the row: writeRowPrefix reads whole pieces.
  Value keptValues =
      kb.scratch({headDim + *lanes}, valuesType.getElementType());
  Value keptIndices = kb.scratch({positionsPerRow + (masked ? 0 : *lanes)},
                                 indicesType.getElementType());
  Value zero = kb.index(0);
  Value block = kb.index(blockRows);
  SmallVector<Value> results =
      kb.loop(zero, rows, block, outputs, [&](Value first, ValueRange outs) {
        Value count = kb.create<arith::MinSIOp>(
            block, kb.create<arith::SubIOp>(rows, first));
        if (blockRows == 1) {
          fillRows(kb, first, 1, rowScratch, zero, *lanes);
        } else {
          Value full =
              kb.create<arith::CmpIOp>(arith::CmpIPredicate::eq, count, block);
          kb.when(
              full,
              [&] { fillRows(kb, first, blockRows, rowScratch, zero, *lanes); },
              [&] {
                kb.loop(zero, count, kb.index(1), [&](Value r) {
                  fillRows(kb, kb.create<arith::AddIOp>(first, r), 1,
                           rowScratch, r, *lanes);
                });
              });
        }
        return kb.loop(
            zero, count, kb.index(1), outs, [&](Value r, ValueRange written) {
              Value scale = winnowRow(kb, rowScratch, r, k, headDim, *lanes,
                                      keptValues, keptIndices, encoding);
              Value row = kb.create<arith::AddIOp>(first, r);
              SmallVector<Value> next{
                  writeRowPrefix(kb, keptValues, k, written[0], row, *lanes)};
              if (masked) {
                // Mask rows have a static length and fit exactly.
                Value bytes = kb.create<vector::LoadOp>(
                    kb.vectorOf(positionsPerRow, indicesType.getElementType()),
                    keptIndices, ValueRange{zero});
                next.push_back(
                    kb.writeToTensor(bytes, written[1], {row, zero}));
              } else {
                next.push_back(writeRowPrefix(kb, keptIndices, k, written[1],
                                              row, *lanes));
              }
              if (scale)
                next.push_back(
                    kb.create<tensor::InsertOp>(scale, written[2], row));
              return next;
            });
      });
  rewriter.replaceOp(op, results);
  return success();
}

struct LowerWinnow : OpRewritePattern<WinnowOp> {
  LowerWinnow(MLIRContext *context, const VectorLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}

  LogicalResult matchAndRewrite(WinnowOp op,
                                PatternRewriter &rewriter) const override {
    int64_t headDim = op.getInput().getType().getDimSize(1);
    if (failed(lanesFor(headDim, options.vectorWidth)))
      return rewriter.notifyMatchFailure(op, "head dimension not tiled");
    KernelBuilder views(rewriter, op.getLoc());
    Value x = views.view(op.getInput());
    return lowerWinnowing(
        op, op.getInput(), op.getK(), op.getValues(), op.getIndices(),
        op.getScales(), op.getEncoding(), options, rewriter, /*blockRows=*/1,
        [&](KernelBuilder &kb, Value r, int64_t, Value scratch, Value at,
            int64_t lanes) {
          for (int64_t c = 0; c < headDim / lanes; ++c)
            kb.create<vector::StoreOp>(
                kb.loadF32(x, {r, kb.index(c * lanes)}, lanes), scratch,
                ValueRange{at, kb.index(c * lanes)});
        });
  }

  VectorLoweringOptions options;
};

struct LowerCompress : OpRewritePattern<CompressOp> {
  LowerCompress(MLIRContext *context, const VectorLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}

  LogicalResult matchAndRewrite(CompressOp op,
                                PatternRewriter &rewriter) const override {
    int64_t headDim = op.getInput().getType().getDimSize(1);
    if (failed(lanesFor(headDim, options.vectorWidth)))
      return rewriter.notifyMatchFailure(op, "head dimension not tiled");
    KernelBuilder views(rewriter, op.getLoc());
    Value x = views.view(op.getInput());
    Value rotation = views.view(op.getRotation());
    return lowerWinnowing(op, op.getInput(), op.getK(), op.getValues(),
                          op.getIndices(), op.getScales(), op.getEncoding(),
                          options, rewriter, kRotationRowBlock,
                          [&](KernelBuilder &kb, Value first, int64_t count,
                              Value scratch, Value at, int64_t lanes) {
                            // The rotated rows live only in L1 scratch, never
                            // in the result.
                            rotateRowBlock(kb, x, first, count, rotation,
                                           headDim, lanes, scratch, at);
                          });
  }

  VectorLoweringOptions options;
};

} // namespace

void swan::populateRotateWinnowCompressToVectorPatterns(
    RewritePatternSet &patterns, const VectorLoweringOptions &options) {
  patterns.add<LowerRotate, LowerWinnow, LowerCompress>(patterns.getContext(),
                                                        options);
}
