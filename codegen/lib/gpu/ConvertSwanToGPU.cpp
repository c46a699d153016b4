//===- ConvertSwanToGPU.cpp - swan entry points to gpu kernels ------------===//
//
// Builds the gpu-dialect kernels of swan.rotate, swan.compress and
// swan.decode_attention (the flash-decoding partial + merge pair). The
// kernel bodies are written out here as scf/memref/arith/gpu IR; the
// launch contract lives in swan/Codegen/GPU/KernelABI.h.
//
//===----------------------------------------------------------------------===//

#include "swan/Codegen/GPU/KernelABI.h"
#include "swan/Codegen/GPU/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "swan/Dialect/SwanOps.h"

#include <cmath>

namespace swan {
#define GEN_PASS_DEF_SWANCONVERTTOGPU
#include "swan/Codegen/GPU/Passes.h.inc"
} // namespace swan

using namespace mlir;
using namespace swan;
namespace abi = swan::gpu_abi;

namespace {

constexpr double kLog2E = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;

/// The handful of IR idioms every kernel body is made of.
class KernelBuilder {
public:
  explicit KernelBuilder(ImplicitLocOpBuilder &b) : b(b) {}

  ImplicitLocOpBuilder &builder() { return b; }

  Value index(int64_t v) { return arith::ConstantIndexOp::create(b, v); }
  Value f32(double v) {
    return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
  }
  Value negInf() { return f32(-std::numeric_limits<double>::infinity()); }

  Value add(Value x, Value y) {
    if (isa<FloatType>(x.getType()))
      return arith::AddFOp::create(b, x, y);
    return arith::AddIOp::create(b, x, y);
  }
  Value sub(Value x, Value y) {
    if (isa<FloatType>(x.getType()))
      return arith::SubFOp::create(b, x, y);
    return arith::SubIOp::create(b, x, y);
  }
  Value mul(Value x, Value y) {
    if (isa<FloatType>(x.getType()))
      return arith::MulFOp::create(b, x, y);
    return arith::MulIOp::create(b, x, y);
  }
  Value div(Value x, Value y) {
    if (isa<FloatType>(x.getType()))
      return arith::DivFOp::create(b, x, y);
    return arith::DivUIOp::create(b, x, y);
  }
  Value rem(Value x, Value y) { return arith::RemUIOp::create(b, x, y); }
  Value fma(Value acc, Value x, Value y) { return add(acc, mul(x, y)); }
  Value minIndex(Value x, Value y) { return arith::MinUIOp::create(b, x, y); }
  Value maxF(Value x, Value y) { return arith::MaxNumFOp::create(b, x, y); }
  // convert-gpu-to-nvvm turns math.absf/math.exp2 (and their llvm.intr
  // forms) into libdevice calls; these forms need no libdevice.
  Value absF(Value x) {
    Value negative = arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, x,
                                           f32(0));
    return arith::SelectOp::create(b, negative, arith::NegFOp::create(b, x),
                                   x);
  }
  /// One ex2.approx.f32 instruction: 2 ulp, exp2(-inf) = 0.
  Value exp2(Value x) {
    return LLVM::CallIntrinsicOp::create(
               b, b.getF32Type(), b.getStringAttr("llvm.nvvm.ex2.approx.f32"),
               ValueRange{x})
        .getResult(0);
  }
  Value ult(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, x, y);
  }
  Value eq(Value x, Value y) {
    return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, y);
  }

  Value threadId() { return gpu::ThreadIdOp::create(b, gpu::Dimension::x); }
  Value blockId(gpu::Dimension d) { return gpu::BlockIdOp::create(b, d); }
  Value gridDim(gpu::Dimension d) { return gpu::GridDimOp::create(b, d); }
  void barrier() { gpu::BarrierOp::create(b); }
  void warpSync() {
    NVVM::SyncWarpOp::create(
        b, arith::ConstantOp::create(b, b.getI32IntegerAttr(-1)));
  }

  /// Butterfly reduction over the 32 lanes of a warp; every lane gets the
  /// result.
  Value warpReduce(Value v, bool isMax) {
    for (int32_t offset = abi::kWarpSize / 2; offset > 0; offset /= 2) {
      Value other = gpu::ShuffleOp::create(b, v, offset, abi::kWarpSize,
                                           gpu::ShuffleMode::XOR)
                        .getShuffleResult();
      v = isMax ? maxF(v, other) : add(v, other);
    }
    return v;
  }

  Value load(Value memref, ValueRange indices) {
    return memref::LoadOp::create(b, memref, indices);
  }
  void store(Value v, Value memref, ValueRange indices) {
    memref::StoreOp::create(b, v, memref, indices);
  }
  Value dim(Value memref, int64_t i) {
    return memref::DimOp::create(b, memref, i);
  }

  Value toF32(Value v) {
    Type f32Type = b.getF32Type();
    if (v.getType() == f32Type)
      return v;
    if (cast<FloatType>(v.getType()).getWidth() < 32)
      return arith::ExtFOp::create(b, f32Type, v);
    return arith::TruncFOp::create(b, f32Type, v);
  }
  Value fromF32(Value v, Type to) {
    if (to == v.getType())
      return v;
    if (cast<FloatType>(to).getWidth() < 32)
      return arith::TruncFOp::create(b, to, v);
    return arith::ExtFOp::create(b, to, v);
  }
  /// Stored indices and lengths are unsigned integers of any width.
  Value toIndex(Value v) {
    if (v.getType().isIndex())
      return v;
    if (v.getType().getIntOrFloatBitWidth() < 64)
      v = arith::ExtUIOp::create(b, b.getI64Type(), v);
    return arith::IndexCastOp::create(b, b.getIndexType(), v);
  }
  Value fromIndex(Value v, Type to) {
    Value i64 = arith::IndexCastOp::create(b, b.getI64Type(), v);
    if (to.getIntOrFloatBitWidth() == 64)
      return i64;
    return arith::TruncIOp::create(b, to, i64);
  }

  /// for (iv = lb; iv < ub; iv += step) body(iv)
  void loop(Value lb, Value ub, Value step,
            llvm::function_ref<void(Value)> body) {
    scf::ForOp::create(b, lb, ub, step, ValueRange{},
                       [&](OpBuilder &, Location, Value iv, ValueRange) {
                         body(iv);
                         scf::YieldOp::create(b);
                       });
  }
  /// A loop carrying values: body returns the next values of `init`.
  SmallVector<Value>
  loop(Value lb, Value ub, Value step, ValueRange init,
       llvm::function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto op = scf::ForOp::create(
        b, lb, ub, step, init,
        [&](OpBuilder &, Location, Value iv, ValueRange iters) {
          scf::YieldOp::create(b, body(iv, iters));
        });
    return SmallVector<Value>(op.getResults());
  }
  void ifThen(Value cond, llvm::function_ref<void()> then) {
    auto op = scf::IfOp::create(b, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(op.thenBlock()->getTerminator());
    then();
  }
  void ifThenElse(Value cond, llvm::function_ref<void()> then,
                  llvm::function_ref<void()> otherwise) {
    auto op = scf::IfOp::create(b, cond, /*withElseRegion=*/true);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(op.thenBlock()->getTerminator());
    then();
    b.setInsertionPoint(op.elseBlock()->getTerminator());
    otherwise();
  }

private:
  ImplicitLocOpBuilder &b;
};

MemRefType workgroupMemRef(MLIRContext *ctx, ArrayRef<int64_t> shape,
                           Type element) {
  return MemRefType::get(
      shape, element, MemRefLayoutAttrInterface{},
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup));
}

/// Creates an empty kernel with a known block size; the caller fills its
/// body before the gpu.return.
gpu::GPUFuncOp createKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                            StringRef name, TypeRange arguments,
                            TypeRange workgroup, int64_t blockSize) {
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToEnd(module.getBody());
  auto type = b.getFunctionType(arguments, {});
  auto kernel = gpu::GPUFuncOp::create(b, name, type, workgroup, TypeRange{});
  kernel->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  kernel.setKnownBlockSizeAttr(
      b.getDenseI32ArrayAttr({static_cast<int32_t>(blockSize), 1, 1}));
  b.setInsertionPointToEnd(&kernel.getBody().front());
  gpu::ReturnOp::create(b);
  return kernel;
}

/// Positions the builder before a kernel's terminator.
void enterKernel(ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel) {
  b.setInsertionPoint(kernel.getBody().front().getTerminator());
}

//===----------------------------------------------------------------------===//
// rotate and compress: one block per token, one thread per dimension
//===----------------------------------------------------------------------===//

/// x [n, D], r [D, D], then for compress k, values [n, k], indices [n, k],
/// or for rotate out [n, D].
void emitRotateOrCompress(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                          StringRef name, ArrayRef<Value> sources,
                          bool compress, int64_t dim) {
  MLIRContext *ctx = b.getContext();
  SmallVector<Type> argTypes =
      llvm::map_to_vector(sources, [](Value v) { return v.getType(); });
  SmallVector<Type> workgroup = {
      workgroupMemRef(ctx, {dim}, b.getF32Type()),
      workgroupMemRef(ctx, {dim}, b.getF32Type()),
      workgroupMemRef(ctx, {dim}, b.getI32Type())};
  gpu::GPUFuncOp kernel =
      createKernel(b, module, name, argTypes, workgroup, dim);
  enterKernel(b, kernel);
  KernelBuilder kb(b);
  auto args = kernel.getArguments();
  auto shared = kernel.getWorkgroupAttributions();
  Value x = args[0], r = args[1];
  Value xs = shared[0], ys = shared[1], flags = shared[2];

  Value e = kb.threadId();
  Value token = kb.blockId(gpu::Dimension::x);
  Value zero = kb.index(0), one = kb.index(1), dimV = kb.index(dim);
  kb.store(kb.toF32(kb.load(x, {token, e})), xs, {e});
  kb.barrier();
  // Column e of R is read by consecutive threads: coalesced.
  Value y = kb.loop(zero, dimV, one, {kb.f32(0)},
                    [&](Value d, ValueRange acc) -> SmallVector<Value> {
                      return {kb.fma(acc[0], kb.load(xs, {d}),
                                     kb.toF32(kb.load(r, {d, e})))};
                    })[0];
  if (!compress) {
    Value out = args[2];
    kb.store(kb.fromF32(y, cast<MemRefType>(out.getType()).getElementType()),
             out, {token, e});
    return;
  }
  Value k = args[2], values = args[3], indices = args[4];
  kb.store(y, ys, {e});
  kb.barrier();
  // Rank of |y| among the row, ties to the lower index: the k smallest
  // ranks are kept.
  Value magnitude = kb.absF(y);
  Value rank = kb.loop(
      zero, dimV, one, {zero}, [&](Value d, ValueRange acc) -> SmallVector<Value> {
        Value other = kb.absF(kb.load(ys, {d}));
        Value larger = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT,
                                             other, magnitude);
        Value tie = arith::AndIOp::create(
            b,
            arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, other,
                                  magnitude),
            kb.ult(d, e));
        Value before = arith::OrIOp::create(b, larger, tie);
        return {arith::SelectOp::create(b, before, kb.add(acc[0], one),
                                        acc[0])};
      })[0];
  Value keep = kb.ult(rank, k);
  kb.store(arith::ExtUIOp::create(b, b.getI32Type(), keep), flags, {e});
  kb.barrier();
  kb.ifThen(keep, [&] {
    // Kept entries are written in ascending dimension order.
    Value position = kb.loop(zero, e, one, {zero},
                             [&](Value d, ValueRange acc) -> SmallVector<Value> {
                               return {kb.add(acc[0], kb.toIndex(kb.load(
                                                          flags, {d})))};
                             })[0];
    auto valueType = cast<MemRefType>(values.getType()).getElementType();
    auto indexType = cast<MemRefType>(indices.getType()).getElementType();
    kb.store(kb.fromF32(y, valueType), values, {token, position});
    kb.store(kb.fromIndex(e, indexType), indices, {token, position});
  });
}

//===----------------------------------------------------------------------===//
// decode attention: partial blocks over (split, KV head, sequence) + merge
//===----------------------------------------------------------------------===//

struct PartialKernelShape {
  int64_t dim;
  int64_t group;
};

/// Where one kind of token lives: winnowed (values + indices) or dense.
struct TokenSource {
  Value keyValues, keyIndices; // keyIndices null: dense keys [B,H,b,D]
  Value valueValues, valueIndices;
};

/// Emits the chunked online-softmax loop over tokens [start, end) of
/// sequence `seq`, KV head `head`. Scores live in shared memory per chunk;
/// each warp accumulates its own tokens' values into its own shared
/// accumulator, so no atomics are needed.
void emitTokenLoop(KernelBuilder &kb, const PartialKernelShape &shape,
                   const TokenSource &src, Value seq, Value head, Value start,
                   Value end, Value warp, Value lane, Value qs, Value scores,
                   Value acc, Value state) {
  ImplicitLocOpBuilder &b = kb.builder();
  const int64_t G = shape.group;
  Value zero = kb.index(0), one = kb.index(1), two = kb.index(2);
  Value warps = kb.index(abi::kPartialWarps);
  Value warpSize = kb.index(abi::kWarpSize);
  Value chunk = kb.index(abi::kTokensPerChunk);
  bool denseKeys = !src.keyIndices, denseValues = !src.valueIndices;
  Value keyCount = denseKeys ? kb.index(shape.dim) : kb.dim(src.keyValues, 3);
  Value valueCount =
      denseValues ? kb.index(shape.dim) : kb.dim(src.valueValues, 3);

  kb.loop(start, end, chunk, [&](Value chunkStart) {
    Value count = kb.minIndex(chunk, kb.sub(end, chunkStart));

    // Scores: a warp per token, lanes over its components (coalesced
    // loads), one butterfly reduction per query head.
    kb.loop(warp, count, warps, [&](Value t) {
      Value token = kb.add(chunkStart, t);
      SmallVector<Value> init(G, kb.f32(0));
      SmallVector<Value> partial = kb.loop(
          lane, keyCount, warpSize, init,
          [&](Value j, ValueRange sums) -> SmallVector<Value> {
            Value component =
                denseKeys ? j
                          : kb.toIndex(kb.load(src.keyIndices,
                                               {seq, head, token, j}));
            Value key =
                kb.toF32(kb.load(src.keyValues, {seq, head, token, j}));
            SmallVector<Value> next;
            for (int64_t g = 0; g < G; ++g)
              next.push_back(kb.fma(
                  sums[g], kb.load(qs, {component, kb.index(g)}), key));
            return next;
          });
      SmallVector<Value> total;
      for (int64_t g = 0; g < G; ++g)
        total.push_back(kb.warpReduce(partial[g], /*isMax=*/false));
      kb.ifThen(kb.eq(lane, zero), [&] {
        for (int64_t g = 0; g < G; ++g)
          kb.store(total[g], scores, {kb.index(g), t});
      });
    });
    kb.barrier();

    // Online softmax, one warp per query head: new running max, the factor
    // that rescales what came before, and the chunk's weights in place.
    kb.loop(warp, kb.index(G), warps, [&](Value g) {
      Value oldMax = kb.load(state, {zero, g});
      Value chunkMax = kb.loop(lane, count, warpSize, {kb.negInf()},
                               [&](Value t, ValueRange m) -> SmallVector<Value> {
                                 return {kb.maxF(m[0], kb.load(scores, {g, t}))};
                               })[0];
      Value newMax = kb.maxF(oldMax, kb.warpReduce(chunkMax, /*isMax=*/true));
      Value alpha = kb.exp2(kb.sub(oldMax, newMax));
      Value chunkSum = kb.loop(
          lane, count, warpSize, {kb.f32(0)},
          [&](Value t, ValueRange s) -> SmallVector<Value> {
            Value p = kb.exp2(kb.sub(kb.load(scores, {g, t}), newMax));
            kb.store(p, scores, {g, t});
            return {kb.add(s[0], p)};
          })[0];
      chunkSum = kb.warpReduce(chunkSum, /*isMax=*/false);
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
    kb.loop(lane, kb.index(shape.dim), warpSize, [&](Value d) {
      for (int64_t g = 0; g < G; ++g) {
        Value gi = kb.index(g);
        kb.store(kb.mul(kb.load(acc, {warp, d, gi}), alphas[g]), acc,
                 {warp, d, gi});
      }
    });

    // Values: lanes scatter-add a token's kept components into the warp's
    // accumulator by index. A token's indices are distinct, so lanes never
    // collide within a token; the warp syncs between tokens.
    kb.loop(warp, count, warps, [&](Value t) {
      Value token = kb.add(chunkStart, t);
      SmallVector<Value> weights;
      for (int64_t g = 0; g < G; ++g)
        weights.push_back(kb.load(scores, {kb.index(g), t}));
      kb.loop(lane, valueCount, warpSize, [&](Value j) {
        Value component =
            denseValues ? j
                        : kb.toIndex(kb.load(src.valueIndices,
                                             {seq, head, token, j}));
        Value value =
            kb.toF32(kb.load(src.valueValues, {seq, head, token, j}));
        for (int64_t g = 0; g < G; ++g) {
          Value gi = kb.index(g);
          kb.store(kb.fma(kb.load(acc, {warp, component, gi}), weights[g],
                          value),
                   acc, {warp, component, gi});
        }
      });
      kb.warpSync();
    });
    // The next chunk overwrites the weights.
    kb.barrier();
  });
  (void)b;
}

struct DecodeOperands {
  Value query, scale, keyRotation, valueRotation;
  Value sparseKeyValues, sparseKeyIndices, sparseValueValues,
      sparseValueIndices;
  Value bufferKeys, bufferValues, sparseLengths, bufferLengths;
  Value result;
};

void emitDecodeAttention(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                         StringRef name, const DecodeOperands &ops,
                         int64_t dim, int64_t group, bool rotateBack) {
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  auto workspace = [&](int64_t rank) {
    return MemRefType::get(SmallVector<int64_t>(rank, ShapedType::kDynamic),
                           f32);
  };
  PartialKernelShape shape{dim, group};
  const int64_t G = group;

  // --- partial kernel ---
  {
    SmallVector<Type> argTypes = {
        ops.query.getType(),        ops.scale.getType(),
        ops.keyRotation.getType(),  ops.sparseKeyValues.getType(),
        ops.sparseKeyIndices.getType(), ops.sparseValueValues.getType(),
        ops.sparseValueIndices.getType(), ops.bufferKeys.getType(),
        ops.bufferValues.getType(), ops.sparseLengths.getType(),
        ops.bufferLengths.getType(), workspace(4), workspace(4),
        workspace(5)};
    SmallVector<Type> workgroup = {
        workgroupMemRef(ctx, {dim, G}, f32),
        workgroupMemRef(ctx, {G, abi::kTokensPerChunk}, f32),
        workgroupMemRef(ctx, {abi::kPartialWarps, dim, G}, f32),
        workgroupMemRef(ctx, {3, G}, f32)};
    gpu::GPUFuncOp kernel =
        createKernel(b, module, (name + abi::kPartialSuffix).str(), argTypes,
                     workgroup, abi::kPartialThreads);
    enterKernel(b, kernel);
    KernelBuilder kb(b);
    auto a = kernel.getArguments();
    Value query = a[0], scale = a[1], keyRotation = a[2];
    TokenSource sparse{a[3], a[4], a[5], a[6]};
    TokenSource buffer{a[7], nullptr, a[8], nullptr};
    Value sparseLengths = a[9], bufferLengths = a[10];
    Value outMax = a[11], outSum = a[12], outAcc = a[13];
    auto shared = kernel.getWorkgroupAttributions();
    Value qs = shared[0], scores = shared[1], acc = shared[2],
          state = shared[3];

    Value zero = kb.index(0), one = kb.index(1);
    Value threads = kb.index(abi::kPartialThreads);
    Value tid = kb.threadId();
    Value warp = kb.div(tid, kb.index(abi::kWarpSize));
    Value lane = kb.rem(tid, kb.index(abi::kWarpSize));
    Value split = kb.blockId(gpu::Dimension::x);
    Value head = kb.blockId(gpu::Dimension::y);
    Value seq = kb.blockId(gpu::Dimension::z);
    Value splits = kb.sub(kb.gridDim(gpu::Dimension::x), one);
    Value dimV = kb.index(dim), groupV = kb.index(G);

    // The G rotated query rows, pre-scaled into log2 units, go to shared
    // memory as [D][G]: every cache load then serves all G heads.
    Value qScale = kb.mul(scale, kb.f32(kLog2E));
    kb.loop(tid, kb.index(G * dim), threads, [&](Value o) {
      Value g = kb.div(o, dimV), e = kb.rem(o, dimV);
      Value row = kb.add(kb.mul(head, groupV), g);
      Value dot = kb.loop(zero, dimV, one, {kb.f32(0)},
                          [&](Value d, ValueRange s) -> SmallVector<Value> {
                            return {kb.fma(
                                s[0], kb.toF32(kb.load(query, {seq, row, d})),
                                kb.toF32(kb.load(keyRotation, {head, d, e})))};
                          })[0];
      kb.store(kb.mul(dot, qScale), qs, {e, g});
    });
    kb.loop(tid, kb.index(abi::kPartialWarps * dim * G), threads,
            [&](Value o) {
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
        kb.eq(split, splits),
        [&] {
          Value length = kb.toIndex(kb.load(bufferLengths, {seq}));
          emitTokenLoop(kb, shape, buffer, seq, head, zero, length, warp,
                        lane, qs, scores, acc, state);
        },
        [&] {
          // Contiguous splits of ceil(length / splits) tokens.
          Value length = kb.toIndex(kb.load(sparseLengths, {seq}));
          Value per = kb.div(kb.add(length, kb.sub(splits, one)), splits);
          Value start = kb.minIndex(kb.mul(split, per), length);
          Value end = kb.minIndex(kb.add(start, per), length);
          emitTokenLoop(kb, shape, sparse, seq, head, start, end, warp, lane,
                        qs, scores, acc, state);
        });
    kb.barrier();

    kb.loop(tid, kb.index(G * dim), threads, [&](Value o) {
      Value g = kb.div(o, dimV), d = kb.rem(o, dimV);
      Value total = kb.f32(0);
      for (int64_t w = 0; w < abi::kPartialWarps; ++w)
        total = kb.add(total, kb.load(acc, {kb.index(w), d, g}));
      kb.store(total, outAcc, {seq, head, split, g, d});
    });
    kb.ifThen(kb.ult(tid, groupV), [&] {
      kb.store(kb.mul(kb.load(state, {zero, tid}), kb.f32(kLn2)), outMax,
               {seq, head, split, tid});
      kb.store(kb.load(state, {one, tid}), outSum, {seq, head, split, tid});
    });
  }

  // --- merge kernel ---
  {
    SmallVector<Type> argTypes = {workspace(4), workspace(4), workspace(5)};
    if (rotateBack)
      argTypes.push_back(ops.valueRotation.getType());
    argTypes.push_back(ops.result.getType());
    SmallVector<Type> workgroup = {workgroupMemRef(ctx, {G, dim}, f32)};
    gpu::GPUFuncOp kernel = createKernel(
        b, module, (name + abi::kMergeSuffix).str(), argTypes, workgroup, dim);
    enterKernel(b, kernel);
    KernelBuilder kb(b);
    auto a = kernel.getArguments();
    Value inMax = a[0], inSum = a[1], inAcc = a[2];
    Value valueRotation = rotateBack ? a[3] : Value();
    Value out = a[argTypes.size() - 1];
    Value merged = kernel.getWorkgroupAttributions()[0];
    Type outType = cast<MemRefType>(out.getType()).getElementType();

    Value zero = kb.index(0), one = kb.index(1);
    Value e = kb.threadId();
    Value head = kb.blockId(gpu::Dimension::x);
    Value seq = kb.blockId(gpu::Dimension::y);
    Value splits = kb.dim(inMax, 2);
    Value groupV = kb.index(G), dimV = kb.index(dim);
    kb.loop(zero, groupV, one, [&](Value g) {
      Value m = kb.loop(zero, splits, one, {kb.negInf()},
                        [&](Value s, ValueRange mm) -> SmallVector<Value> {
                          return {kb.maxF(mm[0],
                                          kb.load(inMax, {seq, head, s, g}))};
                        })[0];
      SmallVector<Value> sums = kb.loop(
          zero, splits, one, {kb.f32(0), kb.f32(0)},
          [&](Value s, ValueRange ls) -> SmallVector<Value> {
            Value w = kb.exp2(kb.mul(
                kb.sub(kb.load(inMax, {seq, head, s, g}), m), kb.f32(kLog2E)));
            return {kb.fma(ls[0], w, kb.load(inSum, {seq, head, s, g})),
                    kb.fma(ls[1], w, kb.load(inAcc, {seq, head, s, g, e}))};
          });
      Value o = kb.div(sums[1], sums[0]);
      if (rotateBack)
        kb.store(o, merged, {g, e});
      else
        kb.store(kb.fromF32(o, outType), out,
                 {seq, kb.add(kb.mul(head, groupV), g), e});
    });
    if (rotateBack) {
      kb.barrier();
      // o · R_Vᵀ: out[e] = Σ_d o'[d] · R_V[e][d].
      kb.loop(zero, groupV, one, [&](Value g) {
        Value y = kb.loop(zero, dimV, one, {kb.f32(0)},
                          [&](Value d, ValueRange s) -> SmallVector<Value> {
                            return {kb.fma(s[0], kb.load(merged, {g, d}),
                                           kb.toF32(kb.load(valueRotation,
                                                            {head, e, d})))};
                          })[0];
        kb.store(kb.fromF32(y, outType), out,
                 {seq, kb.add(kb.mul(head, groupV), g), e});
      });
    }
  }
}

//===----------------------------------------------------------------------===//
// Entry-point matching
//===----------------------------------------------------------------------===//

/// The memref (or scalar) function argument behind a swan op operand.
FailureOr<Value> sourceArgument(Value operand) {
  if (auto toTensor = operand.getDefiningOp<bufferization::ToTensorOp>())
    operand = toTensor.getBuffer();
  if (isa<BlockArgument>(operand))
    return operand;
  return failure();
}

/// The memref function argument a swan op result is written into.
FailureOr<Value> destinationArgument(Value result) {
  for (Operation *user : result.getUsers())
    if (auto write = dyn_cast<bufferization::MaterializeInDestinationOp>(user))
      if (isa<BlockArgument>(write.getDest()))
        return write.getDest();
  return failure();
}

FailureOr<SmallVector<Value>> sourceArguments(Operation *op) {
  SmallVector<Value> sources;
  for (Value operand : op->getOperands()) {
    FailureOr<Value> source = sourceArgument(operand);
    if (failed(source))
      return failure();
    sources.push_back(*source);
  }
  for (Value result : op->getResults()) {
    FailureOr<Value> dest = destinationArgument(result);
    if (failed(dest))
      return failure();
    sources.push_back(*dest);
  }
  return sources;
}

int64_t staticDim(Value v, unsigned i) {
  return cast<ShapedType>(v.getType()).getDimSize(i);
}

struct SwanConvertToGPUPass
    : swan::impl::SwanConvertToGPUBase<SwanConvertToGPUPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> entries;
    for (auto fn : module.getOps<func::FuncOp>()) {
      bool hasSwanOp = false;
      fn.walk([&](Operation *op) {
        hasSwanOp |= isa<RotateOp, CompressOp, DecodeAttentionOp>(op);
      });
      if (hasSwanOp)
        entries.push_back(fn);
    }
    if (entries.empty())
      return;

    ImplicitLocOpBuilder b(module.getLoc(), module.getContext());
    b.setInsertionPointToEnd(module.getBody());
    auto kernels = gpu::GPUModuleOp::create(b, abi::kKernelModuleName);
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    b.getUnitAttr());

    for (func::FuncOp fn : entries) {
      if (failed(convertEntry(b, kernels, fn)))
        return signalPassFailure();
      fn.erase();
    }
  }

  LogicalResult convertEntry(ImplicitLocOpBuilder &b,
                             gpu::GPUModuleOp kernels, func::FuncOp fn) {
    Operation *swanOp = nullptr;
    unsigned count = 0;
    fn.walk([&](Operation *op) {
      if (isa<RotateOp, CompressOp, DecodeAttentionOp>(op)) {
        swanOp = op;
        ++count;
      }
    });
    if (count != 1)
      return fn.emitError("a GPU entry point wraps exactly one swan op");
    FailureOr<SmallVector<Value>> sources = sourceArguments(swanOp);
    if (failed(sources))
      return swanOp->emitError(
          "operands must come from the entry point's arguments and results "
          "must be written to them (bufferization.to_tensor / "
          "materialize_in_destination)");
    b.setLoc(swanOp->getLoc());
    StringRef name = fn.getSymName();

    if (auto rotate = dyn_cast<RotateOp>(swanOp)) {
      int64_t dim = staticDim(rotate.getInput(), 1);
      if (ShapedType::isDynamic(dim))
        return rotate.emitError("the GPU kernel needs a static head dim");
      emitRotateOrCompress(b, kernels, name, *sources, /*compress=*/false,
                           dim);
      return success();
    }
    if (auto compress = dyn_cast<CompressOp>(swanOp)) {
      int64_t dim = staticDim(compress.getInput(), 1);
      if (ShapedType::isDynamic(dim))
        return compress.emitError("the GPU kernel needs a static head dim");
      emitRotateOrCompress(b, kernels, name, *sources, /*compress=*/true, dim);
      return success();
    }
    auto decode = cast<DecodeAttentionOp>(swanOp);
    int64_t dim = staticDim(decode.getQuery(), 2);
    if (ShapedType::isDynamic(dim))
      return decode.emitError("the GPU kernel needs a static head dim");
    int64_t group = decode.getGroupSize();
    // Shared memory per partial block: rotated query, chunk scores, one
    // accumulator per warp, running state.
    int64_t sharedBytes =
        4 * (dim * group + group * abi::kTokensPerChunk +
             abi::kPartialWarps * dim * group + 3 * group);
    if (sharedBytes > 48 * 1024)
      return decode.emitError("D = ")
             << dim << ", G = " << group
             << " needs more than 48 KiB of static shared memory";
    const SmallVector<Value> &s = *sources;
    DecodeOperands ops{s[0], s[1], s[2], s[3], s[4],  s[5], s[6],
                       s[7], s[8], s[9], s[10], s[11], s[12]};
    emitDecodeAttention(b, kernels, name, ops, dim, group,
                        !decode.getRotatedOutput());
    return success();
  }
};
} // namespace
