//===- SwanToVector.cpp - swan ops to scf loops and vector code -----------===//
//
// Every kernel reads its inputs through read-only memref views of the input
// tensors and writes its results into tensor.empty destinations with
// vector.transfer_write, so that bufferization hands the caller's buffers
// straight to the loops. Head dimension D and group size G are static; token
// counts, kept counts k and block counts are run-time values.
//
//===----------------------------------------------------------------------===//

#include "swan/Codegen/Passes.h"

#include "KernelBuilder.h"
#include "swan/Dialect/SwanOps.h"

#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/TargetParser/Host.h"

#include <numeric>

namespace swan {
#define GEN_PASS_DEF_SWANLOWERTOVECTOR
#include "swan/Codegen/Passes.h.inc"
} // namespace swan

using namespace mlir;
using namespace swan;

namespace {

/// Lanes per vector for head dimension `headDim`, or failure when the
/// vectors cannot tile it.
FailureOr<int64_t> lanesFor(int64_t headDim, int64_t vectorWidth) {
  if (ShapedType::isDynamic(headDim) || vectorWidth < 1)
    return failure();
  int64_t lanes = std::min(headDim, vectorWidth);
  if (headDim % lanes != 0)
    return failure();
  return lanes;
}

/// A tensor.empty of `type`, its dynamic sizes taken from `sizes` (one
/// candidate per dimension).
Value emptyTensor(KernelBuilder &kb, RankedTensorType type,
                  ArrayRef<Value> sizes) {
  SmallVector<Value> dynamicSizes;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (type.isDynamicDim(d))
      dynamicSizes.push_back(sizes[d]);
  return kb.create<tensor::EmptyOp>(type.getShape(), type.getElementType(),
                                    dynamicSizes);
}

/// Writes `vector` into `tensor` at `indices`. `inBounds` false lets a
/// vector longer than the tensor's row write only the row.
Value writeToTensor(KernelBuilder &kb, Value vector, Value tensor,
                    ValueRange indices, bool inBounds = true) {
  return kb
      .create<vector::TransferWriteOp>(vector, tensor, indices,
                                       ArrayRef<bool>{inBounds})
      .getResult();
}

/// Joins a power-of-two count of equal-width vectors end to end, pairwise,
/// so that LLVM sees one full-width vector.
Value concatenate(KernelBuilder &kb, SmallVector<Value> rows) {
  while (rows.size() > 1) {
    SmallVector<Value> joined;
    for (size_t r = 0; r < rows.size(); r += 2) {
      int64_t n = cast<VectorType>(rows[r].getType()).getNumElements();
      SmallVector<int64_t> both(2 * n);
      std::iota(both.begin(), both.end(), 0);
      joined.push_back(kb.create<vector::ShuffleOp>(rows[r], rows[r + 1], both));
    }
    rows = std::move(joined);
  }
  return rows.front();
}

Value zeroVector(KernelBuilder &kb, int64_t lanes, Type elementType) {
  VectorType type = kb.vectorOf(lanes, elementType);
  return kb.create<arith::ConstantOp>(type, kb.builder().getZeroAttr(type));
}

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
    SmallVector<Value> zeros(rows * width, zeroVector(kb, lanes, f32));
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
void winnowRow(KernelBuilder &kb, Value rows, Value r, Value k,
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
          kb.create<memref::StoreOp>(kb.convertFloat(value, valueType),
                                     keptValues, ValueRange{slot});
          if (encoding != Encoding::mask)
            kb.create<memref::StoreOp>(
                kb.create<arith::IndexCastUIOp>(indexType, position),
                keptPositions, ValueRange{slot});
          return SmallVector<Value>{kb.create<arith::AndIOp>(
              left[0], kb.create<arith::SubIOp>(left[0], oneBit))};
        });
    next = kb.create<arith::AddIOp>(next, count);
  }
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
    Value out = emptyTensor(kb, resultType, {rows, kb.index(headDim)});
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
            written = writeToTensor(
                kb, kb.convertFloat(row, resultType.getElementType()), written,
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
            writeToTensor(kb, load(column), written[0], {row, column})};
      })[0];
  return writeToTensor(kb, load(whole), out, {row, whole}, /*inBounds=*/false);
}

/// The shared kernel: `fillRows(first, count, scratch, at)` puts `count` f32
/// input rows from `first` on (count static, at most `blockRows`) into rows
/// [at, at + count) of the [blockRows, D] scratch; then a loop winnows each
/// row and writes it out. Whole blocks and the last partial one share that
/// loop: the winnowing is most of the kernel's compile time.
LogicalResult lowerWinnowing(
    Operation *op, Value input, Value k, Value valuesResult,
    Value indicesResult, Encoding encoding,
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
  Value values = emptyTensor(kb, valuesType, {rows, k});
  int64_t positionsPerRow = masked ? headDim / 8 : headDim;
  Value indices = emptyTensor(
      kb, indicesType, {rows, masked ? kb.index(positionsPerRow) : k});
  Value rowScratch = kb.scratch({blockRows, headDim}, rewriter.getF32Type());
  // Room for one piece past the row: writeRowPrefix reads whole pieces.
  Value keptValues =
      kb.scratch({headDim + *lanes}, valuesType.getElementType());
  Value keptIndices = kb.scratch({positionsPerRow + (masked ? 0 : *lanes)},
                                 indicesType.getElementType());
  Value zero = kb.index(0);
  Value block = kb.index(blockRows);
  SmallVector<Value> results = kb.loop(
      zero, rows, block, {values, indices}, [&](Value first, ValueRange outs) {
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
              winnowRow(kb, rowScratch, r, k, headDim, *lanes, keptValues,
                        keptIndices, encoding);
              Value row = kb.create<arith::AddIOp>(first, r);
              Value valuesOut =
                  writeRowPrefix(kb, keptValues, k, written[0], row, *lanes);
              if (!masked)
                return SmallVector<Value>{
                    valuesOut, writeRowPrefix(kb, keptIndices, k, written[1],
                                              row, *lanes)};
              // Mask rows have a static length and fit exactly.
              Value bytes = kb.create<vector::LoadOp>(
                  kb.vectorOf(positionsPerRow, indicesType.getElementType()),
                  keptIndices, ValueRange{zero});
              return SmallVector<Value>{
                  valuesOut, writeToTensor(kb, bytes, written[1], {row, zero})};
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
        op.getEncoding(), options, rewriter, /*blockRows=*/1,
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
                          op.getIndices(), op.getEncoding(), options, rewriter,
                          kRotationRowBlock,
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

//===----------------------------------------------------------------------===//
// partial_attention
//===----------------------------------------------------------------------===//

/// The results of partial attention as tensors: `max` and `sum` as G-wide
/// vectors, the accumulator row by row from a [G, D] scratch.
SmallVector<Value> partialResults(KernelBuilder &kb, PartialAttentionOp op,
                                  Value max, Value sum, Value accumulator,
                                  int64_t groups, int64_t headDim) {
  Type f32 = kb.builder().getF32Type();
  Value zero = kb.index(0);
  auto emptyLike = [&](Value result) {
    auto type = cast<RankedTensorType>(result.getType());
    return emptyTensor(kb, type, {kb.index(groups), kb.index(headDim)});
  };
  Value maxOut = writeToTensor(kb, max, emptyLike(op.getMax()), {zero});
  Value sumOut = writeToTensor(kb, sum, emptyLike(op.getSum()), {zero});
  Value accOut = emptyLike(op.getAccumulator());
  for (int64_t g = 0; g < groups; ++g)
    accOut = writeToTensor(
        kb,
        kb.create<vector::LoadOp>(kb.vectorOf(headDim, f32), accumulator,
                                  ValueRange{kb.index(g), zero}),
        accOut, {kb.index(g), zero});
  return {maxOut, sumOut, accOut};
}

/// Asks for row `row` of the 2-D memref `rows`, one prefetch per 64 bytes:
/// rows are contiguous, so a stream of rows is covered whatever their
/// alignment (a 128-byte row may span three cache lines).
void prefetchRow(KernelBuilder &kb, Value rows, Value row) {
  auto type = cast<MemRefType>(rows.getType());
  int64_t perLine = 512 / type.getElementTypeBitWidth();
  Value length = kb.create<memref::DimOp>(rows, int64_t(1));
  kb.loop(kb.index(0), length, kb.index(perLine), [&](Value at) {
    kb.create<memref::PrefetchOp>(rows, ValueRange{row, at}, /*isWrite=*/false,
                                  /*localityHint=*/3, /*isDataCache=*/true);
  });
}

/// Vector registers the chunk-major value loops keep accumulators in: half
/// of the host's (32 with AVX-512, 16 with AVX2), the rest hold the token's
/// chunks and weights (16 accumulators on AVX2 spill on every token).
int64_t accumulatorRegisters(int64_t lanes) { return lanes >= 16 ? 16 : 8; }

/// Runs `pass(c0, n)` over the passes of a chunk-major loop: `chunks` in
/// passes of `perPass`, the whole passes in one scf.for (one copy of a
/// pass's code for LLVM to compile: G = 4, D = 128 takes eight passes on
/// AVX2), then the rest, if any.
void forPasses(KernelBuilder &kb, int64_t chunks, int64_t perPass,
               function_ref<void(Value c0, int64_t n)> pass) {
  int64_t whole = chunks / perPass * perPass;
  if (whole == perPass)
    pass(kb.index(0), perPass);
  else
    kb.loop(kb.index(0), kb.index(whole), kb.index(perPass),
            [&](Value c0) { pass(c0, perPass); });
  if (whole < chunks)
    pass(kb.index(whole), chunks - whole);
}

/// Online softmax over one block of tokens, tile by tile.
class PartialAttentionKernel {
public:
  PartialAttentionKernel(KernelBuilder &kb, PartialAttentionOp op,
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
    Value zero = zeroVector(kb, lanes, f32);
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
          prefetchRow(kb, values, token);
        SmallVector<Value> s = expand || maskedKeys ? expandedScores(token)
                               : keyIndices          ? sparseScores(token)
                                                     : denseScores(token);
        for (int64_t g = 0; g < groups; ++g)
          kb.create<memref::StoreOp>(s[g], scores, ValueRange{kb.index(g), t});
      });
      for (int64_t g = 0; g < groups; ++g)
        updateSoftmax(g, count);
      if (denseValues)
        return accumulateDense(first, count);
      kb.loop(kb.index(0), count, kb.index(1), [&](Value t) {
        Value token = kb.create<arith::AddIOp>(first, t);
        SmallVector<Value> weights;
        for (int64_t g = 0; g < groups; ++g)
          weights.push_back(kb.splat(
              kb.create<memref::LoadOp>(scores, ValueRange{kb.index(g), t}),
              lanes));
        if (expand || maskedValues)
          accumulateExpanded(token, weights);
        else
          accumulateSparse(token, weights);
      });
    });
    return writeResults();
  }

private:
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
            masks[c], zeroVector(kb, lanes, f32)));
      return dense;
    }
    // 16-bit floats, two chunks at a time where they pair up
    // (swan-legalize-narrow-expandload later makes this vpexpandw on their
    // bits).
    int64_t pair = chunks % 2 == 0 ? 2 : 1;
    SmallVector<int64_t> concat(pair * lanes);
    std::iota(concat.begin(), concat.end(), 0);
    VectorType narrow = kb.vectorOf(pair * lanes, storage);
    for (int64_t c = 0; c < chunks; c += pair) {
      Value mask = pair == 2 ? kb.create<vector::ShuffleOp>(
                                   masks[c], masks[c + 1], concat)
                             : masks[c];
      Value loaded = kb.create<vector::ExpandLoadOp>(
          narrow, valuesView, ValueRange{token, starts[c]}, mask,
          zeroVector(kb, pair * lanes, storage));
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
    SmallVector<Value> key = maskedKeys
                                 ? maskedToken(keyIndices, keys, token)
                                 : expandToken(keyIndices, keys, token);
    SmallVector<Value> result;
    for (int64_t g = 0; g < groups; ++g) {
      Value acc = zeroVector(kb, lanes, f32);
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
    SmallVector<Value> zeros(groups, zeroVector(kb, lanes, f32));
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
                zeroVector(kb, lanes, f32), IntegerAttr());
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
    SmallVector<Value> acc(groups, zeroVector(kb, lanes, f32));
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
        zeroVector(kb, tile, f32));
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
            zeroVector(kb, lanes, f32), IntegerAttr());
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
              Value w = kb.splat(kb.create<memref::LoadOp>(
                                     scores, ValueRange{kb.index(g), t}),
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
  Value scaledQuery, accumulator, scores, runningMax, runningSum;
};

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
      zeroVector(kb, width, storage));
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
      kb.create<vector::StoreOp>(zeroVector(kb, rowLength, element), scratch,
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
        kb.create<vector::StoreOp>(zeroVector(kb, headDim, f32), accGD,
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
    int64_t width = lanes * 32 / storage.getIntOrFloatBitWidth();
    return headDim % width == 0 ? width : lanes;
  }

  /// The G scaled scores of a token whose key is in the mask encoding: the
  /// key expanded chunk by chunk and dotted with each query row, so the cost
  /// follows G · D rather than k (the better deal for small G).
  Value maskedScore(Value token, std::pair<Value, Value> keyRow) {
    Type f32 = kb.builder().getF32Type();
    int64_t width =
        expandWidth(cast<MemRefType>(keys.getType()).getElementType());
    SmallVector<Value> acc(groups, zeroVector(kb, width, f32));
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
    return kb.create<vector::FromElementsOp>(kb.vectorOf(groups, f32),
                                             scores);
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
    Value zero = zeroVector(kb, 16, f32);
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
          Value s = score(token, keyRow);
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
          Value p = kb.create<vector::LoadOp>(
              rowType, weights,
              ValueRange{kb.create<arith::MulIOp>(t, kb.index(groups))});
          if (!maskedValues)
            accumulate(kb.create<arith::AddIOp>(first, t), p);
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
      prefetchRow(kb, stream, ahead);
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
                next.push_back(kb.fma(p, chunkValues[i],
                                      acc[g * passChunks + i]));
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
  Value queryT, queryGD, accT, accGD, valueStarts, weights;
  PaddedRows paddedKeys, paddedValues;
};

struct LowerPartialAttention : OpRewritePattern<PartialAttentionOp> {
  LowerPartialAttention(MLIRContext *context,
                        const VectorLoweringOptions &options)
      : OpRewritePattern(context), options(options) {}

  /// Token expansion needs 16 lanes (vp2intersect is 16 x i32) and storage
  /// it can expand: f32, or f16 / bf16 in pairs of chunks.
  bool canExpand(PartialAttentionOp op, int64_t lanes) const {
    if (!options.expandWinnowed || lanes != 16)
      return false;
    int64_t headDim = op.getQuery().getType().getDimSize(1);
    for (Value v : {op.getKeyValues(), op.getValueValues()}) {
      Type t = cast<RankedTensorType>(v.getType()).getElementType();
      bool sixteen = t.isF16() || t.isBF16();
      if (!t.isF32() && !(sixteen && headDim % 32 == 0))
        return false;
    }
    return true;
  }

  LogicalResult matchAndRewrite(PartialAttentionOp op,
                                PatternRewriter &rewriter) const override {
    RankedTensorType queryType = op.getQuery().getType();
    if (!queryType.hasStaticShape())
      return rewriter.notifyMatchFailure(op, "query shape must be static");
    FailureOr<int64_t> lanes =
        lanesFor(queryType.getDimSize(1), options.vectorWidth);
    if (failed(lanes) || options.tileSize < 1)
      return rewriter.notifyMatchFailure(op, "head dimension not tiled");
    if ((op.getKeyEncoding() == Encoding::mask ||
         op.getValueEncoding() == Encoding::mask) &&
        *lanes % 8 != 0)
      return rewriter.notifyMatchFailure(op, "masks need chunks of 8 lanes");
    KernelBuilder kb(rewriter, op.getLoc());
    if (op.getKeyIndices() && op.getValueIndices() && canExpand(op, *lanes)) {
      PartialAttentionKernel kernel(kb, op, *lanes, options.tileSize,
                                    /*expand=*/true);
      rewriter.replaceOp(op, kernel.build());
      return success();
    }
    if (op.getKeyIndices() && op.getValueIndices()) {
      WinnowedPartialAttentionKernel kernel(kb, op, *lanes, options.tileSize);
      rewriter.replaceOp(op, kernel.build());
      return success();
    }
    PartialAttentionKernel kernel(kb, op, *lanes, options.tileSize);
    rewriter.replaceOp(op, kernel.build());
    return success();
  }

  VectorLoweringOptions options;
};

//===----------------------------------------------------------------------===//
// merge_attention
//===----------------------------------------------------------------------===//

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
        emptyTensor(kb, resultType, {kb.index(groups), kb.index(headDim)});
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
          Value zero = zeroVector(kb, *lanes, f32);
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
              Value acc = zeroVector(kb, *lanes, f32);
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
            written = writeToTensor(
                kb, kb.convertFloat(chunk, resultType.getElementType()),
                written, {g, at});
          }
          return SmallVector<Value>{written};
        });
    rewriter.replaceOp(op, result);
    return success();
  }

  VectorLoweringOptions options;
};

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

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
  patterns.add<LowerRotate, LowerWinnow, LowerCompress, LowerPartialAttention,
               LowerMergeAttention>(patterns.getContext(), options);
}
