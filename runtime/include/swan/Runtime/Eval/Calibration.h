//===- Calibration.h - offline rotations from K/V samples ------*- C++ -*-===//
//
// docs/DESIGN.md §1, offline calibration: for one layer, per KV head, R is the
// matrix of eigenvectors of the uncentred second moment Σ x xᵀ of the
// samples, ordered by decreasing eigenvalue, so that x' = x · R puts the
// most energy in the first coordinates. The moment is accumulated in double
// while samples stream in; the eigendecomposition is Eigen's
// SelfAdjointEigenSolver.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_EVAL_CALIBRATION_H
#define SWAN_RUNTIME_EVAL_CALIBRATION_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace swan {

/// The k of the calibration report (8, 16, 32, 48, 64, 96) that are ≤ D.
std::vector<int64_t> energyTableKs(int64_t headDim);

/// Σ x xᵀ per KV head, accumulated in double over streamed samples.
class SecondMoment {
public:
  SecondMoment(int64_t kvHeads, int64_t headDim);

  /// Adds `tokens` samples laid out [tokens][kvHeads][headDim]; rejects
  /// non-finite values, naming the token and head.
  llvm::Error add(const float *samples, int64_t tokens);

  int64_t kvHeads() const { return heads; }
  int64_t headDim() const { return dim; }
  int64_t tokens() const { return count; }
  /// [kvHeads][D][D] row-major; only the lower triangles are meaningful.
  const std::vector<double> &moments() const { return sums; }

private:
  int64_t heads, dim, count = 0;
  std::vector<double> sums; ///< [heads][dim][dim], lower triangle
};

/// One layer's rotations for keys or values.
struct Rotations {
  int64_t kvHeads = 0, headDim = 0;
  /// [kvHeads][D][D] row-major; column j of a head's matrix is its j-th
  /// eigenvector, so x' = x · R. Each column's largest-magnitude entry is
  /// positive, which makes the result deterministic.
  std::vector<float> matrices;
  /// [kvHeads][D], descending: the mean squared rotated coordinate.
  std::vector<double> eigenvalues;

  const float *head(int64_t h) const {
    return matrices.data() + h * headDim * headDim;
  }
  /// Fraction of the samples' energy in the first k rotated coordinates.
  double energyFraction(int64_t head, int64_t k) const;
};

/// Eigendecomposition of each head's moment, checked orthogonal.
llvm::Expected<Rotations> computeRotations(const SecondMoment &moment);

/// One-shot calibration of samples [tokens][kvHeads][headDim].
llvm::Expected<Rotations> calibrate(const float *samples, int64_t tokens,
                                    int64_t kvHeads, int64_t headDim);

/// max |R Rᵀ − I| over all entries, computed in double.
double orthogonalityError(const float *rotation, int64_t dim);

/// Fails when some head's rotation is not orthogonal to `tolerance`.
llvm::Error checkOrthogonal(const Rotations &rotations,
                            double tolerance = 1e-5);

/// The energy a *per-token* top-k keeps after rotation (what winnowing
/// keeps, as opposed to the fixed first-k coordinates of energyFraction):
/// Σ over samples of the top-k x'² over Σ of all x'², for each k of
/// energyTableKs.
class WinnowedEnergy {
public:
  explicit WinnowedEnergy(const Rotations &rotations);
  void add(const float *samples, int64_t tokens);
  /// [kvHeads][energyTableKs(D).size()]
  std::vector<double> fractions() const;

private:
  const Rotations &rotations;
  std::vector<int64_t> ks;
  std::vector<double> sums;
  int64_t count = 0;
};

} // namespace swan

#endif // SWAN_RUNTIME_EVAL_CALIBRATION_H
