//===- Reference.h - the float64 reference of SWAN attention ----*- C++ -*-===//
//
// The one reference implementation every test, the demo and the quality
// tools compare against: plain loops in double precision, no shortcuts.
// Matrices are row-major; vectors are rows; a rotation is x' = x · R.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_EVAL_REFERENCE_H
#define SWAN_RUNTIME_EVAL_REFERENCE_H

#include <cstdint>
#include <random>
#include <vector>

namespace swan::reference {

/// `rows` vectors of length `dim` (row-major [rows][dim]) times R [dim][dim].
std::vector<double> rotate(const std::vector<double> &x, int64_t rows,
                           int64_t dim, const std::vector<double> &rotation);

/// x · Rᵀ: undoes `rotate` for an orthogonal R.
std::vector<double> rotateBack(const std::vector<double> &x, int64_t rows,
                               int64_t dim,
                               const std::vector<double> &rotation);

/// The k entries of largest magnitude of one row, ties to the lower index,
/// returned in ascending index order.
struct Winnowed {
  std::vector<double> values;
  std::vector<int32_t> indices;
};
Winnowed winnow(const double *row, int64_t dim, int64_t k);

/// Scatters winnowed entries back into a dense row of length `dim`.
std::vector<double> scatter(const Winnowed &w, int64_t dim);

/// SWAN-Q8's storage of a winnowed row (docs/DESIGN.md §5): each kept value
/// as int8 round(x / s), to nearest with ties to even, into `q`, with
/// s = max|x| / 127 in f32, which it returns (0 for an all-zero row, whose
/// values are stored as 0).
float quantiseInt8(const std::vector<double> &kept, int8_t *q);

/// Dense decode attention of `heads` query rows q [heads][dim] against one
/// KV head's keys and values [tokens][dim]: softmax(scale · q Kᵀ) V.
std::vector<double> attention(const std::vector<double> &q, int64_t heads,
                              const std::vector<double> &keys,
                              const std::vector<double> &values,
                              int64_t tokens, int64_t dim, double scale);

/// Attention weights softmax(scale · q Kᵀ) [heads][tokens], for agreement
/// metrics.
std::vector<double> attentionWeights(const std::vector<double> &q,
                                     int64_t heads,
                                     const std::vector<double> &keys,
                                     int64_t tokens, int64_t dim,
                                     double scale);

/// A random orthogonal [dim][dim] matrix: Gram-Schmidt, applied twice for
/// accuracy, on the rows of a Gaussian matrix drawn from `rng`.
std::vector<double> randomOrthogonal(int64_t dim, std::mt19937_64 &rng);

} // namespace swan::reference

#endif // SWAN_RUNTIME_EVAL_REFERENCE_H
