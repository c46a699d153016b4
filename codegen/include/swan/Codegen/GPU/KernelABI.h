//===- KernelABI.h - launch contract of the generated GPU kernels -*- C++
//-*-===//
//
// What `swan-convert-to-gpu` generates and what the CUDA runtime launches
// must agree on kernel names, argument order and launch shapes. Both sides
// include this header; it depends on nothing, so the runtime stays free of
// MLIR and LLVM.
//
// Every memref argument uses the expanded ABI of the LLVM lowering:
// allocated pointer, aligned pointer, offset, sizes..., strides... (i64).
//
// For an entry function `@f` the pass generates, in gpu.module
// `@swan_kernels`:
//
//   rotate    `@f`          (x [n,D], r [D,D], out [n,D])
//             grid (n), block (D)
//   compress  `@f`          (x [n,D], r [D,D], k, values [n,k], indices [n,k])
//             grid (n), block (D); x is f32 or already in the storage type.
//             With `encoding = mask`: masks [n,D/8] instead of indices, and
//             values [n,w] for any w >= k (slots past k are not written).
//   decode_attention: one kernel, flash-decoding form with the merge in it
//     `@f_partial`          (query [B,H*G,D], scale, key_rotation [H,D,D],
//                            sparse key values/indices [B,H,L,kK],
//                            sparse value values/indices [B,H,L,kV],
//                            buffer keys/values [B,H,b,D],
//                            sparse lengths [B], buffer lengths [B],
//                            partial max [B,H,S+1,G], partial sum
//                            [B,H,S+1,G], partial accumulator [B,H,S+1,G,D],
//                            finished [B,H] i32, [value_rotation [H,D,D]],
//                            out [B,H*G,D])
//             grid (S+1, H, B), block (kPartialThreads): every block
//             rotates its G query rows, blocks 0..S-1 each take one
//             contiguous split of the sparse tokens, block S takes the
//             dense buffer; S + 1 <= kMaxPartialBlocks. Each block writes
//             its partials and counts itself in `finished`; the last of a
//             (sequence, head) merges them into `out` (rotated back by R_V
//             unless the op has `rotated_output`, which drops that
//             argument) and sets the count back to 0. `finished` must be
//             zero before the first launch.
//     `@f_paged_partial`    (query, scale, key_rotation as above,
//                            sequences [B, kSequenceFields] i64, partial
//                            max, sum, accumulator, finished,
//                            [value_rotation] and out as above)
//             the same blocks, but each sequence's tokens live in blocks of
//             their own, given by its row of the table (SequenceField): a
//             store [H, capacity, kK / kV] per array and a dense buffer
//             [H, buffer capacity, D], at device addresses; the GPU cache
//             runs a whole batch with one launch.
//
// With key_encoding = value_encoding = mask the sparse key and value
// indices are occupancy masks, [B,H,L,D/8] (and in the sequence table's
// kKeyIndices / kValueIndices, [H, capacity, D/8]); kK and kV are then the
// widths of the value rows, of which a row uses as many slots as its mask
// has bits. D must be a multiple of 32.
//
// Partial max is in natural score units; an empty split leaves max = -inf,
// sum = 0 and a zero accumulator, which the merge ignores.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_GPU_KERNELABI_H
#define SWAN_CODEGEN_GPU_KERNELABI_H

#include <cstdint>

namespace swan::gpu_abi {

/// Threads of one partial-attention block: kPartialWarps warps that each
/// take whole tokens, lanes spread over a token's components.
inline constexpr int64_t kWarpSize = 32;
inline constexpr int64_t kPartialWarps = 4;
inline constexpr int64_t kPartialThreads = kWarpSize * kPartialWarps;

/// Tokens whose scores one partial block keeps in shared memory at a time;
/// the running max and the accumulators are rescaled once per chunk.
inline constexpr int64_t kTokensPerChunk = 128;

/// Most partial blocks per (sequence, KV head): the block that merges
/// reads every one of them, and one wave of blocks on the largest GPUs
/// needs fewer.
inline constexpr int64_t kMaxPartialBlocks = 512;

/// The gpu.module every entry point's kernels go into.
inline constexpr const char *kKernelModuleName = "swan_kernels";
inline constexpr const char *kPartialSuffix = "_partial";
inline constexpr const char *kPagedPartialSuffix = "_paged_partial";

/// The columns of the paged partial kernel's sequence table, one row per
/// sequence: device addresses, then sizes in elements or tokens.
enum SequenceField : int64_t {
  kKeyValues,      ///< [H, capacity, kK] storage type
  kKeyIndices,     ///< [H, capacity, kK] uint8, or masks [H, capacity, D/8]
  kValueValues,    ///< [H, capacity, kV] storage type
  kValueIndices,   ///< [H, capacity, kV] uint8, or masks [H, capacity, D/8]
  kBufferKeys,     ///< [H, buffer capacity, D] storage type
  kBufferValues,   ///< [H, buffer capacity, D] storage type
  kCapacity,       ///< token slots per head of the store
  kKeyK,           ///< kK: kept components per key
  kValueK,         ///< kV: kept components per value
  kBufferCapacity, ///< token slots per head of the dense buffer
  kSparseLength,   ///< winnowed tokens
  kBufferLength,   ///< dense tokens
  kSequenceFields
};

} // namespace swan::gpu_abi

#endif // SWAN_CODEGEN_GPU_KERNELABI_H
