//===- Calibration.cpp - offline rotations from K/V samples ---------------===//

#include "swan/Runtime/Eval/Calibration.h"

#include "llvm/Support/FormatVariadic.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <functional>

using namespace swan;

namespace {

llvm::Error calibrationError(const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "calibration: " + why);
}

using RowMatrix =
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Samples go through Eigen's rank update in blocks of this many tokens:
/// a GEMM-shaped update instead of one outer product per token.
constexpr int64_t kBlockTokens = 256;

} // namespace

std::vector<int64_t> swan::energyTableKs(int64_t headDim) {
  std::vector<int64_t> ks;
  for (int64_t k : {8, 16, 32, 48, 64, 96})
    if (k <= headDim)
      ks.push_back(k);
  return ks;
}

SecondMoment::SecondMoment(int64_t kvHeads, int64_t headDim)
    : heads(kvHeads), dim(headDim), sums(kvHeads * headDim * headDim, 0.0) {}

llvm::Error SecondMoment::add(const float *samples, int64_t tokens) {
  if (tokens < 0)
    return calibrationError("negative token count");
  for (int64_t i = 0; i < tokens * heads * dim; ++i)
    if (!std::isfinite(samples[i]))
      return calibrationError(
          "sample " + llvm::Twine(count + i / (heads * dim)) + ", KV head " +
          llvm::Twine(i / dim % heads) + " holds a non-finite value");
  RowMatrix block(kBlockTokens, dim);
  for (int64_t h = 0; h < heads; ++h) {
    Eigen::Map<RowMatrix> m(sums.data() + h * dim * dim, dim, dim);
    for (int64_t t0 = 0; t0 < tokens; t0 += kBlockTokens) {
      int64_t n = std::min(kBlockTokens, tokens - t0);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t j = 0; j < dim; ++j)
          block(t, j) = samples[((t0 + t) * heads + h) * dim + j];
      m.selfadjointView<Eigen::Lower>().rankUpdate(
          block.topRows(n).transpose());
    }
  }
  count += tokens;
  return llvm::Error::success();
}

double Rotations::energyFraction(int64_t h, int64_t k) const {
  const double *e = eigenvalues.data() + h * headDim;
  double total = 0.0, top = 0.0;
  for (int64_t j = 0; j < headDim; ++j) {
    double v = std::max(e[j], 0.0); // rounding can make the smallest < 0
    total += v;
    if (j < k)
      top += v;
  }
  return total > 0.0 ? top / total : 0.0;
}

llvm::Expected<Rotations> swan::computeRotations(const SecondMoment &moment) {
  const int64_t heads = moment.kvHeads(), dim = moment.headDim();
  if (heads < 1 || dim < 1)
    return calibrationError("kv_heads and head_dim must be positive");
  if (moment.tokens() < 1)
    return calibrationError("no samples");
  Rotations out;
  out.kvHeads = heads;
  out.headDim = dim;
  out.matrices.resize(heads * dim * dim);
  out.eigenvalues.resize(heads * dim);
  for (int64_t h = 0; h < heads; ++h) {
    Eigen::Map<const RowMatrix> lower(moment.moments().data() + h * dim * dim,
                                      dim, dim);
    Eigen::MatrixXd m = lower.selfadjointView<Eigen::Lower>();
    m /= static_cast<double>(moment.tokens());
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(m);
    if (solver.info() != Eigen::Success)
      return calibrationError("eigensolver did not converge for KV head " +
                              llvm::Twine(h));
    // Eigen orders eigenvalues ascending; the rotation wants them descending.
    for (int64_t j = 0; j < dim; ++j) {
      int64_t src = dim - 1 - j;
      Eigen::VectorXd v = solver.eigenvectors().col(src);
      Eigen::Index largest;
      v.cwiseAbs().maxCoeff(&largest);
      if (v(largest) < 0)
        v = -v;
      out.eigenvalues[h * dim + j] = solver.eigenvalues()(src);
      for (int64_t i = 0; i < dim; ++i)
        out.matrices[(h * dim + i) * dim + j] = static_cast<float>(v(i));
    }
  }
  if (llvm::Error e = checkOrthogonal(out))
    return std::move(e);
  return out;
}

llvm::Expected<Rotations> swan::calibrate(const float *samples, int64_t tokens,
                                          int64_t kvHeads, int64_t headDim) {
  if (kvHeads < 1 || headDim < 1)
    return calibrationError("kv_heads and head_dim must be positive");
  SecondMoment moment(kvHeads, headDim);
  if (llvm::Error e = moment.add(samples, tokens))
    return std::move(e);
  return computeRotations(moment);
}

double swan::orthogonalityError(const float *rotation, int64_t dim) {
  Eigen::MatrixXd r =
      Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                                     Eigen::RowMajor>>(rotation, dim, dim)
          .cast<double>();
  Eigen::MatrixXd residual =
      r * r.transpose() - Eigen::MatrixXd::Identity(dim, dim);
  return residual.cwiseAbs().maxCoeff();
}

llvm::Error swan::checkOrthogonal(const Rotations &rotations,
                                  double tolerance) {
  for (int64_t h = 0; h < rotations.kvHeads; ++h) {
    double error = orthogonalityError(rotations.head(h), rotations.headDim);
    if (!(error <= tolerance))
      return calibrationError(
          "rotation of KV head " + llvm::Twine(h) +
          " is not orthogonal: max |R Rᵀ - I| = " +
          llvm::formatv("{0:e2} > {1:e2}", error, tolerance).str());
  }
  return llvm::Error::success();
}

WinnowedEnergy::WinnowedEnergy(const Rotations &rotations)
    : rotations(rotations), ks(energyTableKs(rotations.headDim)),
      sums(rotations.kvHeads * (ks.size() + 1), 0.0) {}

void WinnowedEnergy::add(const float *samples, int64_t tokens) {
  const int64_t heads = rotations.kvHeads, dim = rotations.headDim;
  const size_t width = ks.size() + 1; // the top-k sums, then the total
  std::vector<double> squares(dim);
  for (int64_t h = 0; h < heads; ++h) {
    Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic,
                                   Eigen::RowMajor>>
        r(rotations.head(h), dim, dim);
    Eigen::MatrixXd rd = r.cast<double>();
    for (int64_t t = 0; t < tokens; ++t) {
      Eigen::Map<const Eigen::RowVectorXf> x(samples + (t * heads + h) * dim,
                                             dim);
      Eigen::RowVectorXd rotated = x.cast<double>() * rd;
      for (int64_t j = 0; j < dim; ++j)
        squares[j] = rotated(j) * rotated(j);
      std::sort(squares.begin(), squares.end(), std::greater<double>());
      double running = 0.0;
      size_t next = 0;
      for (int64_t j = 0; j < dim; ++j) {
        running += squares[j];
        if (next < ks.size() && j + 1 == ks[next])
          sums[h * width + next++] += running;
      }
      sums[h * width + ks.size()] += running;
    }
  }
  count += tokens;
}

std::vector<double> WinnowedEnergy::fractions() const {
  const size_t width = ks.size() + 1;
  std::vector<double> out(rotations.kvHeads * ks.size(), 0.0);
  for (int64_t h = 0; h < rotations.kvHeads; ++h) {
    double total = sums[h * width + ks.size()];
    for (size_t i = 0; i < ks.size(); ++i)
      out[h * ks.size() + i] = total > 0.0 ? sums[h * width + i] / total : 0.0;
  }
  return out;
}
