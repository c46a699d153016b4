//===- CacheHost.h - host-side pieces the cache and stores share *- C++ -*-===//
//
// What the cache (Cache.cpp) and both token stores (HostStore.cpp and CUDA's
// DeviceStore.cpp) do on the host: arrays from malloc, row norms, the checks
// of inputs and the lowering of a stored winnowed row to fewer components.
// Plain C++: no MLIR, LLVM or CUDA, so the CUDA store stays free of them.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_CACHEHOST_H
#define SWAN_RUNTIME_CACHEHOST_H

#include "swan/Runtime/RowLayout.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace swan {

struct FreeDeleter {
  void operator()(void *p) const { std::free(p); }
};
template <typename T> using HostArray = std::unique_ptr<T[], FreeDeleter>;

/// malloc, not new: the library builds without exceptions, and running out
/// of memory must be a status, not an abort. Null when it runs out.
template <typename T> HostArray<T> allocateArray(size_t count) {
  return HostArray<T>(
      static_cast<T *>(std::malloc(std::max<size_t>(count, 1) * sizeof(T))));
}

inline double rowNorm(const float *row, int64_t count) {
  double sum = 0.0;
  for (int64_t i = 0; i < count; ++i)
    sum += double(row[i]) * double(row[i]);
  return std::sqrt(sum);
}

/// The first non-finite element among `count` stored ones, or -1.
inline int64_t firstNonFinite(const void *base, int64_t count,
                              StorageType storage) {
  for (int64_t i = 0; i < count; ++i)
    if (!std::isfinite(loadElement(base, i, storage)))
      return i;
  return -1;
}

/// NaN or Inf in appended keys or values ([tokens][rowFloats] each) would
/// poison every later attention over the sequence: the message naming the
/// first one, or empty when all are finite.
inline std::string nonFiniteInput(const float *keys, const float *values,
                                  int64_t tokens, int64_t rowFloats) {
  for (auto [input, name] :
       {std::pair(keys, "keys"), std::pair(values, "values")})
    for (int64_t i = 0; i < tokens * rowFloats; ++i)
      if (!std::isfinite(input[i]))
        return std::string(name) + "[" + std::to_string(i) +
               "] is not finite (token " + std::to_string(i / rowFloats) + ")";
  return {};
}

/// Keeps the `keep` largest-magnitude of a row's k stored entries, ties to
/// the lower position, in their stored order, at the front of `values` and
/// `indices` (keep <= k <= kMaxHeadDim). Stored indices ascend with the
/// position, so ties go to the lower index, as in winnowing itself.
template <typename T>
void keepLargest(T *values, uint8_t *indices, int32_t k, int32_t keep) {
  int32_t order[kMaxHeadDim];
  float magnitude[kMaxHeadDim];
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

#endif // SWAN_RUNTIME_CACHEHOST_H
