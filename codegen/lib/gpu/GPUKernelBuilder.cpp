//===- GPUKernelBuilder.cpp - one thread's code in a gpu kernel -----------===//

#include "GPUKernelBuilder.h"

#include "swan/Codegen/GPU/KernelABI.h"
#include "swan/Codegen/GPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

#include <limits>

using namespace mlir;
using namespace swan;
namespace abi = swan::gpu_abi;

Value GPUKernelBuilder::index(int64_t v) {
  return arith::ConstantIndexOp::create(b, v);
}
Value GPUKernelBuilder::f32(double v) {
  return arith::ConstantOp::create(b, b.getF32FloatAttr(v));
}
Value GPUKernelBuilder::negInf() {
  return f32(-std::numeric_limits<double>::infinity());
}

Value GPUKernelBuilder::add(Value x, Value y) {
  if (isa<FloatType>(x.getType()))
    return arith::AddFOp::create(b, x, y);
  return arith::AddIOp::create(b, x, y);
}
Value GPUKernelBuilder::sub(Value x, Value y) {
  if (isa<FloatType>(x.getType()))
    return arith::SubFOp::create(b, x, y);
  return arith::SubIOp::create(b, x, y);
}
Value GPUKernelBuilder::mul(Value x, Value y) {
  if (isa<FloatType>(x.getType()))
    return arith::MulFOp::create(b, x, y);
  return arith::MulIOp::create(b, x, y);
}
Value GPUKernelBuilder::div(Value x, Value y) {
  if (isa<FloatType>(x.getType()))
    return arith::DivFOp::create(b, x, y);
  return arith::DivUIOp::create(b, x, y);
}
Value GPUKernelBuilder::rem(Value x, Value y) {
  return arith::RemUIOp::create(b, x, y);
}
Value GPUKernelBuilder::fma(Value acc, Value x, Value y) {
  return add(acc, mul(x, y));
}
Value GPUKernelBuilder::minIndex(Value x, Value y) {
  return arith::MinUIOp::create(b, x, y);
}
// arith.maxnumf would become a libdevice call (__nv_fmaxf).
Value GPUKernelBuilder::maxF(Value x, Value y) {
  Value greater = arith::CmpFOp::create(b, arith::CmpFPredicate::OGT, x, y);
  return arith::SelectOp::create(b, greater, x, y);
}
// convert-gpu-to-nvvm turns math.absf/math.exp2 (and their llvm.intr
// forms) into libdevice calls; these forms need no libdevice, so the PTX
// is complete without a CUDA toolkit.
Value GPUKernelBuilder::absF(Value x) {
  Value negative =
      arith::CmpFOp::create(b, arith::CmpFPredicate::OLT, x, f32(0));
  return arith::SelectOp::create(b, negative, arith::NegFOp::create(b, x), x);
}
Value GPUKernelBuilder::exp2(Value x) {
  return LLVM::CallIntrinsicOp::create(
             b, b.getF32Type(), b.getStringAttr("llvm.nvvm.ex2.approx.f32"),
             ValueRange{x})
      .getResult(0);
}
Value GPUKernelBuilder::ult(Value x, Value y) {
  return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, x, y);
}
Value GPUKernelBuilder::eq(Value x, Value y) {
  return arith::CmpIOp::create(b, arith::CmpIPredicate::eq, x, y);
}

Value GPUKernelBuilder::threadId() {
  return gpu::ThreadIdOp::create(b, gpu::Dimension::x);
}
Value GPUKernelBuilder::blockId(gpu::Dimension d) {
  return gpu::BlockIdOp::create(b, d);
}
Value GPUKernelBuilder::gridDim(gpu::Dimension d) {
  return gpu::GridDimOp::create(b, d);
}
void GPUKernelBuilder::barrier() { gpu::BarrierOp::create(b); }
void GPUKernelBuilder::prefetchL2(Value address) {
  LLVM::InlineAsmOp::create(
      b, Type(),
      ValueRange{arith::IndexCastOp::create(b, b.getI64Type(), address)},
      kPrefetchL2Ptx, "l", /*has_side_effects=*/true,
      /*is_align_stack=*/false, LLVM::tailcallkind::TailCallKind::None,
      LLVM::AsmDialectAttr(), ArrayAttr());
}
void GPUKernelBuilder::warpSync() {
  NVVM::SyncWarpOp::create(
      b, arith::ConstantOp::create(b, b.getI32IntegerAttr(-1)));
}

Value GPUKernelBuilder::warpReduce(Value v, bool isMax) {
  for (int32_t offset = abi::kWarpSize / 2; offset > 0; offset /= 2) {
    Value other = gpu::ShuffleOp::create(b, v, offset, abi::kWarpSize,
                                         gpu::ShuffleMode::XOR)
                      .getShuffleResult();
    v = isMax ? maxF(v, other) : add(v, other);
  }
  return v;
}

Value GPUKernelBuilder::transposeReduce(SmallVector<Value> values, Value lane) {
  Value laneI32 = arith::IndexCastOp::create(b, b.getI32Type(), lane);
  for (int32_t offset = abi::kWarpSize / 2; offset > 0; offset /= 2) {
    auto shuffle = [&](Value v) {
      return gpu::ShuffleOp::create(b, v, offset, abi::kWarpSize,
                                    gpu::ShuffleMode::XOR)
          .getShuffleResult();
    };
    if (static_cast<int64_t>(values.size()) < 2 * offset) {
      for (Value &v : values)
        v = add(v, shuffle(v));
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
      next.push_back(add(keep, shuffle(send)));
    }
    values = std::move(next);
  }
  return values.front();
}

Value GPUKernelBuilder::load(Value memref, ValueRange indices) {
  return memref::LoadOp::create(b, memref, indices);
}
void GPUKernelBuilder::store(Value v, Value memref, ValueRange indices) {
  memref::StoreOp::create(b, v, memref, indices);
}
SmallVector<Value>
GPUKernelBuilder::loadVector(Value memref, ValueRange indices, int64_t count) {
  Type element = cast<MemRefType>(memref.getType()).getElementType();
  auto type = VectorType::get({count}, element);
  Value v =
      vector::LoadOp::create(b, type, memref, indices, /*nontemporal=*/false,
                             llvm::MaybeAlign(vectorAlignment(count, element)));
  SmallVector<Value> elements;
  for (int64_t i = 0; i < count; ++i)
    elements.push_back(vector::ExtractOp::create(b, v, i));
  return elements;
}
void GPUKernelBuilder::storeVector(ArrayRef<Value> elements, Value memref,
                                   ValueRange indices) {
  int64_t count = elements.size();
  auto type = VectorType::get({count}, b.getF32Type());
  Value v = vector::FromElementsOp::create(b, type, elements);
  vector::StoreOp::create(
      b, v, memref, indices, /*nontemporal=*/false,
      llvm::MaybeAlign(vectorAlignment(count, b.getF32Type())));
}
uint64_t GPUKernelBuilder::vectorAlignment(int64_t count, Type element) {
  return std::min<uint64_t>(
      16, llvm::PowerOf2Ceil(count * element.getIntOrFloatBitWidth() / 8));
}

Value GPUKernelBuilder::dim(Value memref, int64_t i) {
  return memref::DimOp::create(b, memref, i);
}

Value GPUKernelBuilder::toF32(Value v) {
  Type f32Type = b.getF32Type();
  if (v.getType() == f32Type)
    return v;
  if (cast<FloatType>(v.getType()).getWidth() < 32)
    return arith::ExtFOp::create(b, f32Type, v);
  return arith::TruncFOp::create(b, f32Type, v);
}
Value GPUKernelBuilder::fromF32(Value v, Type to) {
  if (to == v.getType())
    return v;
  if (cast<FloatType>(to).getWidth() < 32)
    return arith::TruncFOp::create(b, to, v);
  return arith::ExtFOp::create(b, to, v);
}
Value GPUKernelBuilder::toIndex(Value v) {
  if (v.getType().isIndex())
    return v;
  if (v.getType().getIntOrFloatBitWidth() < 64)
    v = arith::ExtUIOp::create(b, b.getI64Type(), v);
  return arith::IndexCastOp::create(b, b.getIndexType(), v);
}
Value GPUKernelBuilder::fromIndex(Value v, Type to) {
  Value i64 = arith::IndexCastOp::create(b, b.getI64Type(), v);
  if (to.getIntOrFloatBitWidth() == 64)
    return i64;
  return arith::TruncIOp::create(b, to, i64);
}

void GPUKernelBuilder::loop(Value lb, Value ub, Value step,
                            llvm::function_ref<void(Value)> body) {
  scf::ForOp::create(b, lb, ub, step, ValueRange{},
                     [&](OpBuilder &, Location, Value iv, ValueRange) {
                       body(iv);
                       scf::YieldOp::create(b);
                     });
}
SmallVector<Value> GPUKernelBuilder::loop(
    Value lb, Value ub, Value step, ValueRange init,
    llvm::function_ref<SmallVector<Value>(Value, ValueRange)> body) {
  auto op = scf::ForOp::create(
      b, lb, ub, step, init,
      [&](OpBuilder &, Location, Value iv, ValueRange iters) {
        scf::YieldOp::create(b, body(iv, iters));
      });
  return SmallVector<Value>(op.getResults());
}
void GPUKernelBuilder::ifThen(Value cond, llvm::function_ref<void()> then) {
  auto op = scf::IfOp::create(b, cond, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(op.thenBlock()->getTerminator());
  then();
}
void GPUKernelBuilder::ifThenElse(Value cond, llvm::function_ref<void()> then,
                                  llvm::function_ref<void()> otherwise) {
  auto op = scf::IfOp::create(b, cond, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(op.thenBlock()->getTerminator());
  then();
  b.setInsertionPoint(op.elseBlock()->getTerminator());
  otherwise();
}

MemRefType swan::workgroupMemRef(MLIRContext *ctx, ArrayRef<int64_t> shape,
                                 Type element) {
  return MemRefType::get(
      shape, element, MemRefLayoutAttrInterface{},
      gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup));
}

gpu::GPUFuncOp swan::createKernel(ImplicitLocOpBuilder &b,
                                  gpu::GPUModuleOp module, StringRef name,
                                  TypeRange arguments, TypeRange workgroup,
                                  int64_t blockSize) {
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

void swan::enterKernel(ImplicitLocOpBuilder &b, gpu::GPUFuncOp kernel) {
  b.setInsertionPoint(kernel.getBody().front().getTerminator());
}
