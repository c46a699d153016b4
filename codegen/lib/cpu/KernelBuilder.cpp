//===- KernelBuilder.cpp - emits scf loops and vector code ----------------===//

#include "KernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/TypeUtilities.h"

using namespace mlir;
using namespace swan;

Value KernelBuilder::index(int64_t value) {
  return create<arith::ConstantIndexOp>(value);
}

Value KernelBuilder::f32(double value) {
  return create<arith::ConstantFloatOp>(b.getF32Type(), APFloat(float(value)));
}

Value KernelBuilder::i32(int64_t value) {
  return create<arith::ConstantIntOp>(b.getI32Type(), value);
}

Value KernelBuilder::negativeInfinity() {
  return create<arith::ConstantFloatOp>(
      b.getF32Type(),
      APFloat::getInf(APFloat::IEEEsingle(), /*Negative=*/true));
}

VectorType KernelBuilder::vectorOf(int64_t lanes, Type elementType) {
  return VectorType::get({lanes}, elementType);
}

Value KernelBuilder::splat(Value scalar, int64_t lanes) {
  return create<vector::BroadcastOp>(vectorOf(lanes, scalar.getType()), scalar);
}

Value KernelBuilder::laneNumbers(int64_t lanes, int64_t first) {
  SmallVector<int32_t> numbers;
  for (int64_t lane = 0; lane < lanes; ++lane)
    numbers.push_back(int32_t(first + lane));
  auto type = vectorOf(lanes, b.getI32Type());
  return create<arith::ConstantOp>(
      type, DenseElementsAttr::get(type, ArrayRef<int32_t>(numbers)));
}

Value KernelBuilder::prefixMask(Value count, int64_t lanes) {
  return create<vector::CreateMaskOp>(vectorOf(lanes, b.getI1Type()),
                                      ValueRange{count});
}

Value KernelBuilder::zeroVector(int64_t lanes, Type elementType) {
  VectorType type = vectorOf(lanes, elementType);
  return create<arith::ConstantOp>(type, b.getZeroAttr(type));
}

Value KernelBuilder::view(Value tensor) {
  auto type = cast<RankedTensorType>(tensor.getType());
  SmallVector<int64_t> strides(type.getRank(), ShapedType::kDynamic);
  // A unit-stride innermost dimension lets LLVM fold the addressing. When
  // that dimension has static size 1, a rank-reducing subview may keep
  // another unit dimension with a larger stride: leave the stride dynamic
  // so that the view stays a cast, never a copy.
  if (type.getShape().back() != 1)
    strides.back() = 1;
  auto layout =
      StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic, strides);
  auto memrefType =
      MemRefType::get(type.getShape(), type.getElementType(), layout);
  return create<bufferization::ToBufferOp>(memrefType, tensor,
                                           /*read_only=*/true);
}

Value KernelBuilder::scratch(ArrayRef<int64_t> shape, Type elementType) {
  // 64-byte alignment: whole cache lines and aligned 512-bit accesses.
  return create<memref::AllocaOp>(MemRefType::get(shape, elementType),
                                  b.getI64IntegerAttr(64));
}

Value KernelBuilder::emptyTensor(RankedTensorType type, ArrayRef<Value> sizes) {
  SmallVector<Value> dynamicSizes;
  for (int64_t d = 0; d < type.getRank(); ++d)
    if (type.isDynamicDim(d))
      dynamicSizes.push_back(sizes[d]);
  return create<tensor::EmptyOp>(type.getShape(), type.getElementType(),
                                 dynamicSizes);
}

Value KernelBuilder::writeToTensor(Value vector, Value tensor,
                                   ValueRange indices, bool inBounds) {
  return create<vector::TransferWriteOp>(vector, tensor, indices,
                                         ArrayRef<bool>{inBounds})
      .getResult();
}

Value KernelBuilder::convertFloat(Value value, Type elementType) {
  Type from = getElementTypeOrSelf(value.getType());
  if (from == elementType)
    return value;
  Type to = elementType;
  if (auto vectorType = dyn_cast<VectorType>(value.getType()))
    to = vectorType.clone(elementType);
  if (isa<IntegerType>(from))
    return create<arith::SIToFPOp>(to, value);
  if (from.getIntOrFloatBitWidth() < elementType.getIntOrFloatBitWidth())
    return create<arith::ExtFOp>(to, value);
  return create<arith::TruncFOp>(to, value);
}

Value KernelBuilder::loadF32(Value memref, ValueRange indices, int64_t lanes,
                             Value mask) {
  Type elementType = cast<MemRefType>(memref.getType()).getElementType();
  VectorType type = vectorOf(lanes, elementType);
  Value loaded;
  if (mask) {
    Value zero = create<arith::ConstantOp>(type, b.getZeroAttr(type));
    loaded = create<vector::MaskedLoadOp>(Type(type), memref, indices, mask,
                                          zero, IntegerAttr());
  } else {
    loaded = create<vector::LoadOp>(type, memref, indices);
  }
  return convertFloat(loaded, b.getF32Type());
}

Value KernelBuilder::loadIndices(Value memref, ValueRange indices,
                                 int64_t lanes, Value mask) {
  Type elementType = cast<MemRefType>(memref.getType()).getElementType();
  VectorType type = vectorOf(lanes, elementType);
  Value zero = create<arith::ConstantOp>(type, b.getZeroAttr(type));
  Value loaded = create<vector::MaskedLoadOp>(Type(type), memref, indices, mask,
                                              zero, IntegerAttr());
  VectorType i32Type = vectorOf(lanes, b.getI32Type());
  unsigned width = elementType.getIntOrFloatBitWidth();
  // Unsigned: an i8 index addresses dimensions 0..255.
  if (width < 32)
    return create<arith::ExtUIOp>(i32Type, loaded);
  if (width > 32)
    return create<arith::TruncIOp>(i32Type, loaded);
  return loaded;
}

void KernelBuilder::storeConverted(Value vector, Value memref,
                                   ValueRange indices) {
  Type elementType = cast<MemRefType>(memref.getType()).getElementType();
  create<vector::StoreOp>(convertFloat(vector, elementType), memref, indices);
}

void KernelBuilder::prefetchRow(Value rows, Value row) {
  auto type = cast<MemRefType>(rows.getType());
  int64_t perLine = 512 / type.getElementTypeBitWidth();
  Value length = create<memref::DimOp>(rows, int64_t(1));
  loop(index(0), length, index(perLine), [&](Value at) {
    create<memref::PrefetchOp>(rows, ValueRange{row, at}, /*isWrite=*/false,
                               /*localityHint=*/3, /*isDataCache=*/true);
  });
}

Value KernelBuilder::fma(Value x, Value y, Value z) {
  if (isa<VectorType>(x.getType()))
    return create<vector::FMAOp>(x, y, z);
  return create<math::FmaOp>(x, y, z);
}

Value KernelBuilder::add(Value x, Value y) {
  return create<arith::AddFOp>(x, y);
}
Value KernelBuilder::sub(Value x, Value y) {
  return create<arith::SubFOp>(x, y);
}
Value KernelBuilder::mul(Value x, Value y) {
  return create<arith::MulFOp>(x, y);
}

Value KernelBuilder::sum(Value vector) {
  return create<vector::ReductionOp>(vector::CombiningKind::ADD, vector);
}

Value KernelBuilder::maximum(Value vector) {
  return create<vector::ReductionOp>(vector::CombiningKind::MAXIMUMF, vector);
}

Value KernelBuilder::exp(Value value) { return create<math::ExpOp>(value); }

SmallVector<Value> KernelBuilder::loop(Value lower, Value upper, Value step,
                                       ValueRange inits, LoopBody body) {
  auto forOp = create<scf::ForOp>(lower, upper, step, inits);
  Block *block = forOp.getBody();
  // Without carried values the builder adds an empty yield; replace it.
  if (!block->empty() && block->back().hasTrait<OpTrait::IsTerminator>())
    block->back().erase();
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToEnd(block);
    SmallVector<Value> next =
        body(forOp.getInductionVar(), forOp.getRegionIterArgs());
    create<scf::YieldOp>(next);
  }
  return SmallVector<Value>(forOp.getResults());
}

void KernelBuilder::loop(Value lower, Value upper, Value step,
                         function_ref<void(Value iv)> body) {
  loop(lower, upper, step, {}, [&](Value iv, ValueRange) {
    body(iv);
    return SmallVector<Value>();
  });
}

void KernelBuilder::when(Value condition, function_ref<void()> body) {
  auto ifOp = create<scf::IfOp>(condition, /*withElseRegion=*/false);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
  body();
}

void KernelBuilder::when(Value condition, function_ref<void()> body,
                         function_ref<void()> otherwise) {
  auto ifOp = create<scf::IfOp>(condition, /*withElseRegion=*/true);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPoint(ifOp.thenBlock()->getTerminator());
  body();
  b.setInsertionPoint(ifOp.elseBlock()->getTerminator());
  otherwise();
}
