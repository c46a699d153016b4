//===- ConvertSwanToGPU.cpp - swan entry points to gpu kernels ------------===//
//
// Builds the gpu-dialect kernels of swan.rotate, swan.compress and
// swan.decode_attention (flash-decoding partials and their merge). The
// kernel bodies are written out here as scf/memref/arith/gpu IR; the
// launch contract lives in swan/Codegen/GPU/KernelABI.h.
//
//===----------------------------------------------------------------------===//

#include "swan/Codegen/GPU/KernelABI.h"
#include "swan/Codegen/GPU/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
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
constexpr unsigned kGlobalSpace = 1; // NVPTX's global address space
constexpr double kLn2 = 0.6931471805599453;
constexpr int64_t kLineBytes = 128; // what one L2 prefetch brings

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
  // arith.maxnumf would become a libdevice call (__nv_fmaxf).
  Value maxF(Value x, Value y) {
    Value greater =
        arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, x, y);
    return arith::SelectOp::create(b, greater, x, y);
  }
  // convert-gpu-to-nvvm turns math.absf/math.exp2 (and their llvm.intr
  // forms) into libdevice calls; these forms need no libdevice, so the PTX
  // is complete without a CUDA toolkit.
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
  /// A hint that L2 fetch the line holding `address` (an index).
  void prefetchL2(Value address) {
    LLVM::InlineAsmOp::create(
        b, Type(),
        ValueRange{arith::IndexCastOp::create(b, b.getI64Type(), address)},
        kPrefetchL2Ptx, "l", /*has_side_effects=*/true,
        /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
        LLVM::AsmDialectAttr(), ArrayAttr());
  }
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
  /// `count` consecutive elements of the innermost dimension in one access
  /// (ld.shared.v4 and the like; shared buffers are 16-byte aligned).
  SmallVector<Value> loadVector(Value memref, ValueRange indices,
                                int64_t count) {
    Type element = cast<MemRefType>(memref.getType()).getElementType();
    auto type = VectorType::get({count}, element);
    Value v = vector::LoadOp::create(
        b, type, memref, indices, /*nontemporal=*/false,
        llvm::MaybeAlign(vectorAlignment(count, element)));
    SmallVector<Value> elements;
    for (int64_t i = 0; i < count; ++i)
      elements.push_back(vector::ExtractOp::create(b, v, i));
    return elements;
  }
  void storeVector(ArrayRef<Value> elements, Value memref,
                   ValueRange indices) {
    int64_t count = elements.size();
    auto type = VectorType::get({count}, b.getF32Type());
    Value v = vector::FromElementsOp::create(b, type, elements);
    vector::StoreOp::create(
        b, v, memref, indices, /*nontemporal=*/false,
        llvm::MaybeAlign(vectorAlignment(count, b.getF32Type())));
  }
  static uint64_t vectorAlignment(int64_t count, Type element) {
    return std::min<uint64_t>(
        16, llvm::PowerOf2Ceil(count * element.getIntOrFloatBitWidth() / 8));
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
  // 16-byte alignment lets the kernels use vector shared-memory accesses.
  for (unsigned i = 0; i < workgroup.size(); ++i)
    kernel.setWorkgroupAttributionAttr(i, LLVM::LLVMDialect::getAlignAttrName(),
                                       b.getI64IntegerAttr(16));
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

/// x [n, D], r [D, D], then for compress k, values [n, k] and indices
/// [n, k] or occupancy masks [n, D/8] (`masks`), or for rotate out [n, D].
void emitRotateOrCompress(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                          StringRef name, ArrayRef<Value> sources,
                          bool compress, bool masks, int64_t dim) {
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
  // Every thread walks the whole shared row, V words per load.
  const int64_t V = dim % 4 == 0 ? 4 : dim % 2 == 0 ? 2 : 1;
  Value vectorV = kb.index(V);
  kb.store(kb.toF32(kb.load(x, {token, e})), xs, {e});
  kb.barrier();
  // Column e of R is read by consecutive threads: coalesced.
  Value y = kb.loop(zero, dimV, vectorV, {kb.f32(0)},
                    [&](Value d, ValueRange acc) -> SmallVector<Value> {
                      SmallVector<Value> xd = kb.loadVector(xs, {d}, V);
                      Value sum = acc[0];
                      for (int64_t i = 0; i < V; ++i)
                        sum = kb.fma(
                            sum, xd[i],
                            kb.toF32(kb.load(r, {kb.add(d, kb.index(i)), e})));
                      return {sum};
                    })[0];
  if (!compress) {
    Value out = args[2];
    kb.store(kb.fromF32(y, cast<MemRefType>(out.getType()).getElementType()),
             out, {token, e});
    return;
  }
  Value k = args[2], values = args[3], indices = args[4];
  Value magnitude = kb.absF(y);
  kb.store(magnitude, ys, {e});
  kb.barrier();
  // Rank of |y| among the row, ties to the lower index: the k smallest
  // ranks are kept.
  Value rank = kb.loop(
      zero, dimV, vectorV, {zero},
      [&](Value d, ValueRange acc) -> SmallVector<Value> {
        SmallVector<Value> others = kb.loadVector(ys, {d}, V);
        Value count = acc[0];
        for (int64_t i = 0; i < V; ++i) {
          Value larger = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT,
                                               others[i], magnitude);
          Value tie = arith::AndIOp::create(
              b,
              arith::CmpFOp::create(b, arith::CmpFPredicate::OEQ, others[i],
                                    magnitude),
              kb.ult(kb.add(d, kb.index(i)), e));
          Value before = arith::OrIOp::create(b, larger, tie);
          count = arith::SelectOp::create(b, before, kb.add(count, one), count);
        }
        return {count};
      })[0];
  Value keep = kb.ult(rank, k);
  kb.store(arith::ExtUIOp::create(b, b.getI32Type(), keep), flags, {e});
  kb.barrier();
  kb.ifThen(keep, [&] {
    // Kept entries are written in ascending dimension order: the position
    // is the count of kept dimensions below e, read V flags at a time up to
    // the vector holding e.
    Value end = kb.mul(kb.div(kb.add(e, kb.index(V - 1)), vectorV), vectorV);
    Value position =
        kb.loop(zero, end, vectorV, {zero},
                [&](Value d, ValueRange acc) -> SmallVector<Value> {
                  SmallVector<Value> kept = kb.loadVector(flags, {d}, V);
                  Value count = acc[0];
                  for (int64_t i = 0; i < V; ++i) {
                    Value below = kb.ult(kb.add(d, kb.index(i)), e);
                    count =
                        kb.add(count, arith::SelectOp::create(
                                          b, below, kb.toIndex(kept[i]), zero));
                  }
                  return {count};
                })[0];
    auto valueType = cast<MemRefType>(values.getType()).getElementType();
    kb.store(kb.fromF32(y, valueType), values, {token, position});
    if (!masks) {
      auto indexType = cast<MemRefType>(indices.getType()).getElementType();
      kb.store(kb.fromIndex(e, indexType), indices, {token, position});
    }
  });
  if (!masks)
    return;
  // Thread 8 i gathers the keep flags of dimensions 8 i .. 8 i + 7 into
  // byte i of the mask (D is a multiple of 8).
  Value eight = kb.index(8);
  kb.ifThen(kb.eq(kb.rem(e, eight), zero), [&] {
    Type i32 = b.getI32Type();
    Value byte = arith::ConstantOp::create(b, b.getI32IntegerAttr(0));
    SmallVector<Value> byteFlags = kb.loadVector(flags, {e}, 4);
    llvm::append_range(byteFlags,
                       kb.loadVector(flags, {kb.add(e, kb.index(4))}, 4));
    for (int64_t i = 0; i < 8; ++i)
      byte = arith::OrIOp::create(
          b, byte,
          arith::ShLIOp::create(
              b, byteFlags[i],
              arith::ConstantOp::create(b, IntegerAttr::get(i32, i))));
    kb.store(arith::TruncIOp::create(b, b.getI8Type(), byte), indices,
             {token, kb.div(e, eight)});
  });
}

//===----------------------------------------------------------------------===//
// decode attention: partial blocks over (split, KV head, sequence), merge
//===----------------------------------------------------------------------===//

struct PartialKernelShape {
  int64_t dim;
  int64_t group;
  bool keyMasks = false, valueMasks = false; // of the winnowed tokens
};

/// One array of a token source, rows of `width` elements per (head,
/// token): either a memref [B, H, tokens, width] of the op's form, or, in
/// the paged kernel, one sequence's [H, capacity, width] block at a device
/// address read from the sequence table.
struct TokenArray {
  Value memref = {};
  Value address = {}; // !llvm.ptr<1>
  Value capacity = {}, rowWidth = {};
  Type element = {};

  bool present() const { return memref || address; }

  Value width(KernelBuilder &kb) const {
    return memref ? kb.dim(memref, 3) : rowWidth;
  }

  /// The addresses of the first byte of row `first` and one past the last
  /// byte of row `last` of (seq, head), as indices.
  std::pair<Value, Value> rowBytes(KernelBuilder &kb, Value seq, Value head,
                                   Value first, Value last) const {
    ImplicitLocOpBuilder &b = kb.builder();
    Type type =
        memref ? cast<MemRefType>(memref.getType()).getElementType() : element;
    Value bytes = kb.index(type.getIntOrFloatBitWidth() / 8);
    Value base, begin, end; // elements from base
    if (memref) {
      auto metadata = memref::ExtractStridedMetadataOp::create(b, memref);
      ValueRange strides = metadata.getStrides();
      Value row =
          kb.add(metadata.getOffset(),
                 kb.add(kb.mul(seq, strides[0]), kb.mul(head, strides[1])));
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
    return {kb.add(base, kb.mul(begin, bytes)),
            kb.add(base, kb.mul(end, bytes))};
  }

  Value load(KernelBuilder &kb, Value seq, Value head, Value token,
             Value j) const {
    if (memref)
      return kb.load(memref, {seq, head, token, j});
    ImplicitLocOpBuilder &b = kb.builder();
    Value at =
        kb.add(kb.mul(kb.add(kb.mul(head, capacity), token), rowWidth), j);
    Value offset = arith::IndexCastOp::create(b, b.getI64Type(), at);
    Value p = LLVM::GEPOp::create(b, address.getType(), element, address,
                                  ValueRange{offset});
    return LLVM::LoadOp::create(b, element, p);
  }

  /// A row of occupancy bytes as `words` 32-bit words (bit d % 32 of word
  /// d / 32 is dimension d), in one access: every lane of a warp reads the
  /// same row, so the load is a broadcast.
  SmallVector<Value> loadWords(KernelBuilder &kb, Value seq, Value head,
                               Value token, int64_t words) const {
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
      Value p = LLVM::GEPOp::create(b, address.getType(), b.getI8Type(),
                                    address, ValueRange{offset});
      row = LLVM::LoadOp::create(b, wordType, p, alignment);
    }
    SmallVector<Value> result;
    for (int64_t w = 0; w < words; ++w)
      result.push_back(vector::ExtractOp::create(b, row, w));
    return result;
  }
};

/// Where one kind of token lives: winnowed (values + indices or masks) or
/// dense.
struct TokenSource {
  TokenArray keyValues, keyIndices; // no keyIndices: dense keys, width D
  TokenArray valueValues, valueIndices;
  // keyIndices / valueIndices hold occupancy masks, [.., D/8] bytes.
  bool keyMasks = false, valueMasks = false;
};

/// Asks L2 for the rows [first, end) of (seq, head) of every array of
/// `src`, one prefetch per 128-byte line, the lines spread over the block's
/// threads: the token loop's loads then wait for L2 rather than DRAM, and
/// the rows in flight are not bounded by the registers loads need. Every
/// address lies inside the rows.
void prefetchRows(KernelBuilder &kb, const TokenSource &src, Value seq,
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

OwnedSlots ownedSlots(KernelBuilder &kb, ArrayRef<Value> words, Value laneI32,
                      Value belowLane) {
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

/// Sums `values` (a power of two, at most 32 per lane) over the 32 lanes of
/// a warp. While a lane holds fewer values than twice the shuffle distance,
/// plain butterfly steps add every value; then transposing steps halve the
/// values a lane holds, so 32 sums cost 31 shuffles instead of 160. Lane l
/// ends with the sum of value l mod values.size().
Value transposeReduce(KernelBuilder &kb, SmallVector<Value> values,
                      Value lane) {
  ImplicitLocOpBuilder &b = kb.builder();
  Value laneI32 = arith::IndexCastOp::create(b, b.getI32Type(), lane);
  for (int32_t offset = abi::kWarpSize / 2; offset > 0; offset /= 2) {
    auto shuffle = [&](Value v) {
      return gpu::ShuffleOp::create(b, v, offset, abi::kWarpSize,
                                    gpu::ShuffleMode::XOR)
          .getShuffleResult();
    };
    if (static_cast<int64_t>(values.size()) < 2 * offset) {
      for (Value &v : values)
        v = kb.add(v, shuffle(v));
      continue;
    }
    Value bit = arith::AndIOp::create(
        b, laneI32, arith::ConstantOp::create(b, b.getI32IntegerAttr(offset)));
    Value upper = arith::CmpIOp::create(
        b, arith::CmpIPredicate::ne, bit,
        arith::ConstantOp::create(b, b.getI32IntegerAttr(0)));
    size_t half = values.size() / 2;
    SmallVector<Value> next;
    for (size_t i = 0; i < half; ++i) {
      Value lo = values[i], hi = values[i + half];
      Value send = arith::SelectOp::create(b, upper, lo, hi);
      Value keep = arith::SelectOp::create(b, upper, hi, lo);
      next.push_back(kb.add(keep, shuffle(send)));
    }
    values = std::move(next);
  }
  return values.front();
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
void emitTokenLoop(KernelBuilder &kb, const PartialKernelShape &shape,
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
            partial = kb.loop(
                lane, keyCount, warpSize, partial,
                [&](Value j, ValueRange sums) -> SmallVector<Value> {
                  auto [components, keys] =
                      slots(src.keyValues, src.keyIndices, tokens, j);
                  SmallVector<Value> next(sums.begin(), sums.end());
                  for (int64_t u = 0; u < U; ++u) {
                    SmallVector<Value> q =
                        kb.loadVector(qs, {components[u], zero}, G);
                    for (int64_t g = 0; g < G; ++g)
                      next[g * U + u] = kb.fma(sums[g * U + u], q[g], keys[u]);
                  }
                  return next;
                });
          }
          Value total = transposeReduce(kb, partial, lane);
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

/// sum over i in [0, count) of term(i), with `ways` independent partial
/// sums so that that many loads are in flight; out-of-range i are clamped
/// to count - 1 and contribute zero.
Value unrolledSum(KernelBuilder &kb, Value count, int64_t ways,
                  llvm::function_ref<Value(Value)> term) {
  ImplicitLocOpBuilder &b = kb.builder();
  Value zero = kb.index(0), one = kb.index(1);
  Value last = kb.sub(count, one);
  SmallVector<Value> init(ways, kb.f32(0));
  SmallVector<Value> sums = kb.loop(
      zero, count, kb.index(ways), init,
      [&](Value i0, ValueRange partial) -> SmallVector<Value> {
        SmallVector<Value> terms;
        for (int64_t w = 0; w < ways; ++w) {
          Value i = kb.add(i0, kb.index(w));
          Value t = term(kb.minIndex(i, last));
          terms.push_back(
              arith::SelectOp::create(b, kb.ult(i, count), t, kb.f32(0)));
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

/// What a partial kernel reads and writes, from its arguments; lengths are
/// those of sequence `seq`.
struct PartialInputs {
  Value query, scale, keyRotation;
  TokenSource sparse, buffer;
  Value sparseLength, bufferLength; // index
  Value outMax, outSum, outAcc;
  Value finished;      // [B, H] i32: blocks of each (sequence, head) done
  Value valueRotation; // [H, D, D]; absent with rotated_output
  Value out;           // [B, H*G, D]
};

/// The merge of every partial block of (sequence `seq`, KV head `head`)
/// into `in.out`, run by the block that finished last (all of a block's
/// threads): the splits' weights, the weighted sum of their accumulators
/// and, unless the output stays rotated, the product with R_Vᵀ. `qs`,
/// `scores` and `state` are the partial kernel's shared buffers, free again.
void emitMerge(KernelBuilder &kb, const PartialKernelShape &shape,
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
          Value y = transposeReduce(kb, partial, lane);
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

/// The partial kernel: blocks over (split, KV head, sequence); `inputs`
/// says where its arguments put the tokens.
void emitPartialKernel(
    ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
    TypeRange argTypes, const PartialKernelShape &shape,
    llvm::function_ref<PartialInputs(KernelBuilder &, ValueRange, Value)>
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
  KernelBuilder kb(b);
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

struct DecodeOperands {
  Value query, scale, keyRotation, valueRotation;
  Value sparseKeyValues, sparseKeyIndices, sparseValueValues,
      sparseValueIndices;
  Value bufferKeys, bufferValues, sparseLengths, bufferLengths;
  Value result;
};

void emitDecodeAttention(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                         StringRef name, const DecodeOperands &ops,
                         const PartialKernelShape &shape, bool rotateBack) {
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
                      shape, [&](KernelBuilder &kb, ValueRange a, Value seq) {
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
        [&](KernelBuilder &kb, ValueRange a, Value seq) {
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

// Lane l of a warp owns dimensions l, l + 32, ... of a mask-encoded row.
constexpr const char *kMaskDimError =
    "the GPU kernels read occupancy masks as 32-bit words, one dimension per "
    "lane: the head dim must be a multiple of 32; got ";

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
                           /*masks=*/false, dim);
      return success();
    }
    if (auto compress = dyn_cast<CompressOp>(swanOp)) {
      int64_t dim = staticDim(compress.getInput(), 1);
      if (ShapedType::isDynamic(dim))
        return compress.emitError("the GPU kernel needs a static head dim");
      bool masks = compress.getEncoding() == Encoding::mask;
      if (masks && dim % abi::kWarpSize != 0)
        return compress.emitError(kMaskDimError) << dim;
      emitRotateOrCompress(b, kernels, name, *sources, /*compress=*/true, masks,
                           dim);
      return success();
    }
    auto decode = cast<DecodeAttentionOp>(swanOp);
    int64_t dim = staticDim(decode.getQuery(), 2);
    if (ShapedType::isDynamic(dim))
      return decode.emitError("the GPU kernel needs a static head dim");
    PartialKernelShape shape{dim, static_cast<int64_t>(decode.getGroupSize()),
                             decode.getKeyEncoding() == Encoding::mask,
                             decode.getValueEncoding() == Encoding::mask};
    if ((shape.keyMasks || shape.valueMasks) && dim % abi::kWarpSize != 0)
      return decode.emitError(kMaskDimError) << dim;
    int64_t group = shape.group;
    // The warp reductions split a warp's 32 lanes evenly among the group.
    if (!llvm::isPowerOf2_64(group) || group > abi::kWarpSize)
      return decode.emitError("the GPU kernels need a group size that is a "
                              "power of two, at most 32; got ")
             << group;
    // Shared memory per partial block: rotated query, chunk scores, one
    // accumulator per warp, running state, whether the block merges.
    int64_t sharedBytes =
        4 * (dim * group + group * abi::kTokensPerChunk +
             abi::kPartialWarps * dim * group + 3 * group + 1);
    if (sharedBytes > 48 * 1024)
      return decode.emitError("D = ")
             << dim << ", G = " << group
             << " needs more than 48 KiB of static shared memory";
    const SmallVector<Value> &s = *sources;
    DecodeOperands ops{s[0], s[1], s[2], s[3], s[4],  s[5], s[6],
                       s[7], s[8], s[9], s[10], s[11], s[12]};
    emitDecodeAttention(b, kernels, name, ops, shape,
                        !decode.getRotatedOutput());
    return success();
  }
};
} // namespace
