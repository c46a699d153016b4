//===- DecodeAttentionKernels.cpp - decode attention partial kernels ------===//
//
// swan.decode_attention as flash decoding: partial blocks over (split, KV
// head, sequence), in the op's batch layout or reading sequences from a
// table, each an online softmax over a range of tokens; the block of a
// (sequence, KV head) that finishes last merges them
// (DecodeAttentionMerge.cpp).
//
//===----------------------------------------------------------------------===//

#include "DecodeAttention.h"

#include "swan/Codegen/GPU/KernelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace swan;
namespace abi = swan::gpu_abi;

namespace {

constexpr unsigned kGlobalSpace = 1; // NVPTX's global address space
constexpr double kLn2 = 0.6931471805599453;
constexpr int64_t kLineBytes = 128; // what one L2 prefetch brings

} // namespace

Value TokenArray::width(GPUKernelBuilder &kb) const {
  return memref ? kb.dim(memref, 3) : rowWidth;
}

std::pair<Value, Value> TokenArray::rowBytes(GPUKernelBuilder &kb, Value seq,
                                             Value head, Value first,
                                             Value last) const {
  ImplicitLocOpBuilder &b = kb.builder();
  Type type =
      memref ? cast<MemRefType>(memref.getType()).getElementType() : element;
  Value bytes = kb.index(type.getIntOrFloatBitWidth() / 8);
  Value base, begin, end; // elements from base
  if (memref) {
    auto metadata = memref::ExtractStridedMetadataOp::create(b, memref);
    ValueRange strides = metadata.getStrides();
    Value row = kb.add(metadata.getOffset(), kb.add(kb.mul(seq, strides[0]),
                                                    kb.mul(head, strides[1])));
    base = memref::ExtractAlignedPointerAsIndexOp::create(b, memref);
    begin = kb.add(row, kb.mul(first, strides[2]));
    Value lastSlot = kb.sub(kb.dim(memref, 3), kb.index(1));
    end = kb.add(kb.add(row, kb.mul(last, strides[2])),
                 kb.add(kb.mul(lastSlot, strides[3]), kb.index(1)));
  } else {
    base = kb.toIndex(LLVM::PtrToIntOp::create(b, b.getI64Type(), address));
    Value row = kb.mul(head, capacity);
    begin = kb.mul(kb.add(row, first), rowWidth);
    end = kb.mul(kb.add(kb.add(row, last), kb.index(1)), rowWidth);
  }
  return {kb.add(base, kb.mul(begin, bytes)), kb.add(base, kb.mul(end, bytes))};
}

Value TokenArray::load(GPUKernelBuilder &kb, Value seq, Value head, Value token,
                       Value j) const {
  if (memref)
    return kb.load(memref, {seq, head, token, j});
  ImplicitLocOpBuilder &b = kb.builder();
  Value at = kb.add(kb.mul(kb.add(kb.mul(head, capacity), token), rowWidth), j);
  Value offset = arith::IndexCastOp::create(b, b.getI64Type(), at);
  Value p = LLVM::GEPOp::create(b, address.getType(), element, address,
                                ValueRange{offset});
  return LLVM::LoadOp::create(b, element, p);
}

SmallVector<Value> TokenArray::loadWords(GPUKernelBuilder &kb, Value seq,
                                         Value head, Value token,
                                         int64_t words) const {
  ImplicitLocOpBuilder &b = kb.builder();
  auto wordType = VectorType::get({words}, b.getI32Type());
  uint64_t alignment = std::min<uint64_t>(16, 4 * words);
  Value row;
  if (memref) {
    auto byteType = VectorType::get({4 * words}, b.getI8Type());
    Value bytes = vector::LoadOp::create(
        b, byteType, memref, ValueRange{seq, head, token, kb.index(0)},
        /*nontemporal=*/false, llvm::MaybeAlign(alignment));
    row = vector::BitCastOp::create(b, wordType, bytes);
  } else {
    Value at = kb.mul(kb.add(kb.mul(head, capacity), token), rowWidth);
    Value offset = arith::IndexCastOp::create(b, b.getI64Type(), at);
    Value p = LLVM::GEPOp::create(b, address.getType(), b.getI8Type(), address,
                                  ValueRange{offset});
    row = LLVM::LoadOp::create(b, wordType, p, alignment);
  }
  SmallVector<Value> result;
  for (int64_t w = 0; w < words; ++w)
    result.push_back(vector::ExtractOp::create(b, row, w));
  return result;
}

namespace {

/// Asks L2 for the rows [first, end) of (seq, head) of every array of
/// `src`, one prefetch per 128-byte line, the lines spread over the block's
/// threads: the token loop's loads then wait for L2 rather than DRAM, and
/// the rows in flight are not bounded by the registers loads need. Every
/// address lies inside the rows.
void prefetchRows(GPUKernelBuilder &kb, const TokenSource &src, Value seq,
                  Value head, Value first, Value end, Value tid) {
  ImplicitLocOpBuilder &b = kb.builder();
  Value line = kb.index(kLineBytes);
  Value threads = kb.index(abi::kPartialThreads);
  kb.ifThen(kb.ult(first, end), [&] {
    Value last = kb.sub(end, kb.index(1));
    for (const TokenArray *array : {&src.keyValues, &src.keyIndices,
                                    &src.valueValues, &src.valueIndices}) {
      if (!array->present())
        continue;
      // Not a structured binding: the lambda below captures `begin`.
      Value begin, stop;
      std::tie(begin, stop) = array->rowBytes(kb, seq, head, first, last);
      Value lineStart = arith::AndIOp::create(b, begin, kb.index(-kLineBytes));
      Value lines =
          arith::CeilDivUIOp::create(b, kb.sub(stop, lineStart), line);
      kb.loop(tid, lines, threads, [&](Value i) {
        kb.prefetchL2(arith::MaxUIOp::create(
            b, begin, kb.add(lineStart, kb.mul(i, line))));
      });
    }
  });
}

/// Dimensions lane l owns in the mask-encoded passes: l, l + 32, ...; for
/// each, whether the row kept it and where its value sits in the row
/// (the kept dimensions below it: the words before, and the word's bits
/// below the lane).
struct OwnedSlots {
  SmallVector<Value> kept;     // i1
  SmallVector<Value> position; // index
};

OwnedSlots ownedSlots(GPUKernelBuilder &kb, ArrayRef<Value> words,
                      Value laneI32, Value belowLane) {
  ImplicitLocOpBuilder &b = kb.builder();
  Value zero = arith::ConstantOp::create(b, b.getI32IntegerAttr(0));
  Value one = arith::ConstantOp::create(b, b.getI32IntegerAttr(1));
  OwnedSlots slots;
  Value before = zero;
  for (auto [w, word] : llvm::enumerate(words)) {
    Value bit =
        arith::AndIOp::create(b, arith::ShRUIOp::create(b, word, laneI32), one);
    slots.kept.push_back(
        arith::CmpIOp::create(b, arith::CmpIPredicate::ne, bit, zero));
    Value below =
        LLVM::CtPopOp::create(b, arith::AndIOp::create(b, word, belowLane));
    slots.position.push_back(kb.toIndex(kb.add(before, below)));
    if (w + 1 < words.size()) // no later word needs the last one's count
      before = kb.add(before, LLVM::CtPopOp::create(b, word));
  }
  return slots;
}

/// Emits the chunked online-softmax loop over tokens [start, end) of
/// sequence `seq`, KV head `head`. A warp takes U = min(8, 32 / G) tokens
/// at a time (all their loads in flight together); scores live in shared
/// memory per chunk. Rows with indices spread their components over the
/// lanes: each warp scatter-adds its tokens' values into its own shared
/// accumulator, so no atomics are needed. Rows with occupancy masks give
/// lane l the dimensions l, l + 32, ... instead: its rotated query entries
/// and, for mask-encoded values, its accumulator entries stay in registers
/// for the whole loop, and the values reach the shared accumulator once, at
/// the end.
void emitTokenLoop(GPUKernelBuilder &kb, const PartialKernelShape &shape,
                   const TokenSource &src, Value seq, Value head, Value start,
                   Value end, Value warp, Value lane, Value qs, Value scores,
                   Value acc, Value state) {
  ImplicitLocOpBuilder &b = kb.builder();
  const int64_t G = shape.group;
  const int64_t words = shape.dim / abi::kWarpSize; // owned dims per lane
  // G * U sums per warp step, a power of two (G is); 8 tokens keep enough
  // loads in flight without spilling registers. A mask-encoded row costs
  // every lane D/32 loads per token: at D = 256, 4 tokens do.
  const bool masked = src.keyMasks || src.valueMasks;
  const int64_t U = std::clamp<int64_t>(
      abi::kWarpSize / std::max(G, masked ? words : 1), 1, 8);
  Value zero = kb.index(0), one = kb.index(1), two = kb.index(2);
  Value warps = kb.index(abi::kPartialWarps);
  Value warpSize = kb.index(abi::kWarpSize);
  Value chunk = kb.index(abi::kTokensPerChunk);
  Value span = kb.index(abi::kPartialWarps * U);
  Value firstToken = kb.mul(warp, kb.index(U));
  bool denseKeys = !src.keyIndices.present(),
       denseValues = !src.valueIndices.present();
  Value keyCount = denseKeys ? kb.index(shape.dim) : src.keyValues.width(kb);
  Value valueCount =
      denseValues ? kb.index(shape.dim) : src.valueValues.width(kb);
  auto andI = [&](Value x, Value y) { return arith::AndIOp::create(b, x, y); };
  // Slot j of a token's key or value row: its dimension (j itself in a
  // dense row) and its value as f32.
  auto slot = [&](const TokenArray &values, const TokenArray &indices,
                  Value token, Value j) -> std::pair<Value, Value> {
    Value component = indices.present()
                          ? kb.toIndex(indices.load(kb, seq, head, token, j))
                          : j;
    return {component, kb.toF32(values.load(kb, seq, head, token, j))};
  };
  // Slot j of each of the step's tokens.
  auto slots = [&](const TokenArray &values, const TokenArray &indices,
                   ArrayRef<Value> tokens, Value j) {
    std::pair<SmallVector<Value>, SmallVector<Value>> out;
    for (Value token : tokens) {
      auto [component, value] = slot(values, indices, token, j);
      out.first.push_back(component);
      out.second.push_back(value);
    }
    return out;
  };

  // The mask-encoded passes: lane bits, and each owned dimension's value
  // of a token (zero where the row did not keep it; the position is
  // clamped so that the load stays inside the row either way).
  Value laneI32 = arith::IndexCastOp::create(b, b.getI32Type(), lane);
  Value belowLane = kb.sub(
      arith::ShLIOp::create(
          b, arith::ConstantOp::create(b, b.getI32IntegerAttr(1)), laneI32),
      arith::ConstantOp::create(b, b.getI32IntegerAttr(1)));
  auto ownedValues = [&](const TokenArray &values, const TokenArray &masks,
                         Value count, Value token) {
    OwnedSlots slots = ownedSlots(
        kb, masks.loadWords(kb, seq, head, token, words), laneI32, belowLane);
    Value lastSlot = kb.sub(count, one);
    SmallVector<Value> owned;
    for (int64_t w = 0; w < words; ++w) {
      Value v = kb.toF32(values.load(kb, seq, head, token,
                                     kb.minIndex(slots.position[w], lastSlot)));
      owned.push_back(arith::SelectOp::create(b, slots.kept[w], v, kb.f32(0)));
    }
    return owned;
  };
  // Lane l's entries of the rotated query, [w][g] for dimension l + 32 w.
  SmallVector<SmallVector<Value>> ownedQuery;
  if (src.keyMasks)
    for (int64_t w = 0; w < words; ++w)
      ownedQuery.push_back(kb.loadVector(
          qs, {kb.add(lane, kb.index(w * abi::kWarpSize)), zero}, G));
  // Lane l's accumulator entries, flattened [w][g], for mask-encoded values.
  SmallVector<Value> ownedAcc;
  if (src.valueMasks)
    ownedAcc.assign(words * G, kb.f32(0));

  ownedAcc = kb.loop(
      start, end, chunk, ownedAcc,
      [&](Value chunkStart, ValueRange carried) -> SmallVector<Value> {
        Value count = kb.minIndex(chunk, kb.sub(end, chunkStart));
        Value last = kb.sub(count, one);
        // The next chunk heads for L2 while this one is read.
        Value next = kb.add(chunkStart, chunk);
        prefetchRows(kb, src, seq, head, next,
                     kb.minIndex(kb.add(next, chunk), end),
                     kb.add(kb.mul(warp, warpSize), lane));

        // Scores of U tokens per warp step; out-of-range tokens re-read the
        // last one and are never stored.
        kb.loop(firstToken, count, span, [&](Value base) {
          SmallVector<Value> tokens;
          for (int64_t u = 0; u < U; ++u)
            tokens.push_back(kb.add(
                chunkStart, kb.minIndex(kb.add(base, kb.index(u)), last)));
          SmallVector<Value> partial(G * U, kb.f32(0));
          if (src.keyMasks) {
            for (int64_t u = 0; u < U; ++u) {
              SmallVector<Value> keys = ownedValues(
                  src.keyValues, src.keyIndices, keyCount, tokens[u]);
              for (int64_t w = 0; w < words; ++w)
                for (int64_t g = 0; g < G; ++g)
                  partial[g * U + u] =
                      kb.fma(partial[g * U + u], ownedQuery[w][g], keys[w]);
            }
          } else {
            partial =
                kb.loop(lane, keyCount, warpSize, partial,
                        [&](Value j, ValueRange sums) -> SmallVector<Value> {
                          auto [components, keys] =
                              slots(src.keyValues, src.keyIndices, tokens, j);
                          SmallVector<Value> next(sums.begin(), sums.end());
                          for (int64_t u = 0; u < U; ++u) {
                            SmallVector<Value> q =
                                kb.loadVector(qs, {components[u], zero}, G);
                            for (int64_t g = 0; g < G; ++g)
                              next[g * U + u] =
                                  kb.fma(sums[g * U + u], q[g], keys[u]);
                          }
                          return next;
                        });
          }
          Value total = kb.transposeReduce(partial, lane);
          // Lane l < G * U holds (g, u) = (l / U, l % U).
          Value uLane = kb.rem(lane, kb.index(U));
          Value t = kb.add(base, uLane);
          kb.ifThen(andI(kb.ult(lane, kb.index(G * U)), kb.ult(t, count)), [&] {
            kb.store(total, scores, {kb.div(lane, kb.index(U)), t});
          });
        });
        kb.barrier();

        // Online softmax, one warp per query head: new running max, the
        // factor that rescales what came before, and the chunk's weights in
        // place.
        kb.loop(warp, kb.index(G), warps, [&](Value g) {
          Value oldMax = kb.load(state, {zero, g});
          Value chunkMax =
              kb.loop(lane, count, warpSize, {kb.negInf()},
                      [&](Value t, ValueRange m) -> SmallVector<Value> {
                        return {kb.maxF(m[0], kb.load(scores, {g, t}))};
                      })[0];
          Value newMax =
              kb.maxF(oldMax, kb.warpReduce(chunkMax, /*isMax=*/true));
          Value alpha = kb.exp2(kb.sub(oldMax, newMax));
          Value chunkSum = kb.loop(
              lane, count, warpSize, {kb.f32(0)},
              [&](Value t, ValueRange s) -> SmallVector<Value> {
                Value p = kb.exp2(kb.sub(kb.load(scores, {g, t}), newMax));
                kb.store(p, scores, {g, t});
                return {kb.add(s[0], p)};
              })[0];
          chunkSum = kb.warpReduce(chunkSum, /*isMax=*/false);
          // Every lane read the old max that lane 0 now overwrites; shuffles
          // do not order memory, a warp sync does.
          kb.warpSync();
          kb.ifThen(kb.eq(lane, zero), [&] {
            kb.store(newMax, state, {zero, g});
            kb.store(kb.fma(chunkSum, kb.load(state, {one, g}), alpha), state,
                     {one, g});
            kb.store(alpha, state, {two, g});
          });
        });
        kb.barrier();

        // Each warp rescales its own accumulator once per chunk.
        SmallVector<Value> alphas;
        for (int64_t g = 0; g < G; ++g)
          alphas.push_back(kb.load(state, {two, kb.index(g)}));

        if (src.valueMasks) {
          // Values in registers: every lane takes every token of the warp's
          // step, for the dimensions it owns; no shared memory, no syncs.
          SmallVector<Value> rescaled(carried.begin(), carried.end());
          for (int64_t i = 0; i < words * G; ++i)
            rescaled[i] = kb.mul(rescaled[i], alphas[i % G]);
          SmallVector<Value> next = kb.loop(
              firstToken, count, span, rescaled,
              [&](Value base, ValueRange sums) -> SmallVector<Value> {
                SmallVector<Value> out(sums.begin(), sums.end());
                for (int64_t u = 0; u < U; ++u) {
                  Value t = kb.add(base, kb.index(u));
                  Value clamped = kb.minIndex(t, last);
                  Value valid = kb.ult(t, count);
                  Value token = kb.add(chunkStart, clamped);
                  SmallVector<Value> values = ownedValues(
                      src.valueValues, src.valueIndices, valueCount, token);
                  for (int64_t g = 0; g < G; ++g) {
                    Value weight = arith::SelectOp::create(
                        b, valid, kb.load(scores, {kb.index(g), clamped}),
                        kb.f32(0));
                    for (int64_t w = 0; w < words; ++w)
                      out[w * G + g] =
                          kb.fma(out[w * G + g], weight, values[w]);
                  }
                }
                return out;
              });
          // The next chunk overwrites the weights.
          kb.barrier();
          return next;
        }

        kb.loop(lane, kb.index(shape.dim), warpSize, [&](Value d) {
          SmallVector<Value> a = kb.loadVector(acc, {warp, d, zero}, G);
          for (int64_t g = 0; g < G; ++g)
            a[g] = kb.mul(a[g], alphas[g]);
          kb.storeVector(a, acc, {warp, d, zero});
        });
        // A lane's scatter below may add to an entry another lane rescales
        // here: without the sync, nothing orders the two.
        kb.warpSync();

        // Values: lanes scatter-add a token's kept components into the
        // warp's accumulator by index. A token's indices are distinct, so
        // lanes never collide within a token; the warp syncs between
        // tokens. The component loop has the same trip count on every lane
        // so that the syncs are reached together.
        kb.loop(firstToken, count, span, [&](Value base) {
          SmallVector<Value> tokens, valid;
          SmallVector<SmallVector<Value>> weights(U);
          for (int64_t u = 0; u < U; ++u) {
            Value t = kb.add(base, kb.index(u));
            Value clamped = kb.minIndex(t, last);
            valid.push_back(kb.ult(t, count));
            tokens.push_back(kb.add(chunkStart, clamped));
            for (int64_t g = 0; g < G; ++g)
              weights[u].push_back(kb.load(scores, {kb.index(g), clamped}));
          }
          kb.loop(zero, valueCount, warpSize, [&](Value j0) {
            Value j = kb.add(j0, lane);
            Value inRow = kb.ult(j, valueCount);
            Value jc = kb.minIndex(j, kb.sub(valueCount, one));
            // Not a structured binding: the lambda below captures them.
            std::pair<SmallVector<Value>, SmallVector<Value>> row =
                slots(src.valueValues, src.valueIndices, tokens, jc);
            const SmallVector<Value> &components = row.first;
            const SmallVector<Value> &values = row.second;
            for (int64_t u = 0; u < U; ++u) {
              kb.ifThen(andI(valid[u], inRow), [&] {
                SmallVector<Value> a =
                    kb.loadVector(acc, {warp, components[u], zero}, G);
                for (int64_t g = 0; g < G; ++g)
                  a[g] = kb.fma(a[g], weights[u][g], values[u]);
                kb.storeVector(a, acc, {warp, components[u], zero});
              });
              kb.warpSync();
            }
          });
        });
        // The next chunk overwrites the weights.
        kb.barrier();
        return {};
      });

  // Mask-encoded values reach the warp's shared accumulator, which nothing
  // else wrote, once.
  for (int64_t w = 0; w < static_cast<int64_t>(ownedAcc.size()) / G; ++w)
    kb.storeVector(ArrayRef<Value>(ownedAcc).slice(w * G, G), acc,
                   {warp, kb.add(lane, kb.index(w * abi::kWarpSize)), zero});
}

/// The partial kernel: blocks over (split, KV head, sequence); `inputs`
/// says where its arguments put the tokens.
void emitPartialKernel(
    ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
    TypeRange argTypes, const PartialKernelShape &shape,
    llvm::function_ref<PartialInputs(GPUKernelBuilder &, ValueRange, Value)>
        inputs) {
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  const int64_t dim = shape.dim, G = shape.group;
  SmallVector<Type> workgroup = {
      workgroupMemRef(ctx, {dim, G}, f32),
      workgroupMemRef(ctx, {G, abi::kTokensPerChunk}, f32),
      workgroupMemRef(ctx, {abi::kPartialWarps, dim, G}, f32),
      workgroupMemRef(ctx, {3, G}, f32),
      workgroupMemRef(ctx, {1}, b.getI32Type())};
  gpu::GPUFuncOp kernel =
      createKernel(b, module, name, argTypes, workgroup, abi::kPartialThreads);
  enterKernel(b, kernel);
  GPUKernelBuilder kb(b);
  Value seq = kb.blockId(gpu::Dimension::z);
  // The entry block's arguments go on with the workgroup attributions.
  PartialInputs in =
      inputs(kb, kernel.getArguments().take_front(argTypes.size()), seq);
  auto shared = kernel.getWorkgroupAttributions();
  Value qs = shared[0], scores = shared[1], acc = shared[2], state = shared[3];
  Value lastBlock = shared[4];

  Value zero = kb.index(0), one = kb.index(1);
  Value threads = kb.index(abi::kPartialThreads);
  Value tid = kb.threadId();
  Value warp = kb.div(tid, kb.index(abi::kWarpSize));
  Value lane = kb.rem(tid, kb.index(abi::kWarpSize));
  Value split = kb.blockId(gpu::Dimension::x);
  Value head = kb.blockId(gpu::Dimension::y);
  Value splits = kb.sub(kb.gridDim(gpu::Dimension::x), one);
  Value dimV = kb.index(dim), groupV = kb.index(G);

  // Block S takes the dense buffer, the others contiguous splits of
  // ceil(length / S) tokens; their first chunk heads for L2 while the
  // query is rotated.
  Value isBuffer = kb.eq(split, splits);
  Value length = in.sparseLength;
  Value per = kb.div(kb.add(length, kb.sub(splits, one)), splits);
  Value start = kb.minIndex(kb.mul(split, per), length);
  Value end = kb.minIndex(kb.add(start, per), length);
  Value chunk = kb.index(abi::kTokensPerChunk);
  kb.ifThenElse(
      isBuffer,
      [&] {
        prefetchRows(kb, in.buffer, seq, head, zero,
                     kb.minIndex(chunk, in.bufferLength), tid);
      },
      [&] {
        prefetchRows(kb, in.sparse, seq, head, start,
                     kb.minIndex(kb.add(start, chunk), end), tid);
      });

  // q' = q · R_K for the G query heads, pre-scaled into log2 units, into
  // shared memory as [D][G]: every cache load then serves all G heads.
  // Every split recomputes it (D² · G multiply-adds, R_K from L2): cheaper
  // than a kernel launch of its own. Thread e owns column e of R_K
  // (coalesced), 16 rows in flight per step; query rows are broadcast.
  Value qScale = kb.mul(in.scale, kb.f32(kLog2E));
  const int64_t kUnroll = std::min<int64_t>(dim, 16);
  kb.loop(tid, dimV, threads, [&](Value e) {
    SmallVector<Value> init(G, kb.f32(0));
    SmallVector<Value> dots = kb.loop(
        zero, dimV, kb.index(kUnroll), init,
        [&](Value d0, ValueRange sums) -> SmallVector<Value> {
          SmallVector<Value> r;
          for (int64_t i = 0; i < kUnroll; ++i)
            r.push_back(kb.toF32(
                kb.load(in.keyRotation, {head, kb.add(d0, kb.index(i)), e})));
          SmallVector<Value> next(sums.begin(), sums.end());
          for (int64_t i = 0; i < kUnroll; ++i)
            for (int64_t g = 0; g < G; ++g) {
              Value row = kb.add(kb.mul(head, groupV), kb.index(g));
              next[g] =
                  kb.fma(next[g],
                         kb.toF32(kb.load(in.query,
                                          {seq, row, kb.add(d0, kb.index(i))})),
                         r[i]);
            }
          return next;
        });
    for (Value &dot : dots)
      dot = kb.mul(dot, qScale);
    kb.storeVector(dots, qs, {e, zero});
  });
  kb.loop(tid, kb.index(abi::kPartialWarps * dim * G), threads, [&](Value o) {
    Value w = kb.div(o, kb.index(dim * G));
    Value d = kb.rem(kb.div(o, groupV), dimV);
    Value g = kb.rem(o, groupV);
    kb.store(kb.f32(0), acc, {w, d, g});
  });
  kb.ifThen(kb.ult(tid, groupV), [&] {
    kb.store(kb.negInf(), state, {zero, tid});
    kb.store(kb.f32(0), state, {one, tid});
  });
  kb.barrier();

  kb.ifThenElse(
      isBuffer,
      [&] {
        emitTokenLoop(kb, shape, in.buffer, seq, head, zero, in.bufferLength,
                      warp, lane, qs, scores, acc, state);
      },
      [&] {
        emitTokenLoop(kb, shape, in.sparse, seq, head, start, end, warp, lane,
                      qs, scores, acc, state);
      });
  kb.barrier();

  kb.loop(tid, kb.index(G * dim), threads, [&](Value o) {
    Value g = kb.div(o, dimV), d = kb.rem(o, dimV);
    Value total = kb.f32(0);
    for (int64_t w = 0; w < abi::kPartialWarps; ++w)
      total = kb.add(total, kb.load(acc, {kb.index(w), d, g}));
    kb.store(total, in.outAcc, {seq, head, split, g, d});
  });
  kb.ifThen(kb.ult(tid, groupV), [&] {
    kb.store(kb.mul(kb.load(state, {zero, tid}), kb.f32(kLn2)), in.outMax,
             {seq, head, split, tid});
    kb.store(kb.load(state, {one, tid}), in.outSum, {seq, head, split, tid});
  });

  // The block of (sequence, head) that finishes last merges them all, so a
  // decode step is one launch. Each thread's partials are visible
  // device-wide before its block counts itself done (__threadfence, then
  // one atomic per block); the last block's fence orders its reads after
  // every count, and it clears the count for the next launch.
  NVVM::MembarOp::create(b, NVVM::MemScopeKind::GPU);
  kb.barrier();
  kb.ifThen(kb.eq(tid, zero), [&] {
    Value before = memref::AtomicRMWOp::create(
        b, arith::AtomicRMWKind::addi,
        arith::ConstantOp::create(b, b.getI32IntegerAttr(1)), in.finished,
        ValueRange{seq, head});
    Value lastOne = kb.eq(kb.toIndex(before), splits);
    kb.store(arith::ExtUIOp::create(b, b.getI32Type(), lastOne), lastBlock,
             {zero});
  });
  kb.barrier();
  Value isLast = arith::CmpIOp::create(
      b, arith::CmpIPredicate::ne, kb.load(lastBlock, {zero}),
      arith::ConstantOp::create(b, b.getI32IntegerAttr(0)));
  kb.ifThen(isLast, [&] {
    NVVM::MembarOp::create(b, NVVM::MemScopeKind::GPU);
    kb.ifThen(kb.eq(tid, zero), [&] {
      kb.store(arith::ConstantOp::create(b, b.getI32IntegerAttr(0)),
               in.finished, {seq, head});
    });
    emitMerge(kb, shape, in, seq, head, qs, scores, state);
  });
}

} // namespace

void swan::emitDecodeAttention(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                               StringRef name, const DecodeOperands &ops,
                               const PartialKernelShape &shape,
                               bool rotateBack) {
  auto dynamic = [&](int64_t rank) {
    return MemRefType::get(SmallVector<int64_t>(rank, ShapedType::kDynamic),
                           b.getF32Type());
  };
  const int64_t dim = shape.dim;

  // --- partial kernels: the op's batch layout, and the paged one ---
  // Both end in the partials' workspace, the blocks-finished counts, R_V
  // (unless the output stays rotated) and the output.
  SmallVector<Type> outputs = {
      dynamic(4), dynamic(4), dynamic(5),
      MemRefType::get({ShapedType::kDynamic, ShapedType::kDynamic},
                      b.getI32Type())};
  if (rotateBack)
    outputs.push_back(ops.valueRotation.getType());
  outputs.push_back(ops.result.getType());
  auto addOutputs = [&](PartialInputs &in, ValueRange rest) {
    in.outMax = rest[0];
    in.outSum = rest[1];
    in.outAcc = rest[2];
    in.finished = rest[3];
    in.valueRotation = rotateBack ? rest[4] : Value();
    in.out = rest.back();
  };
  {
    SmallVector<Type> argTypes = {ops.query.getType(),
                                  ops.scale.getType(),
                                  ops.keyRotation.getType(),
                                  ops.sparseKeyValues.getType(),
                                  ops.sparseKeyIndices.getType(),
                                  ops.sparseValueValues.getType(),
                                  ops.sparseValueIndices.getType(),
                                  ops.bufferKeys.getType(),
                                  ops.bufferValues.getType(),
                                  ops.sparseLengths.getType(),
                                  ops.bufferLengths.getType()};
    argTypes.append(outputs);
    emitPartialKernel(b, module, (name + abi::kPartialSuffix).str(), argTypes,
                      shape,
                      [&](GPUKernelBuilder &kb, ValueRange a, Value seq) {
                        PartialInputs in;
                        in.query = a[0];
                        in.scale = a[1];
                        in.keyRotation = a[2];
                        in.sparse = {{a[3]}, {a[4]}, {a[5]}, {a[6]}};
                        in.sparse.keyMasks = shape.keyMasks;
                        in.sparse.valueMasks = shape.valueMasks;
                        in.buffer = {{a[7]}, {}, {a[8]}, {}};
                        in.sparseLength = kb.toIndex(kb.load(a[9], {seq}));
                        in.bufferLength = kb.toIndex(kb.load(a[10], {seq}));
                        addOutputs(in, a.drop_front(11));
                        return in;
                      });
  }
  {
    auto table = MemRefType::get({ShapedType::kDynamic, abi::kSequenceFields},
                                 b.getI64Type());
    SmallVector<Type> argTypes = {ops.query.getType(), ops.scale.getType(),
                                  ops.keyRotation.getType(), table};
    argTypes.append(outputs);
    auto elementOf = [](Value memref) {
      return cast<MemRefType>(memref.getType()).getElementType();
    };
    emitPartialKernel(
        b, module, (name + abi::kPagedPartialSuffix).str(), argTypes, shape,
        [&](GPUKernelBuilder &kb, ValueRange a, Value seq) {
          ImplicitLocOpBuilder &ib = kb.builder();
          auto field = [&](abi::SequenceField f) {
            return kb.load(a[3], {seq, kb.index(f)});
          };
          // Global-space pointers, so that the loads are ld.global as
          // they are through the memref arguments.
          auto address = [&](abi::SequenceField f) -> Value {
            return LLVM::IntToPtrOp::create(
                ib, LLVM::LLVMPointerType::get(ib.getContext(), kGlobalSpace),
                field(f));
          };
          auto count = [&](abi::SequenceField f) {
            return kb.toIndex(field(f));
          };
          Value capacity = count(abi::kCapacity);
          Value keyK = count(abi::kKeyK), valueK = count(abi::kValueK);
          Value slots = count(abi::kBufferCapacity), width = kb.index(dim);
          auto sparseArray = [&](abi::SequenceField f, Value k, Value like) {
            return TokenArray{{}, address(f), capacity, k, elementOf(like)};
          };
          // An occupancy mask row is D/8 bytes whatever k.
          Value maskBytes = kb.index(dim / 8);
          auto bufferArray = [&](abi::SequenceField f, Value like) {
            return TokenArray{{}, address(f), slots, width, elementOf(like)};
          };
          PartialInputs in;
          in.query = a[0];
          in.scale = a[1];
          in.keyRotation = a[2];
          in.sparse = {
              sparseArray(abi::kKeyValues, keyK, ops.sparseKeyValues),
              sparseArray(abi::kKeyIndices, shape.keyMasks ? maskBytes : keyK,
                          ops.sparseKeyIndices),
              sparseArray(abi::kValueValues, valueK, ops.sparseValueValues),
              sparseArray(abi::kValueIndices,
                          shape.valueMasks ? maskBytes : valueK,
                          ops.sparseValueIndices)};
          in.sparse.keyMasks = shape.keyMasks;
          in.sparse.valueMasks = shape.valueMasks;
          in.buffer = {bufferArray(abi::kBufferKeys, ops.bufferKeys),
                       {},
                       bufferArray(abi::kBufferValues, ops.bufferValues),
                       {}};
          in.sparseLength = count(abi::kSparseLength);
          in.bufferLength = count(abi::kBufferLength);
          addOutputs(in, a.drop_front(4));
          return in;
        });
  }
}
