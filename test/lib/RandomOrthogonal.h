//===- RandomOrthogonal.h - seeded random rotations for cache tests -*- C++ -*-===//
//
// The cache only needs orthogonal matrices, not calibrated ones: a random
// orthogonal matrix exercises every rotation path without depending on the
// calibration library.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TEST_RANDOMORTHOGONAL_H
#define SWAN_TEST_RANDOMORTHOGONAL_H

#include "swan/Runtime/Eval/Reference.h"

#include <cstdint>
#include <random>
#include <vector>

namespace swan::test {

/// `count` random orthogonal [dim][dim] matrices, row-major, back to back.
inline std::vector<float> randomOrthogonal(int64_t count, int64_t dim,
                                           std::mt19937_64 &rng) {
  std::vector<float> out;
  out.reserve(count * dim * dim);
  for (int64_t c = 0; c < count; ++c) {
    std::vector<double> m = reference::randomOrthogonal(dim, rng);
    out.insert(out.end(), m.begin(), m.end());
  }
  return out;
}

/// Gaussian floats; never zeros, so that a missing write shows.
inline std::vector<float> randomFloats(int64_t count, std::mt19937_64 &rng,
                                       double stddev = 1.0) {
  std::normal_distribution<float> normal(0.0f, static_cast<float>(stddev));
  std::vector<float> out(count);
  for (float &x : out)
    x = normal(rng);
  return out;
}

} // namespace swan::test

#endif // SWAN_TEST_RANDOMORTHOGONAL_H
