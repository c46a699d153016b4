//===- DecodeAttention.h - partial kernels and their merge ------*- C++ -*-===//
//
// What the decode attention partial kernels (DecodeAttentionKernels.cpp)
// and the merge that their last block runs (DecodeAttentionMerge.cpp)
// share. Private to codegen/lib/gpu.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_GPU_DECODEATTENTION_H
#define SWAN_CODEGEN_GPU_DECODEATTENTION_H

#include "GPUKernelBuilder.h"
#include "SwanToGPUKernels.h"

namespace swan {

// The softmax runs in log2 units: exp2 is one instruction.
constexpr double kLog2E = 1.4426950408889634;

/// One array of a token source, rows of `width` elements per (head,
/// token): either a memref [B, H, tokens, width] of the op's form, or, in
/// the paged kernel, one sequence's [H, capacity, width] block at a device
/// address read from the sequence table.
struct TokenArray {
  mlir::Value memref = {};
  mlir::Value address = {}; // !llvm.ptr<1>
  mlir::Value capacity = {}, rowWidth = {};
  mlir::Type element = {};

  bool present() const { return memref || address; }

  mlir::Value width(GPUKernelBuilder &kb) const;

  /// The addresses of the first byte of row `first` and one past the last
  /// byte of row `last` of (seq, head), as indices.
  std::pair<mlir::Value, mlir::Value>
  rowBytes(GPUKernelBuilder &kb, mlir::Value seq, mlir::Value head,
           mlir::Value first, mlir::Value last) const;

  mlir::Value load(GPUKernelBuilder &kb, mlir::Value seq, mlir::Value head,
                   mlir::Value token, mlir::Value j) const;

  /// A row of occupancy bytes as `words` 32-bit words (bit d % 32 of word
  /// d / 32 is dimension d), in one access: every lane of a warp reads the
  /// same row, so the load is a broadcast.
  llvm::SmallVector<mlir::Value> loadWords(GPUKernelBuilder &kb,
                                           mlir::Value seq, mlir::Value head,
                                           mlir::Value token,
                                           int64_t words) const;
};

/// Where one kind of token lives: winnowed (values + indices or masks) or
/// dense.
struct TokenSource {
  TokenArray keyValues, keyIndices; // no keyIndices: dense keys, width D
  TokenArray valueValues, valueIndices;
  // keyIndices / valueIndices hold occupancy masks, [.., D/8] bytes.
  bool keyMasks = false, valueMasks = false;
};

/// What a partial kernel reads and writes, from its arguments; lengths are
/// those of sequence `seq`.
struct PartialInputs {
  mlir::Value query, scale, keyRotation;
  TokenSource sparse, buffer;
  mlir::Value sparseLength, bufferLength; // index
  mlir::Value outMax, outSum, outAcc;
  mlir::Value finished;      // [B, H] i32: blocks of each (sequence, head) done
  mlir::Value valueRotation; // [H, D, D]; absent with rotated_output
  mlir::Value out;           // [B, H*G, D]
};

/// The merge of every partial block of (sequence `seq`, KV head `head`)
/// into `in.out`, run by the block that finished last (all of a block's
/// threads): the splits' weights, the weighted sum of their accumulators
/// and, unless the output stays rotated, the product with R_Vᵀ. `qs`,
/// `scores` and `state` are the partial kernel's shared buffers, free again.
void emitMerge(GPUKernelBuilder &kb, const PartialKernelShape &shape,
               const PartialInputs &in, mlir::Value seq, mlir::Value head,
               mlir::Value qs, mlir::Value scores, mlir::Value state);

} // namespace swan

#endif // SWAN_CODEGEN_GPU_DECODEATTENTION_H
