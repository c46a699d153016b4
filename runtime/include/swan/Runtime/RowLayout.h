//===- RowLayout.h - how one cached row is stored ---------------*- C++ -*-===//
//
// The storage types and position encodings of cached rows (docs/DESIGN.md §5),
// one definition for the CPU kernels and cache and the CUDA kernels and
// cache alike. Plain C++: no MLIR, LLVM or CUDA.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_ROWLAYOUT_H
#define SWAN_RUNTIME_ROWLAYOUT_H

#include <cstddef>
#include <cstdint>

namespace swan {

/// Positions are stored as uint8 indices, so a head has at most 256
/// dimensions: the one limit every layer of the cache checks against.
constexpr int32_t kMaxHeadDim = 256;

/// Element type of cached values: dense buffer rows and winnowed values.
enum class StorageType { F32, F16 };

inline size_t elementBytes(StorageType storage) {
  return storage == StorageType::F16 ? 2 : 4;
}

/// How winnowed rows store their kept values: in the storage type, or
/// (SWAN-Q8) as int8 round(x / s) with one f32 scale s = max|x| / 127 per
/// row (docs/DESIGN.md §5). The dense buffer always keeps the storage type.
enum class WinnowedStorage { AsStorage, Int8 };

/// Bytes of the scale of one int8 winnowed row: f32, which keeps rows of
/// tiny magnitude (below fp16's 6e-8) exact to s / 2; 2 more bytes per row
/// than fp16 would cost.
constexpr int64_t kRowScaleBytes = sizeof(float);

/// Bytes of one kept value of a winnowed row.
inline size_t winnowedElementBytes(StorageType storage,
                                   WinnowedStorage winnowed) {
  return winnowed == WinnowedStorage::Int8 ? 1 : elementBytes(storage);
}

/// Bytes per winnowed row besides its values and positions: its scale.
inline int64_t rowScaleBytes(WinnowedStorage winnowed) {
  return winnowed == WinnowedStorage::Int8 ? kRowScaleBytes : 0;
}

/// Element `i` of stored values, widened to f32.
inline float loadElement(const void *base, int64_t i, StorageType storage) {
  if (storage == StorageType::F32)
    return static_cast<const float *>(base)[i];
  return static_cast<float>(static_cast<const _Float16 *>(base)[i]);
}

/// How a winnowed row records which components it kept: k uint8 indices,
/// ascending, or a D-bit occupancy mask (bit d % 8 of byte d / 8 is
/// dimension d). The values are the same, in ascending dimension order, in
/// both.
enum class SparseEncoding { Indices, Mask };

/// Bytes per row of the positions of `k` kept components out of `dim`.
inline int64_t positionBytes(SparseEncoding encoding, int64_t dim, int64_t k) {
  return encoding == SparseEncoding::Mask ? (dim + 7) / 8 : k;
}

/// The ascending dimensions an occupancy mask of `dim` bits keeps, into
/// `indices` (room for as many as it keeps).
inline void maskIndices(const uint8_t *mask, int64_t dim, uint8_t *indices) {
  for (int64_t d = 0, j = 0; d < dim; ++d)
    if (mask[d / 8] >> (d % 8) & 1)
      indices[j++] = static_cast<uint8_t>(d);
}

/// The occupancy mask of `dim` bits that keeps `k` indices.
inline void indicesMask(const uint8_t *indices, int64_t k, int64_t dim,
                        uint8_t *mask) {
  for (int64_t i = 0; i < (dim + 7) / 8; ++i)
    mask[i] = 0;
  for (int64_t j = 0; j < k; ++j)
    mask[indices[j] / 8] |= static_cast<uint8_t>(1u << (indices[j] % 8));
}

/// Writes a stored winnowed row (`k` values in ascending dimension order and
/// their positions in `encoding`) into its dense row `out` of `dim` floats;
/// the other entries of `out` keep what they held. With a `scale` the
/// values are int8 (SWAN-Q8) and are dequantised by it.
inline void scatterRow(const void *values, const uint8_t *positions, int64_t k,
                       SparseEncoding encoding, int64_t dim,
                       StorageType storage, float *out,
                       const float *scale = nullptr) {
  uint8_t expanded[kMaxHeadDim];
  if (encoding == SparseEncoding::Mask) {
    maskIndices(positions, dim, expanded);
    positions = expanded;
  }
  for (int64_t j = 0; j < k; ++j)
    out[positions[j]] = scale ? static_cast<const int8_t *>(values)[j] * *scale
                              : loadElement(values, j, storage);
}

} // namespace swan

#endif // SWAN_RUNTIME_ROWLAYOUT_H
