//===- SwanToGPU.cpp - the swan-convert-to-gpu pass -----------------------===//
//
// Each entry point wrapping one swan.rotate, swan.compress or
// swan.decode_attention becomes that op's kernels (SwanToGPUKernels.h) and
// is erased.
//
//===----------------------------------------------------------------------===//

#include "SwanToGPUKernels.h"

#include "swan/Codegen/GPU/KernelABI.h"
#include "swan/Codegen/GPU/Passes.h"
#include "swan/Dialect/SwanOps.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace swan {
#define GEN_PASS_DEF_SWANCONVERTTOGPU
#include "swan/Codegen/GPU/Passes.h.inc"
} // namespace swan

using namespace mlir;
using namespace swan;
namespace abi = swan::gpu_abi;

namespace {

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

  LogicalResult convertEntry(ImplicitLocOpBuilder &b, gpu::GPUModuleOp kernels,
                             func::FuncOp fn) {
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
    auto compressOp = dyn_cast<CompressOp>(swanOp);
    auto decodeOp = dyn_cast<DecodeAttentionOp>(swanOp);
    if ((compressOp && compressOp.getScales()) ||
        (decodeOp &&
         (decodeOp.getSparseKeyScales() || decodeOp.getSparseValueScales())))
      return swanOp->emitError("int8 winnowed storage (SWAN-Q8) has no GPU "
                               "kernel yet; the CPU pipeline lowers it");
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
    DecodeOperands ops{s[0], s[1], s[2], s[3],  s[4],  s[5], s[6],
                       s[7], s[8], s[9], s[10], s[11], s[12]};
    emitDecodeAttention(b, kernels, name, ops, shape,
                        !decode.getRotatedOutput());
    return success();
  }
};
} // namespace
