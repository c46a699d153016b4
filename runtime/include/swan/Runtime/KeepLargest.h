//===- KeepLargest.h - re-winnowing one stored row --------------*- C++ -*-===//
//
// Lowering a stored winnowed row from k to fewer kept components, shared by
// the CPU cache and the CUDA cache (which runs it on the host). Plain C++:
// no MLIR, LLVM or CUDA.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_KEEPLARGEST_H
#define SWAN_RUNTIME_KEEPLARGEST_H

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace swan {

/// Keeps the `keep` largest-magnitude of a row's k stored entries, ties to
/// the lower position, in their stored order, at the front of `values` and
/// `indices` (keep <= k <= 256). Stored indices ascend with the position, so
/// ties go to the lower index, as in winnowing itself.
template <typename T>
void keepLargest(T *values, uint8_t *indices, int32_t k, int32_t keep) {
  int32_t order[256];
  float magnitude[256];
  for (int32_t i = 0; i < k; ++i) {
    order[i] = i;
    magnitude[i] = std::fabs(static_cast<float>(values[i]));
  }
  std::partial_sort(order, order + keep, order + k, [&](int32_t a, int32_t b) {
    return magnitude[a] > magnitude[b] ||
           (magnitude[a] == magnitude[b] && a < b);
  });
  std::sort(order, order + keep);
  // Kept positions ascend, so each moves down or stays: in place is safe.
  for (int32_t i = 0; i < keep; ++i) {
    values[i] = values[order[i]];
    indices[i] = indices[order[i]];
  }
}

} // namespace swan

#endif // SWAN_RUNTIME_KEEPLARGEST_H
