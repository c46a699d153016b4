//===- Kernels.h - JIT-compiled SWAN kernels on plain buffers ---*- C++ -*-===//
//
// The C++ kernel API of the runtime: compress, rotate and decode attention on
// plain host buffers. Each specialisation (D, G, storage type, target) is
// built from the swan ops, lowered by the CPU pipeline and JIT-compiled once
// per process; token counts, k and batch are run-time values, so changing
// them never recompiles.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_CPU_KERNELS_H
#define SWAN_RUNTIME_CPU_KERNELS_H

#include "swan/Runtime/RowLayout.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>

namespace swan {

/// Compile-time specialisation key; n, k, lengths and batch are run-time.
struct KernelKey {
  int32_t headDim;
  int32_t groupSize;
  StorageType storage;
  WinnowedStorage winnowed = WinnowedStorage::AsStorage;
};

/// One run of winnowed tokens of one KV head sharing one k_K and one k_V:
/// row-major [tokens][k] values (storage type, or int8 with
/// WinnowedStorage::Int8) and their positions, as `keyEncoding` and
/// `valueEncoding` say: [tokens][k] uint8 indices or [tokens][D/8] masks;
/// int8 values come with one f32 scale per token in `keyScales` and
/// `valueScales`.
struct SparseBlock {
  const void *keyValues;
  const uint8_t *keyIndices; ///< positions: indices or masks
  int32_t keyK;
  const void *valueValues;
  const uint8_t *valueIndices; ///< positions: indices or masks
  int32_t valueK;
  int64_t tokens;
  SparseEncoding valueEncoding = SparseEncoding::Indices;
  SparseEncoding keyEncoding = SparseEncoding::Indices;
  const float *keyScales = nullptr;   ///< [tokens], int8 values only
  const float *valueScales = nullptr; ///< [tokens], int8 values only
};

/// Dense rotated buffer tokens of one KV head: row-major [tokens][D].
struct DenseBlock {
  const void *keys;
  const void *values;
  int64_t tokens;
};

/// Decode attention for one (sequence, KV head): G unrotated query rows in,
/// G output rows out (unrotated unless rotatedOutput).
struct AttentionWork {
  const float *query;         // [G][D]
  const float *keyRotation;   // [D][D]
  const float *valueRotation; // [D][D]
  llvm::ArrayRef<SparseBlock> sparse;
  DenseBlock buffer;
  float *out; // [G][D]
};

class CompiledKernels;

/// The JIT-compiled kernels of one specialisation. Obtained from
/// KernelSet::get, which compiles a key once per process and caches it.
class KernelSet {
public:
  static llvm::Expected<std::shared_ptr<const KernelSet>>
  get(const KernelKey &key);
  /// Number of JIT compilations so far in this process (tests assert that
  /// changing k, lengths or batch adds none).
  static int64_t compileCount();

  const KernelKey &key() const;
  llvm::Error rotate(const float *x, int64_t rows, const float *rotation,
                     float *out) const;
  /// values: storage type (or int8), [rows][k]; positions: [rows][k]
  /// indices, ascending per row, or [rows][D/8] masks; scales: [rows], for
  /// int8 values only (and then required).
  llvm::Error compress(const float *x, int64_t rows, const float *rotation,
                       int32_t k, void *values, uint8_t *positions,
                       SparseEncoding encoding = SparseEncoding::Indices,
                       float *scales = nullptr) const;
  /// Runs every work item, spread with its token blocks over all cores, and
  /// merges. Validates first (null pointers, k outside [1, D], empty work,
  /// zero tokens in a work item): on error nothing is written.
  llvm::Error attention(llvm::ArrayRef<AttentionWork> work, float scale,
                        bool rotatedOutput) const;

  KernelSet(const KernelKey &key, std::unique_ptr<CompiledKernels> kernels);
  ~KernelSet();

private:
  KernelKey keyValue;
  std::unique_ptr<CompiledKernels> kernels;
};

} // namespace swan

#endif // SWAN_RUNTIME_CPU_KERNELS_H
