//===- SwanToGPUKernels.h - swan-convert-to-gpu by op family ----*- C++ -*-===//
//
// One function per op family writes that family's gpu.func kernels into the
// kernel module; SwanToGPU.cpp matches each entry point and calls them. They
// are not rewrite patterns: a kernel is built from an entry point's
// arguments, and the entry point is erased. The launch contract lives in
// swan/Codegen/GPU/KernelABI.h. Private to codegen/lib/gpu.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_GPU_SWANTOGPUKERNELS_H
#define SWAN_CODEGEN_GPU_SWANTOGPUKERNELS_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace swan {

/// swan.rotate or swan.compress as the kernel `name`, one block per token,
/// one thread per dimension (RotateCompressKernels.cpp). `sources`:
/// x [n, D], r [D, D], then for compress k, values [n, k] and indices
/// [n, k] or occupancy masks [n, D/8] (`masks`), or for rotate out [n, D].
void emitRotateOrCompress(mlir::ImplicitLocOpBuilder &b,
                          mlir::gpu::GPUModuleOp module, llvm::StringRef name,
                          llvm::ArrayRef<mlir::Value> sources, bool compress,
                          bool masks, int64_t dim);

/// What the decode attention kernels are specialised on.
struct PartialKernelShape {
  int64_t dim;
  int64_t group;
  bool keyMasks = false, valueMasks = false; // of the winnowed tokens
};

/// The entry point's arguments behind swan.decode_attention's operands, in
/// their order, and its result.
struct DecodeOperands {
  mlir::Value query, scale, keyRotation, valueRotation;
  mlir::Value sparseKeyValues, sparseKeyIndices, sparseValueValues,
      sparseValueIndices;
  mlir::Value bufferKeys, bufferValues, sparseLengths, bufferLengths;
  mlir::Value result;
};

/// swan.decode_attention as two partial kernels, `name` followed by
/// gpu_abi::kPartialSuffix (the op's batch layout) and by
/// kPagedPartialSuffix (sequences read from a table), blocks over (split,
/// KV head, sequence); the last block of each (sequence, KV head) merges
/// (DecodeAttentionKernels.cpp).
void emitDecodeAttention(mlir::ImplicitLocOpBuilder &b,
                         mlir::gpu::GPUModuleOp module, llvm::StringRef name,
                         const DecodeOperands &ops,
                         const PartialKernelShape &shape, bool rotateBack);

} // namespace swan

#endif // SWAN_CODEGEN_GPU_SWANTOGPUKERNELS_H
