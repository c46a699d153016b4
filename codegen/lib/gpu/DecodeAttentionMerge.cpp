//===- DecodeAttentionMerge.cpp - the merge of decode attention partials --===//
//
// Run by the last partial block of a (sequence, KV head) to finish: the
// splits' weights, the weighted sum of their accumulators and the product
// with R_Vᵀ, all in the same launch.
//
//===----------------------------------------------------------------------===//

#include "DecodeAttention.h"

#include "swan/Codegen/GPU/KernelABI.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace swan;
namespace abi = swan::gpu_abi;

namespace {

/// sum over i in [0, count) of term(i), with `ways` independent partial
/// sums so that that many loads are in flight; out-of-range i are clamped
/// to count - 1 and contribute zero.
Value unrolledSum(GPUKernelBuilder &kb, Value count, int64_t ways,
                  llvm::function_ref<Value(Value)> term) {
  ImplicitLocOpBuilder &b = kb.builder();
  Value zero = kb.index(0), one = kb.index(1);
  Value last = kb.sub(count, one);
  SmallVector<Value> init(ways, kb.f32(0));
  SmallVector<Value> sums =
      kb.loop(zero, count, kb.index(ways), init,
              [&](Value i0, ValueRange partial) -> SmallVector<Value> {
                SmallVector<Value> terms;
                for (int64_t w = 0; w < ways; ++w) {
                  Value i = kb.add(i0, kb.index(w));
                  Value t = term(kb.minIndex(i, last));
                  terms.push_back(arith::SelectOp::create(b, kb.ult(i, count),
                                                          t, kb.f32(0)));
                }
                SmallVector<Value> next;
                for (int64_t w = 0; w < ways; ++w)
                  next.push_back(kb.add(partial[w], terms[w]));
                return next;
              });
  Value total = sums[0];
  for (int64_t w = 1; w < ways; ++w)
    total = kb.add(total, sums[w]);
  return total;
}

} // namespace

void swan::emitMerge(GPUKernelBuilder &kb, const PartialKernelShape &shape,
                     const PartialInputs &in, Value seq, Value head, Value qs,
                     Value scores, Value state) {
  ImplicitLocOpBuilder &b = kb.builder();
  const int64_t D = shape.dim, G = shape.group;
  const int64_t T = abi::kPartialThreads;
  Value zero = kb.index(0), one = kb.index(1);
  Value tid = kb.threadId();
  Value warp = kb.div(tid, kb.index(abi::kWarpSize));
  Value lane = kb.rem(tid, kb.index(abi::kWarpSize));
  Value warpSize = kb.index(abi::kWarpSize);
  Value blocks = kb.gridDim(gpu::Dimension::x);

  // exp(max_s - max) for split s and head g (maxima in natural units).
  auto splitScale = [&](Value s, Value g, Value max) {
    return kb.exp2(kb.mul(kb.sub(kb.load(in.outMax, {seq, head, s, g}), max),
                          kb.f32(kLog2E)));
  };

  // Warp w turns the maxima and sums of heads w, w + 4, ... into the
  // overall max and 1 / sum; each split's weight is then
  // exp(max_s - max) / sum.
  kb.loop(warp, kb.index(G), kb.index(abi::kPartialWarps), [&](Value g) {
    Value m = kb.loop(
        lane, blocks, warpSize, {kb.negInf()},
        [&](Value s, ValueRange mm) -> SmallVector<Value> {
          return {kb.maxF(mm[0], kb.load(in.outMax, {seq, head, s, g}))};
        })[0];
    m = kb.warpReduce(m, /*isMax=*/true);
    Value l = kb.loop(lane, blocks, warpSize, {kb.f32(0)},
                      [&](Value s, ValueRange ls) -> SmallVector<Value> {
                        return {kb.fma(ls[0], splitScale(s, g, m),
                                       kb.load(in.outSum, {seq, head, s, g}))};
                      })[0];
    l = kb.warpReduce(l, /*isMax=*/false);
    kb.ifThen(kb.eq(lane, zero), [&] {
      kb.store(m, state, {zero, g});
      kb.store(kb.div(kb.f32(1), l), state, {one, g});
    });
  });
  kb.barrier();

  // Thread t owns the vectors t, t + T, ... of V consecutive dimensions of
  // the [G][D] output; the splits' weights pass through shared memory a
  // chunk of splits at a time, and each thread keeps `ways` vector loads
  // of the accumulators in flight.
  const int64_t V = D % 4 == 0 ? 4 : D % 2 == 0 ? 2 : 1;
  const int64_t vectors = G * D / V;
  const int64_t owned = (vectors + T - 1) / T;
  const int64_t ways = std::max<int64_t>(1, 8 / owned);
  Value chunk = kb.index(abi::kTokensPerChunk);
  SmallVector<Value> sums = kb.loop(
      zero, blocks, chunk, SmallVector<Value>(owned * V, kb.f32(0)),
      [&](Value first, ValueRange carried) -> SmallVector<Value> {
        Value count = kb.minIndex(chunk, kb.sub(blocks, first));
        kb.loop(
            tid, kb.index(G * abi::kTokensPerChunk), kb.index(T), [&](Value o) {
              Value g = kb.div(o, chunk), s = kb.rem(o, chunk);
              kb.ifThen(kb.ult(s, count), [&] {
                Value w =
                    splitScale(kb.add(first, s), g, kb.load(state, {zero, g}));
                kb.store(kb.mul(w, kb.load(state, {one, g})), scores, {g, s});
              });
            });
        kb.barrier();
        SmallVector<Value> next(carried.begin(), carried.end());
        for (int64_t i = 0; i < owned; ++i) {
          // Threads past the last vector sum a clamped one and drop it.
          Value v =
              kb.minIndex(kb.add(tid, kb.index(T * i)), kb.index(vectors - 1));
          Value g = kb.div(v, kb.index(D / V));
          Value d = kb.mul(kb.rem(v, kb.index(D / V)), kb.index(V));
          SmallVector<Value> part(next.begin() + i * V,
                                  next.begin() + (i + 1) * V);
          part = kb.loop(
              zero, count, kb.index(ways), part,
              [&](Value s0, ValueRange acc) -> SmallVector<Value> {
                SmallVector<Value> out(acc.begin(), acc.end());
                Value last = kb.sub(count, one);
                for (int64_t u = 0; u < ways; ++u) {
                  Value s = kb.add(s0, kb.index(u));
                  Value sc = kb.minIndex(s, last);
                  Value w = arith::SelectOp::create(
                      b, kb.ult(s, count), kb.load(scores, {g, sc}), kb.f32(0));
                  SmallVector<Value> x = kb.loadVector(
                      in.outAcc, {seq, head, kb.add(first, sc), g, d}, V);
                  for (int64_t e = 0; e < V; ++e)
                    out[e] = kb.fma(out[e], w, x[e]);
                }
                return out;
              });
          llvm::copy(part, next.begin() + i * V);
        }
        // The next chunk overwrites the weights.
        kb.barrier();
        return next;
      });

  Type outType = cast<MemRefType>(in.out.getType()).getElementType();
  auto outputRow = [&](Value g) {
    return kb.add(kb.mul(head, kb.index(G)), g);
  };
  for (int64_t i = 0; i < owned; ++i) {
    Value v = kb.add(tid, kb.index(T * i));
    kb.ifThen(kb.ult(v, kb.index(vectors)), [&] {
      Value g = kb.div(v, kb.index(D / V));
      Value d = kb.mul(kb.rem(v, kb.index(D / V)), kb.index(V));
      for (int64_t e = 0; e < V; ++e) {
        Value de = kb.add(d, kb.index(e));
        if (in.valueRotation)
          kb.store(sums[i * V + e], qs, {de, g});
        else
          kb.store(kb.fromF32(sums[i * V + e], outType), in.out,
                   {seq, outputRow(g), de});
      }
    });
  }
  if (!in.valueRotation)
    return;
  kb.barrier();

  // out[g][e] = Σ_d o[g][d] · R_V[e][d]: rows of R_V read whole, lanes
  // over a row's columns (coalesced), each load serving all G heads. A
  // warp step takes 32 / G rows, so that its G · 32 / G sums are one
  // transposing reduction that leaves lane l with (head, row) =
  // (l / rows, l % rows). With D not a multiple of 32, thread t sums its
  // own rows.
  if (D % abi::kWarpSize == 0) {
    const int64_t rows = abi::kWarpSize / G, words = D / abi::kWarpSize;
    kb.loop(
        warp, kb.index(D / rows), kb.index(abi::kPartialWarps),
        [&](Value step) {
          Value firstRow = kb.mul(step, kb.index(rows));
          SmallVector<SmallVector<Value>> o;
          SmallVector<Value> columns;
          for (int64_t j = 0; j < words; ++j) {
            columns.push_back(kb.add(lane, kb.index(j * abi::kWarpSize)));
            o.push_back(kb.loadVector(qs, {columns.back(), zero}, G));
          }
          SmallVector<Value> partial(G * rows, kb.f32(0));
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = 0; j < words; ++j) {
              Value x = kb.toF32(
                  kb.load(in.valueRotation,
                          {head, kb.add(firstRow, kb.index(r)), columns[j]}));
              for (int64_t g = 0; g < G; ++g)
                partial[g * rows + r] =
                    kb.fma(partial[g * rows + r], o[j][g], x);
            }
          Value y = kb.transposeReduce(partial, lane);
          Value g = kb.div(lane, kb.index(rows));
          Value row = kb.add(firstRow, kb.rem(lane, kb.index(rows)));
          kb.store(kb.fromF32(y, outType), in.out, {seq, outputRow(g), row});
        });
    return;
  }
  kb.loop(tid, kb.index(G * D), kb.index(T), [&](Value o) {
    Value g = kb.div(o, kb.index(D)), e = kb.rem(o, kb.index(D));
    Value y =
        unrolledSum(kb, kb.index(D), std::min<int64_t>(D, 16), [&](Value d) {
          return kb.mul(kb.load(qs, {d, g}),
                        kb.toF32(kb.load(in.valueRotation, {head, e, d})));
        });
    kb.store(kb.fromF32(y, outType), in.out, {seq, outputRow(g), e});
  });
}
