//===- KernelsToHost.cpp - gpu kernels as host code for the emulator ------===//
//
// The stand-in CUDA driver of the tests runs the generated kernels on the
// host, one fiber per GPU thread (test/lib/KernelEmulator.cpp), so that
// their logic and the runtime's launches of them are tested on machines
// without a GPU. These two passes compile the same gpu-dialect kernels the
// NVVM pipeline compiles; only the GPU-only operations differ, and each is
// mapped here or rejected. The contract with the emulator is
// swan/Codegen/GPU/EmulatorABI.h.
//
//===----------------------------------------------------------------------===//

#include "swan/Codegen/GPU/EmulatorABI.h"
#include "swan/Codegen/GPU/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Interfaces/DataLayoutInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace swan {
#define GEN_PASS_DEF_SWANGPUKERNELSTOHOST
#define GEN_PASS_DEF_SWANEMITKERNELLAUNCHERS
#include "swan/Codegen/GPU/Passes.h.inc"
} // namespace swan

using namespace mlir;
using namespace swan;
namespace abi = swan::emulator_abi;

namespace {

/// Where the first pass leaves a kernel's gpu.module name and known block
/// size for the second.
constexpr const char *kKernelNameAttr = "swan.emulated_kernel";
constexpr const char *kBlockSizeAttr = "swan.known_block_size";
constexpr const char *kSharedAttr = "swan.shared_memory";

/// On the host all memory is one address space.
Type hostType(Type type) {
  if (isa<LLVM::LLVMPointerType>(type))
    return LLVM::LLVMPointerType::get(type.getContext());
  auto memref = dyn_cast<MemRefType>(type);
  if (!memref || !memref.getMemorySpace())
    return type;
  return MemRefType::get(memref.getShape(), memref.getElementType(),
                         memref.getLayout());
}

/// Calls into the emulator, declaring each entry point once per module.
class EmulatorCalls {
public:
  explicit EmulatorCalls(ModuleOp module) : module(module) {}

  Value call(OpBuilder &b, Location loc, StringRef name, ValueRange args,
             TypeRange results) {
    auto callee = module.lookupSymbol<func::FuncOp>(name);
    if (!callee) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(module.getBody());
      callee = func::FuncOp::create(
          b, loc, name,
          b.getFunctionType(ValueRange(args).getTypes(), results));
      callee.setPrivate();
    }
    auto op = func::CallOp::create(b, loc, callee, args);
    return results.empty() ? Value() : op.getResult(0);
  }

  /// gpu.thread_id and its kin: `int64_t f(int32_t dimension)`.
  Value id(OpBuilder &b, Location loc, StringRef name, gpu::Dimension d) {
    Value dim =
        arith::ConstantIntOp::create(b, loc, static_cast<int64_t>(d), 32);
    Value id = call(b, loc, name, dim, b.getI64Type());
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), id);
  }

  /// The address of a NUL-terminated constant string, one global per text.
  Value text(OpBuilder &b, Location loc, StringRef value) {
    LLVM::GlobalOp &global = texts[value];
    if (!global) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(module.getBody());
      std::string bytes = (value + StringRef("\0", 1)).str();
      global = LLVM::GlobalOp::create(
          b, loc, LLVM::LLVMArrayType::get(b.getI8Type(), bytes.size()),
          /*isConstant=*/true, LLVM::Linkage::Private,
          "swan_emu_text" + std::to_string(texts.size()),
          b.getStringAttr(bytes));
    }
    return LLVM::AddressOfOp::create(b, loc, global);
  }

private:
  ModuleOp module;
  llvm::StringMap<LLVM::GlobalOp> texts;
};

abi::ShuffleMode shuffleMode(gpu::ShuffleMode mode) {
  switch (mode) {
  case gpu::ShuffleMode::XOR:
    return abi::kXor;
  case gpu::ShuffleMode::UP:
    return abi::kUp;
  case gpu::ShuffleMode::DOWN:
    return abi::kDown;
  case gpu::ShuffleMode::IDX:
    return abi::kIdx;
  }
  llvm_unreachable("unknown shuffle mode");
}

/// Replaces one GPU-only operation by its host form; fails (with a
/// diagnostic) on one the emulator cannot run.
LogicalResult toHost(Operation *op, EmulatorCalls &emulator) {
  OpBuilder b(op);
  Location loc = op->getLoc();
  auto replaceId = [&](StringRef name, gpu::Dimension d) {
    op->replaceAllUsesWith(ValueRange{emulator.id(b, loc, name, d)});
    op->erase();
    return success();
  };
  if (auto o = dyn_cast<gpu::ThreadIdOp>(op))
    return replaceId(abi::kThreadId, o.getDimension());
  if (auto o = dyn_cast<gpu::BlockIdOp>(op))
    return replaceId(abi::kBlockId, o.getDimension());
  if (auto o = dyn_cast<gpu::BlockDimOp>(op))
    return replaceId(abi::kBlockDim, o.getDimension());
  if (auto o = dyn_cast<gpu::GridDimOp>(op))
    return replaceId(abi::kGridDim, o.getDimension());
  if (isa<gpu::BarrierOp>(op)) {
    emulator.call(b, loc, abi::kBarrier, {}, {});
    op->erase();
    return success();
  }
  if (auto sync = dyn_cast<NVVM::SyncWarpOp>(op)) {
    emulator.call(b, loc, abi::kSyncWarp, sync.getMask(), {});
    op->erase();
    return success();
  }
  // Blocks run one after another on one host thread, so a fence orders
  // nothing here; the emulator records it for its handover check. A fence
  // within a block or cluster hands nothing to other blocks.
  if (auto fence = dyn_cast<NVVM::MembarOp>(op)) {
    if (fence.getScope() == NVVM::MemScopeKind::GPU ||
        fence.getScope() == NVVM::MemScopeKind::SYS)
      emulator.call(b, loc, abi::kFence, {}, {});
    op->erase();
    return success();
  }
  if (auto shuffle = dyn_cast<gpu::ShuffleOp>(op)) {
    Type type = shuffle.getValue().getType();
    if (!type.isIntOrFloat() || type.getIntOrFloatBitWidth() != 32)
      return op->emitError("the kernel emulator shuffles 32-bit values only");
    Type i32 = b.getI32Type();
    Value mode = arith::ConstantIntOp::create(
        b, loc, shuffleMode(shuffle.getMode()), 32);
    Value bits = shuffle.getValue();
    if (type != i32)
      bits = arith::BitcastOp::create(b, loc, i32, bits);
    Value result = emulator.call(
        b, loc, abi::kShuffle,
        {bits, shuffle.getOffset(), shuffle.getWidth(), mode}, i32);
    if (type != i32)
      result = arith::BitcastOp::create(b, loc, type, result);
    shuffle.getShuffleResult().replaceAllUsesWith(result);
    if (!shuffle.getValid().use_empty()) {
      Value valid =
          emulator.call(b, loc, abi::kShuffleValid,
                        {shuffle.getOffset(), shuffle.getWidth(), mode}, i32);
      Value zero = arith::ConstantIntOp::create(b, loc, 0, 32);
      shuffle.getValid().replaceAllUsesWith(
          arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne, valid, zero));
    }
    op->erase();
    return success();
  }
  if (auto intrinsic = dyn_cast<LLVM::CallIntrinsicOp>(op)) {
    // ex2.approx's 2 ulp are below what any test resolves.
    if (intrinsic.getIntrin() == "llvm.nvvm.ex2.approx.f32") {
      op->replaceAllUsesWith(
          ValueRange{math::Exp2Op::create(b, loc, intrinsic.getArgs()[0])});
      op->erase();
      return success();
    }
    return op->emitError("the kernel emulator cannot run intrinsic ")
           << intrinsic.getIntrin();
  }
  // A prefetch reads its byte: an address outside every buffer then faults
  // here (the stand-in driver fences its allocations with inaccessible
  // pages) instead of passing unseen.
  if (auto inlinePtx = dyn_cast<LLVM::InlineAsmOp>(op)) {
    if (inlinePtx.getAsmString() != kPrefetchL2Ptx)
      return op->emitError("the kernel emulator cannot run inline PTX ")
             << inlinePtx.getAsmString();
    Value address = LLVM::IntToPtrOp::create(
        b, loc, LLVM::LLVMPointerType::get(b.getContext()),
        inlinePtx.getOperands()[0]);
    LLVM::LoadOp::create(b, loc, b.getI8Type(), address, /*alignment=*/1,
                         /*isVolatile=*/true);
    op->erase();
    return success();
  }
  if (isa<gpu::ReturnOp>(op)) {
    func::ReturnOp::create(b, loc);
    op->erase();
    return success();
  }
  if (isa<gpu::GPUDialect, NVVM::NVVMDialect>(op->getDialect()))
    return op->emitError("the kernel emulator cannot run ") << op->getName();
  for (Value result : op->getResults())
    result.setType(hostType(result.getType()));
  for (Region &region : op->getRegions())
    for (BlockArgument arg : region.getArguments())
      arg.setType(hostType(arg.getType()));
  return success();
}

/// A memref read or write the emulator checks against the memref's shape:
/// its indices, and the shape of the vector it moves (none: one element),
/// which spans the innermost dimensions.
struct Access {
  Value memref;
  ValueRange indices;
  ArrayRef<int64_t> vectorShape;
};

std::optional<Access> accessOf(Operation *op) {
  if (auto o = dyn_cast<memref::LoadOp>(op))
    return Access{o.getMemRef(), o.getIndices(), {}};
  if (auto o = dyn_cast<memref::StoreOp>(op))
    return Access{o.getMemRef(), o.getIndices(), {}};
  if (auto o = dyn_cast<vector::LoadOp>(op))
    return Access{o.getBase(), o.getIndices(), o.getVectorType().getShape()};
  if (auto o = dyn_cast<vector::StoreOp>(op))
    return Access{o.getBase(), o.getIndices(), o.getVectorType().getShape()};
  if (auto o = dyn_cast<memref::AtomicRMWOp>(op))
    return Access{o.getMemref(), o.getIndices(), {}};
  return std::nullopt;
}

/// The elements an access moves: one, or its vector's.
int64_t elementCount(const Access &access) {
  int64_t elements = 1;
  for (int64_t extent : access.vectorShape)
    elements *= extent;
  return elements;
}

bool writes(Operation *op) {
  return isa<memref::StoreOp, vector::StoreOp, memref::AtomicRMWOp>(op);
}

/// Whether `op` reads or writes a memref.
bool touchesMemRef(Operation *op) {
  auto effects = dyn_cast<MemoryEffectOpInterface>(op);
  if (!effects)
    return false;
  SmallVector<MemoryEffects::EffectInstance> instances;
  effects.getEffects(instances);
  return llvm::any_of(instances, [](const MemoryEffects::EffectInstance &e) {
    return isa<MemoryEffects::Read, MemoryEffects::Write>(e.getEffect()) &&
           e.getValue() && isa<MemRefType>(e.getValue().getType());
  });
}

/// A memref a kernel starts from: an argument (global memory) or an
/// attribution.
struct Memory {
  enum Space { Global, Shared, Other };
  std::string name;
  Space space = Other; // Other: private memory, or a view of anything
};

/// Tells the emulator which 32-bit words of shared memory the access at
/// `op` reads or writes, so that it can find two threads' accesses to one
/// word that no barrier or warp sync orders.
LogicalResult reportSharedAccess(Operation *op, const Access &access,
                                 Value description, EmulatorCalls &emulator) {
  auto type = cast<MemRefType>(access.memref.getType());
  if (type.getElementTypeBitWidth() != 32)
    return op->emitError("the kernel emulator race-checks 32-bit shared "
                         "memory only");
  OpBuilder b(op);
  Location loc = op->getLoc();
  auto [strides, offset] = type.getStridesAndOffset();
  Value element = arith::ConstantIndexOp::create(b, loc, offset);
  for (auto [index, stride] : llvm::zip(access.indices, strides))
    element = arith::AddIOp::create(
        b, loc, element,
        arith::MulIOp::create(b, loc, index,
                              arith::ConstantIndexOp::create(b, loc, stride)));
  Value base =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, access.memref);
  Value address = arith::AddIOp::create(
      b, loc, base,
      arith::MulIOp::create(b, loc, element,
                            arith::ConstantIndexOp::create(b, loc, 4)));
  Type i64 = b.getI64Type();
  emulator.call(b, loc, abi::kSharedAccess,
                {arith::IndexCastOp::create(b, loc, i64, address),
                 arith::ConstantIntOp::create(b, loc, elementCount(access), 64),
                 arith::ConstantIntOp::create(b, loc, writes(op), 32),
                 description},
                {});
  return success();
}

/// Tells the emulator which elements of global memory the access at `op`
/// reads or writes, so that it can find a block reading or overwriting
/// what another block wrote with no fence and atomic handing it over.
void reportGlobalAccess(Operation *op, const Access &access, Value description,
                        EmulatorCalls &emulator) {
  OpBuilder b(op);
  Location loc = op->getLoc();
  auto type = cast<MemRefType>(access.memref.getType());
  auto metadata =
      memref::ExtractStridedMetadataOp::create(b, loc, access.memref);
  Value element = metadata.getOffset();
  for (auto [index, stride] : llvm::zip(access.indices, metadata.getStrides()))
    element = arith::AddIOp::create(
        b, loc, element, arith::MulIOp::create(b, loc, index, stride));
  int64_t bytes = DataLayout::closest(op).getTypeSize(type.getElementType());
  Value base =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, access.memref);
  Value address = arith::AddIOp::create(
      b, loc, base,
      arith::MulIOp::create(b, loc, element,
                            arith::ConstantIndexOp::create(b, loc, bytes)));
  emulator.call(b, loc, abi::kGlobalAccess,
                {arith::IndexCastOp::create(b, loc, b.getI64Type(), address),
                 arith::ConstantIntOp::create(b, loc, elementCount(access), 64),
                 arith::ConstantIntOp::create(b, loc, bytes, 32),
                 arith::ConstantIntOp::create(b, loc, writes(op), 32),
                 description},
                {});
}

/// Precedes one access by a check of each index (and, for a vector, of the
/// last element's) against the memref's extent: outside it, the thread
/// calls the emulator, which fails the launch and does not return. The
/// kernels trust their indices (stored ones included); a GPU would read a
/// neighbour, or nothing, without a word. A shared-memory access is then
/// reported to the emulator's race check, a global one to its handover
/// check.
LogicalResult guardAccess(Operation *op, const Access &access,
                          const Memory &memory, EmulatorCalls &emulator) {
  OpBuilder b(op);
  Location loc = op->getLoc();
  int64_t rank = access.indices.size();
  int64_t vectorFrom = rank - access.vectorShape.size();
  std::string description;
  llvm::raw_string_ostream os(description);
  os << op->getName() << " of " << access.memref.getType() << " ("
     << memory.name << ")";
  auto check = [&](int64_t d, Value index, Value size) {
    Value outside =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::uge, index, size);
    auto ifOutside = scf::IfOp::create(b, loc, outside,
                                       /*withElseRegion=*/false);
    OpBuilder then = ifOutside.getThenBodyBuilder();
    Type i64 = then.getI64Type();
    emulator.call(then, loc, abi::kOutOfBounds,
                  {emulator.text(then, loc, description),
                   arith::ConstantIntOp::create(then, loc, d, 32),
                   arith::IndexCastOp::create(then, loc, i64, index),
                   arith::IndexCastOp::create(then, loc, i64, size)},
                  {});
  };
  for (int64_t d = 0; d < rank; ++d) {
    Value index = access.indices[d];
    Value size = memref::DimOp::create(b, loc, access.memref, d);
    check(d, index, size);
    int64_t extent = d < vectorFrom ? 1 : access.vectorShape[d - vectorFrom];
    if (extent > 1) {
      Value last = arith::AddIOp::create(
          b, loc, index, arith::ConstantIndexOp::create(b, loc, extent - 1));
      check(d, last, size);
    }
  }
  switch (memory.space) {
  case Memory::Shared:
    return reportSharedAccess(op, access, emulator.text(b, loc, description),
                              emulator);
  case Memory::Global:
    // An atomic needs no handover; it tells the emulator the block counted
    // itself.
    if (isa<memref::AtomicRMWOp>(op))
      emulator.call(b, loc, abi::kGlobalAtomic, {}, {});
    else
      reportGlobalAccess(op, access, emulator.text(b, loc, description),
                         emulator);
    return success();
  case Memory::Other:
    return success();
  }
  llvm_unreachable("unknown memory space");
}

/// Guards every memref access of `fn`; `memories` names the memrefs the
/// kernel starts from. Fails on an op that touches a memref some other way.
LogicalResult guardAccesses(func::FuncOp fn,
                            const DenseMap<Value, Memory> &memories,
                            EmulatorCalls &emulator) {
  SmallVector<std::pair<Operation *, Access>> accesses;
  WalkResult walk = fn.walk([&](Operation *op) {
    if (std::optional<Access> access = accessOf(op)) {
      accesses.push_back({op, *access});
      return WalkResult::advance();
    }
    if (touchesMemRef(op)) {
      op->emitError("the kernel emulator cannot bounds-check ")
          << op->getName();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  for (auto &[op, access] : accesses) {
    auto memory = memories.find(access.memref);
    if (failed(guardAccess(op, access,
                           memory == memories.end() ? Memory{"a view"}
                                                    : memory->second,
                           emulator)))
      return failure();
  }
  return success();
}

/// One kernel as `func.func @<prefix><name>`, the body of one GPU thread.
LogicalResult convertKernel(gpu::GPUFuncOp kernel, ModuleOp module,
                            StringRef prefix, EmulatorCalls &emulator) {
  MLIRContext *ctx = module.getContext();
  OpBuilder b(ctx);
  b.setInsertionPointToEnd(module.getBody());
  Location loc = kernel.getLoc();
  std::string name = (prefix + kernel.getName()).str();

  SmallVector<Type> inputs;
  for (Type t : kernel.getFunctionType().getInputs())
    inputs.push_back(hostType(t));
  unsigned numInputs = inputs.size();
  unsigned numWorkgroup = kernel.getNumWorkgroupAttributions();
  unsigned numPrivate = kernel.getNumPrivateAttributions();

  auto fn =
      func::FuncOp::create(b, loc, name, FunctionType::get(ctx, inputs, {}));
  fn->setAttr(kKernelNameAttr, b.getStringAttr(kernel.getName()));
  if (auto size = kernel.getKnownBlockSizeAttr())
    fn->setAttr(kBlockSizeAttr, size);
  fn.getBody().takeBody(kernel.getBody());
  Block &entry = fn.getBody().front();

  // The emulator runs one block at a time, so a block's shared memory can
  // be one global per kernel; private memory is each fiber's own stack.
  OpBuilder body = OpBuilder::atBlockBegin(&entry);
  SmallVector<Attribute> shared;
  DenseMap<Value, Memory> memories;
  for (unsigned i = 0; i < numInputs; ++i)
    memories[entry.getArgument(i)] = {"argument " + std::to_string(i),
                                      Memory::Global};
  for (unsigned i = 0; i < numWorkgroup + numPrivate; ++i) {
    BlockArgument arg = entry.getArgument(numInputs + i);
    auto type = cast<MemRefType>(hostType(arg.getType()));
    if (!type.hasStaticShape())
      return kernel.emitError("the kernel emulator needs statically shaped "
                              "attributions");
    Value memory;
    if (i < numWorkgroup) {
      std::string global = name + "_shared" + std::to_string(i);
      memref::GlobalOp::create(b, loc, global, b.getStringAttr("private"), type,
                               b.getUnitAttr(), /*constant=*/false,
                               b.getI64IntegerAttr(16));
      memory = memref::GetGlobalOp::create(body, loc, type, global);
      shared.push_back(FlatSymbolRefAttr::get(ctx, global));
      memories[memory] = {"workgroup attribution " + std::to_string(i),
                          Memory::Shared};
    } else {
      memory = memref::AllocaOp::create(body, loc, type);
      memories[memory] = {"private attribution " +
                          std::to_string(i - numWorkgroup)};
    }
    arg.replaceAllUsesWith(memory);
  }
  entry.eraseArguments(numInputs, numWorkgroup + numPrivate);
  fn->setAttr(kSharedAttr, b.getArrayAttr(shared));
  for (BlockArgument arg : entry.getArguments())
    arg.setType(hostType(arg.getType()));

  SmallVector<Operation *> ops;
  fn.walk([&](Operation *op) {
    if (op != fn)
      ops.push_back(op);
  });
  for (Operation *op : ops)
    if (failed(toHost(op, emulator)))
      return failure();
  return guardAccesses(fn, memories, emulator);
}

struct SwanGPUKernelsToHost
    : public swan::impl::SwanGPUKernelsToHostBase<SwanGPUKernelsToHost> {
  using SwanGPUKernelsToHostBase::SwanGPUKernelsToHostBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    EmulatorCalls emulator(module);
    for (auto gpuModule :
         llvm::make_early_inc_range(module.getOps<gpu::GPUModuleOp>())) {
      for (auto kernel : gpuModule.getOps<gpu::GPUFuncOp>()) {
        if (!kernel.isKernel()) {
          kernel.emitError("the kernel emulator runs kernels only; device "
                           "functions are not supported");
          return signalPassFailure();
        }
        if (failed(convertKernel(kernel, module, symbolPrefix, emulator)))
          return signalPassFailure();
      }
      gpuModule.erase();
    }
    module->removeAttr(gpu::GPUDialect::getContainerModuleAttrName());
  }
};

//===----------------------------------------------------------------------===//
// Launchers and the kernel table, on the LLVM dialect

/// `void <kernel>_launch(void **params)`: loads each argument of the
/// expanded ABI from its slot and calls the kernel.
LLVM::LLVMFuncOp emitLauncher(OpBuilder &b, LLVM::LLVMFuncOp kernel) {
  Location loc = kernel.getLoc();
  MLIRContext *ctx = b.getContext();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto type = LLVM::LLVMFunctionType::get(LLVM::LLVMVoidType::get(ctx), {ptr});
  auto launcher = LLVM::LLVMFuncOp::create(
      b, loc, (kernel.getName() + abi::kLauncherSuffix).str(), type,
      LLVM::Linkage::Internal);
  OpBuilder::InsertionGuard guard(b);
  Block *entry = launcher.addEntryBlock(b);
  b.setInsertionPointToStart(entry);
  Value params = entry->getArgument(0);
  SmallVector<Value> args;
  for (auto [i, param] :
       llvm::enumerate(kernel.getFunctionType().getParams())) {
    Value slotAddress =
        LLVM::GEPOp::create(b, loc, ptr, ptr, params,
                            ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(i)});
    Value slot = LLVM::LoadOp::create(b, loc, ptr, slotAddress);
    args.push_back(LLVM::LoadOp::create(b, loc, param, slot));
  }
  LLVM::CallOp::create(b, loc, kernel, args);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return launcher;
}

/// `<kernel>_shared`: {data, bytes} of each of the kernel's shared buffers,
/// ending in a zero entry, so that the emulator can poison them before
/// each block as a GPU leaves them undefined.
LLVM::GlobalOp emitSharedList(OpBuilder &b, ModuleOp module,
                              LLVM::LLVMFuncOp kernel) {
  MLIRContext *ctx = b.getContext();
  Location loc = kernel.getLoc();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto i64 = b.getI64Type();
  auto entryType = LLVM::LLVMStructType::getLiteral(ctx, {ptr, i64});
  auto symbols = kernel->getAttrOfType<ArrayAttr>(kSharedAttr);
  auto type = LLVM::LLVMArrayType::get(entryType, symbols.size() + 1);
  auto list = LLVM::GlobalOp::create(
      b, loc, type, /*isConstant=*/true, LLVM::Linkage::Private,
      (kernel.getName() + "_shared").str(), Attribute());
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(b.createBlock(&list.getInitializerRegion()));
  DataLayout layout(module);
  Value value = LLVM::ZeroOp::create(b, loc, type);
  for (auto [i, symbol] : llvm::enumerate(symbols)) {
    auto buffer = module.lookupSymbol<LLVM::GlobalOp>(
        cast<FlatSymbolRefAttr>(symbol).getValue());
    int64_t at = static_cast<int64_t>(i);
    value = LLVM::InsertValueOp::create(
        b, loc, value, LLVM::AddressOfOp::create(b, loc, buffer),
        ArrayRef<int64_t>{at, 0});
    int64_t bytes = layout.getTypeSize(buffer.getType()).getFixedValue();
    value = LLVM::InsertValueOp::create(
        b, loc, value, LLVM::ConstantOp::create(b, loc, i64, bytes),
        ArrayRef<int64_t>{at, 1});
  }
  LLVM::ReturnOp::create(b, loc, value);
  return list;
}

struct SwanEmitKernelLaunchers
    : public swan::impl::SwanEmitKernelLaunchersBase<SwanEmitKernelLaunchers> {
  using SwanEmitKernelLaunchersBase::SwanEmitKernelLaunchersBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = module.getContext();
    OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
    Location loc = module.getLoc();

    auto ptr = LLVM::LLVMPointerType::get(ctx);
    auto i32 = b.getI32Type();
    struct Entry {
      LLVM::GlobalOp name;
      LLVM::LLVMFuncOp launcher;
      SmallVector<int32_t, 3> blockSize;
      LLVM::GlobalOp shared;
    };
    // The emulator never returns from a fault: what follows the guard may
    // assume the index in bounds, and the fault path is cold.
    if (auto fault = module.lookupSymbol<LLVM::LLVMFuncOp>(abi::kOutOfBounds))
      fault.setPassthroughAttr(
          b.getStrArrayAttr({"noreturn", "cold", "nounwind"}));

    SmallVector<Entry> entries;
    for (auto kernel : llvm::to_vector(module.getOps<LLVM::LLVMFuncOp>())) {
      auto kernelName = kernel->getAttrOfType<StringAttr>(kKernelNameAttr);
      if (!kernelName)
        continue;
      Entry entry;
      std::string text = (kernelName.getValue() + StringRef("\0", 1)).str();
      entry.name = LLVM::GlobalOp::create(
          b, loc, LLVM::LLVMArrayType::get(b.getI8Type(), text.size()),
          /*isConstant=*/true, LLVM::Linkage::Private,
          (kernel.getName() + "_name").str(), b.getStringAttr(text));
      entry.launcher = emitLauncher(b, kernel);
      entry.blockSize = {0, 0, 0};
      if (auto size = kernel->getAttrOfType<DenseI32ArrayAttr>(kBlockSizeAttr))
        entry.blockSize.assign(size.asArrayRef().begin(),
                               size.asArrayRef().end());
      entry.shared = emitSharedList(b, module, kernel);
      kernel.setLinkage(LLVM::Linkage::Internal);
      entries.push_back(entry);
    }

    // {name, launch, known block size, shared buffers}[], ending in a zero
    // entry.
    auto entryType = LLVM::LLVMStructType::getLiteral(
        ctx, {ptr, ptr, LLVM::LLVMArrayType::get(i32, 3), ptr});
    auto tableType = LLVM::LLVMArrayType::get(entryType, entries.size() + 1);
    auto table = LLVM::GlobalOp::create(
        b, loc, tableType, /*isConstant=*/true, LLVM::Linkage::External,
        symbolPrefix + abi::kKernelTable, Attribute());
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(b.createBlock(&table.getInitializerRegion()));
    Value value = LLVM::ZeroOp::create(b, loc, tableType);
    for (auto [i, entry] : llvm::enumerate(entries)) {
      int64_t at = static_cast<int64_t>(i);
      value = LLVM::InsertValueOp::create(
          b, loc, value, LLVM::AddressOfOp::create(b, loc, entry.name),
          ArrayRef<int64_t>{at, 0});
      value = LLVM::InsertValueOp::create(
          b, loc, value, LLVM::AddressOfOp::create(b, loc, entry.launcher),
          ArrayRef<int64_t>{at, 1});
      for (int64_t d = 0; d < 3; ++d)
        value = LLVM::InsertValueOp::create(
            b, loc, value,
            LLVM::ConstantOp::create(b, loc, i32, entry.blockSize[d]),
            ArrayRef<int64_t>{at, 2, d});
      value = LLVM::InsertValueOp::create(
          b, loc, value, LLVM::AddressOfOp::create(b, loc, entry.shared),
          ArrayRef<int64_t>{at, 3});
    }
    LLVM::ReturnOp::create(b, loc, value);
  }
};

} // namespace
