//===- KernelModule.cpp - the entry points of one specialisation ----------===//
//
// Each entry point takes memrefs with the identity layout, views its inputs
// as tensors (`restrict`: the runtime never passes aliasing buffers), applies
// one swan op and materialises the results in the output memrefs, so that
// one-shot bufferization writes straight into the caller's buffers.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CPU/KernelModule.h"

#include "swan/Dialect/SwanOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"

using namespace mlir;

namespace {

/// Shapes and element types shared by every entry point of one key.
class EntryPointBuilder {
public:
  EntryPointBuilder(MLIRContext &context, ModuleOp module,
                    const swan::KernelKey &key)
      : builder(&context), loc(UnknownLoc::get(&context)), module(module),
        headDim(key.headDim), groupSize(key.groupSize),
        f32(builder.getF32Type()), i8(builder.getIntegerType(8)),
        storage(key.storage == swan::StorageType::F16
                    ? Type(builder.getF16Type())
                    : Type(builder.getF32Type())),
        quantised(key.winnowed == swan::WinnowedStorage::Int8),
        winnowed(quantised ? i8 : storage) {}

  /// Builds every entry point, or only the one named `only`; false when
  /// no entry point has that name.
  bool build(llvm::StringRef only) {
    using swan::Encoding;
    namespace entry = swan::entry;
    this->only = only;
    buildRotate(entry::kRotate);
    buildCompress(entry::kCompress, Encoding::indices);
    buildCompress(entry::kCompressMask, Encoding::mask);
    buildPartial(entry::kPartialSparse, true, Encoding::indices,
                 Encoding::indices);
    buildPartial(entry::kPartialSparseMask, true, Encoding::indices,
                 Encoding::mask);
    buildPartial(entry::kPartialSparseKeyMask, true, Encoding::mask,
                 Encoding::indices);
    buildPartial(entry::kPartialSparseMasks, true, Encoding::mask,
                 Encoding::mask);
    buildPartial(entry::kPartialDense, false, Encoding::indices,
                 Encoding::indices);
    buildMerge(entry::kMerge, /*rotateBack=*/true);
    buildMerge(entry::kMergeRotated, /*rotateBack=*/false);
    return found;
  }

private:
  static constexpr int64_t kDyn = ShapedType::kDynamic;

  MemRefType memref(ArrayRef<int64_t> shape, Type element) {
    return MemRefType::get(shape, element);
  }

  /// Whether `name` is to be built (and then that it was found).
  bool wanted(llvm::StringRef name) {
    bool yes = only.empty() || only == name;
    found |= yes;
    return yes;
  }

  /// Creates `name` with the C interface and positions the builder in it.
  func::FuncOp startFunction(StringRef name, TypeRange arguments) {
    builder.setInsertionPointToEnd(module.getBody());
    auto function = func::FuncOp::create(
        builder, loc, name, builder.getFunctionType(arguments, {}));
    function->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(),
                      builder.getUnitAttr());
    builder.setInsertionPointToStart(function.addEntryBlock());
    return function;
  }

  /// A read-only tensor view of a memref argument.
  Value asTensor(Value buffer) {
    auto type = cast<MemRefType>(buffer.getType());
    auto tensorType =
        RankedTensorType::get(type.getShape(), type.getElementType());
    return bufferization::ToTensorOp::create(builder, loc, tensorType, buffer,
                                             /*restrict=*/true,
                                             /*writable=*/false);
  }

  void storeInto(Value tensor, Value buffer) {
    bufferization::MaterializeInDestinationOp::create(
        builder, loc, /*result=*/Type(), tensor, buffer, /*restrict=*/true,
        /*writable=*/true);
  }

  void finish() { func::ReturnOp::create(builder, loc); }

  void buildRotate(const char *name) {
    if (!wanted(name))
      return;
    MemRefType rows = memref({kDyn, headDim}, f32);
    MemRefType rotation = memref({headDim, headDim}, f32);
    func::FuncOp function = startFunction(name, {rows, rotation, rows});
    auto args = function.getArguments();
    Value result = swan::RotateOp::create(
        builder, loc, RankedTensorType::get({kDyn, headDim}, f32),
        asTensor(args[0]), asTensor(args[1]));
    storeInto(result, args[2]);
    finish();
  }

  /// Positions per row: k indices, or one mask byte per 8 dimensions.
  int64_t positionsPerRow(swan::Encoding encoding) const {
    return encoding == swan::Encoding::mask ? (headDim + 7) / 8 : kDyn;
  }

  void buildCompress(const char *name, swan::Encoding encoding) {
    if (!wanted(name))
      return;
    MemRefType rows = memref({kDyn, headDim}, f32);
    MemRefType rotation = memref({headDim, headDim}, f32);
    int64_t positions = positionsPerRow(encoding);
    SmallVector<Type> arguments = {rows, rotation, builder.getIndexType(),
                                   memref({kDyn, kDyn}, winnowed),
                                   memref({kDyn, positions}, i8)};
    if (quantised)
      arguments.push_back(memref({kDyn}, f32));
    func::FuncOp function = startFunction(name, arguments);
    auto args = function.getArguments();
    auto compress = swan::CompressOp::create(
        builder, loc, RankedTensorType::get({kDyn, kDyn}, winnowed),
        RankedTensorType::get({kDyn, positions}, i8),
        quantised ? RankedTensorType::get({kDyn}, f32) : Type(),
        asTensor(args[0]), asTensor(args[1]), args[2], encoding);
    storeInto(compress.getValues(), args[3]);
    storeInto(compress.getIndices(), args[4]);
    if (quantised)
      storeInto(compress.getScales(), args[5]);
    finish();
  }

  /// partial_sparse* (winnowed keys and values in `keyEncoding` and
  /// `valueEncoding`, each followed by its scales when int8) or
  /// partial_dense (rotated rows); each returns max, sum and the rotated
  /// accumulator of one block.
  void buildPartial(const char *name, bool sparse, swan::Encoding keyEncoding,
                    swan::Encoding valueEncoding) {
    if (!wanted(name))
      return;
    MemRefType query = memref({groupSize, headDim}, f32);
    MemRefType perHead = memref({groupSize}, f32);
    SmallVector<Type> arguments = {query, f32};
    bool scales = sparse && quantised;
    // Per operand: values, positions (winnowed), scales (int8).
    for (swan::Encoding encoding : {keyEncoding, valueEncoding}) {
      if (!sparse) {
        arguments.push_back(memref({kDyn, headDim}, storage));
        continue;
      }
      arguments.append({memref({kDyn, kDyn}, winnowed),
                        memref({kDyn, positionsPerRow(encoding)}, i8)});
      if (scales)
        arguments.push_back(memref({kDyn}, f32));
    }
    arguments.append({perHead, perHead, query});
    func::FuncOp function = startFunction(name, arguments);
    auto args = function.getArguments();
    unsigned next = 2;
    auto operand = [&](bool present) {
      return present ? asTensor(args[next++]) : Value();
    };
    Value keyValues = operand(true);
    Value keyIndices = operand(sparse);
    Value keyScales = operand(scales);
    Value valueValues = operand(true);
    Value valueIndices = operand(sparse);
    Value valueScales = operand(scales);
    auto perHeadTensor = RankedTensorType::get({groupSize}, f32);
    auto partial = swan::PartialAttentionOp::create(
        builder, loc, perHeadTensor, perHeadTensor,
        RankedTensorType::get({groupSize, headDim}, f32), asTensor(args[0]),
        args[1], keyValues, keyIndices, keyScales, valueValues, valueIndices,
        valueScales, keyEncoding, valueEncoding);
    unsigned firstOutput = next;
    storeInto(partial.getMax(), args[firstOutput]);
    storeInto(partial.getSum(), args[firstOutput + 1]);
    storeInto(partial.getAccumulator(), args[firstOutput + 2]);
    finish();
  }

  void buildMerge(const char *name, bool rotateBack) {
    if (!wanted(name))
      return;
    MemRefType perBlock = memref({kDyn, groupSize}, f32);
    MemRefType accumulators = memref({kDyn, groupSize, headDim}, f32);
    MemRefType out = memref({groupSize, headDim}, f32);
    SmallVector<Type> arguments = {perBlock, perBlock, accumulators};
    if (rotateBack)
      arguments.push_back(memref({headDim, headDim}, f32));
    arguments.push_back(out);
    func::FuncOp function = startFunction(name, arguments);
    auto args = function.getArguments();
    Value rotation = rotateBack ? asTensor(args[3]) : Value();
    Value result = swan::MergeAttentionOp::create(
        builder, loc, RankedTensorType::get({groupSize, headDim}, f32),
        asTensor(args[0]), asTensor(args[1]), asTensor(args[2]), rotation);
    storeInto(result, args.back());
    finish();
  }

  OpBuilder builder;
  Location loc;
  ModuleOp module;
  int64_t headDim;
  int64_t groupSize;
  Type f32, i8, storage;
  /// SWAN-Q8: winnowed values are int8 with a scale per row.
  bool quantised;
  Type winnowed;
  llvm::StringRef only;
  bool found = false;
};

} // namespace

llvm::Expected<OwningOpRef<ModuleOp>>
swan::buildKernelModule(MLIRContext &context, const KernelKey &key,
                        llvm::StringRef only) {
  if (key.headDim < 1 || key.groupSize < 1)
    return llvm::createStringError(
        "kernel key: headDim and groupSize must be positive (got D = %d, "
        "G = %d)",
        key.headDim, key.groupSize);
  context.loadDialect<swan::SwanDialect, func::FuncDialect, arith::ArithDialect,
                      bufferization::BufferizationDialect,
                      memref::MemRefDialect>();

  OwningOpRef<ModuleOp> module = ModuleOp::create(UnknownLoc::get(&context));
  if (!EntryPointBuilder(context, *module, key).build(only))
    return llvm::createStringError("kernel module: no entry point is named '" +
                                   only + "'");

  // Collect the verifier's diagnostics so that the error says what is wrong.
  std::string diagnostics;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diagnostic) {
    diagnostics += diagnostic.str() + "\n";
    return success();
  });
  if (failed(verify(*module)))
    return llvm::createStringError("kernel module does not verify: " +
                                   diagnostics);
  return std::move(module);
}
