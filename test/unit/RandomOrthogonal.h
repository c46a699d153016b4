//===- RandomOrthogonal.h - seeded random rotations for cache tests -*- C++ -*-===//
//
// The cache only needs orthogonal matrices, not calibrated ones: a random
// orthogonal matrix exercises every rotation path without depending on the
// calibration library.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TEST_RANDOMORTHOGONAL_H
#define SWAN_TEST_RANDOMORTHOGONAL_H

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace swan::test {

/// `count` random orthogonal [dim][dim] matrices, row-major, back to back:
/// Gram-Schmidt (twice, for float accuracy) on Gaussian rows.
inline std::vector<float> randomOrthogonal(int64_t count, int64_t dim,
                                           std::mt19937_64 &rng) {
  std::normal_distribution<double> normal;
  std::vector<float> out(count * dim * dim);
  std::vector<double> m(dim * dim);
  for (int64_t c = 0; c < count; ++c) {
    for (double &x : m)
      x = normal(rng);
    for (int64_t i = 0; i < dim; ++i)
      for (int pass = 0; pass < 2; ++pass) {
        for (int64_t j = 0; j < i; ++j) {
          double dot = 0;
          for (int64_t t = 0; t < dim; ++t)
            dot += m[i * dim + t] * m[j * dim + t];
          for (int64_t t = 0; t < dim; ++t)
            m[i * dim + t] -= dot * m[j * dim + t];
        }
        double norm = 0;
        for (int64_t t = 0; t < dim; ++t)
          norm += m[i * dim + t] * m[i * dim + t];
        norm = std::sqrt(norm);
        for (int64_t t = 0; t < dim; ++t)
          m[i * dim + t] /= norm;
      }
    for (int64_t i = 0; i < dim * dim; ++i)
      out[c * dim * dim + i] = static_cast<float>(m[i]);
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
