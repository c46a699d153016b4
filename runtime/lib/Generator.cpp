//===- Generator.cpp - seeded LLM-like K/V caches and queries -------------===//

#include "swan/Runtime/Generator.h"

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <random>

using namespace swan;

namespace {

/// splitmix64: decorrelates the seeds of the model, layer, head and purpose.
uint64_t mixSeed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

enum class Stream : uint64_t { KeyBasis, ValueBasis, Outliers, Tokens, Queries };

uint64_t streamSeed(uint64_t seed, int64_t layer, int64_t head, Stream s) {
  return mixSeed(mixSeed(mixSeed(seed, layer), head),
                 static_cast<uint64_t>(s));
}

/// Haar-distributed orthogonal matrix: QR of a Gaussian matrix with R's
/// diagonal made positive.
Eigen::MatrixXd randomOrthogonal(int64_t dim, std::mt19937_64 &rng) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd a(dim, dim);
  for (int64_t i = 0; i < dim; ++i)
    for (int64_t j = 0; j < dim; ++j)
      a(i, j) = normal(rng);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
  Eigen::MatrixXd q = qr.householderQ();
  Eigen::MatrixXd r = qr.matrixQR();
  for (int64_t j = 0; j < dim; ++j)
    if (r(j, j) < 0)
      q.col(j) = -q.col(j);
  return q;
}

/// Per-direction std (1+j)^-decay, scaled so the total energy is `dim`: an
/// rms of one per coordinate.
Eigen::VectorXd powerLawSpectrum(int64_t dim, double decay) {
  Eigen::VectorXd s(dim);
  for (int64_t j = 0; j < dim; ++j)
    s(j) = std::pow(1.0 + j, -decay);
  return s * std::sqrt(dim / s.squaredNorm());
}

/// Half-split RoPE (GPT-NeoX / Llama): pair (i, i + D/2) turns by pos·θ_i.
void applyRope(Eigen::VectorXd &x, double position, double base) {
  int64_t half = x.size() / 2;
  for (int64_t i = 0; i < half; ++i) {
    double theta = position * std::pow(base, -2.0 * i / x.size());
    double c = std::cos(theta), s = std::sin(theta);
    double a = x(i), b = x(i + half);
    x(i) = a * c - b * s;
    x(i + half) = a * s + b * c;
  }
}

/// The fixed structure of one KV head of the generated model.
struct HeadModel {
  Eigen::MatrixXd keyBasis, valueBasis; // columns: principal directions
  Eigen::VectorXd keySpectrum, valueSpectrum;
  std::vector<int64_t> outlierChannels;
  std::vector<double> outlierSigns;
};

HeadModel buildHeadModel(const KVGeneratorConfig &c, int64_t head) {
  HeadModel m;
  std::mt19937_64 keyRng(
      streamSeed(c.modelSeed, c.layer, head, Stream::KeyBasis));
  std::mt19937_64 valueRng(
      streamSeed(c.modelSeed, c.layer, head, Stream::ValueBasis));
  m.keyBasis = randomOrthogonal(c.headDim, keyRng);
  m.valueBasis = randomOrthogonal(c.headDim, valueRng);
  m.keySpectrum = powerLawSpectrum(c.headDim, c.keyDecay);
  m.valueSpectrum = powerLawSpectrum(c.headDim, c.valueDecay);

  // Real key outliers sit in slowly rotating (low-frequency) RoPE pairs, so
  // they survive RoPE as large, consistently signed channels.
  int64_t half = c.headDim / 2;
  int64_t lowPairs =
      std::min(half, std::max<int64_t>((c.keyOutliers + 1) / 2, half / 4));
  std::vector<int64_t> candidates;
  for (int64_t i = half - lowPairs; i < half; ++i) {
    candidates.push_back(i);
    candidates.push_back(i + half);
  }
  std::mt19937_64 outlierRng(
      streamSeed(c.modelSeed, c.layer, head, Stream::Outliers));
  std::shuffle(candidates.begin(), candidates.end(), outlierRng);
  std::bernoulli_distribution coin;
  for (int64_t i = 0; i < c.keyOutliers; ++i) {
    m.outlierChannels.push_back(candidates[i]);
    m.outlierSigns.push_back(coin(outlierRng) ? 1.0 : -1.0);
  }
  return m;
}

llvm::Error validate(const KVGeneratorConfig &c) {
  auto fail = [](const llvm::Twine &why) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "generator: " + why);
  };
  if (c.tokens < 1 || c.kvHeads < 1 || c.queryGroup < 1)
    return fail("tokens, kv_heads and query group must be positive");
  if (c.headDim < 2 || c.headDim % 2 != 0)
    return fail("head_dim must be even and at least 2, got " +
                llvm::Twine(c.headDim));
  if (c.keyOutliers < 0 || c.keyOutliers > c.headDim)
    return fail("key outliers must be between 0 and head_dim, got " +
                llvm::Twine(c.keyOutliers));
  if (c.layer < 0 || c.firstPosition < 0)
    return fail("layer and first position must not be negative");
  if (!(c.ropeBase > 1.0))
    return fail("RoPE base must be greater than 1");
  return llvm::Error::success();
}

} // namespace

llvm::Expected<GeneratedKV> swan::generateKV(const KVGeneratorConfig &c) {
  if (llvm::Error e = validate(c))
    return std::move(e);

  const int64_t n = c.tokens, heads = c.kvHeads, dim = c.headDim;
  const int64_t qHeads = heads * c.queryGroup;
  GeneratedKV out;
  out.tokens = n;
  out.kvHeads = heads;
  out.headDim = dim;
  out.queryGroup = c.queryGroup;
  out.keys.resize(n * heads * dim);
  out.values.resize(n * heads * dim);
  if (c.withQueries)
    out.queries.resize(n * qHeads * dim);

  std::normal_distribution<double> normal;
  for (int64_t h = 0; h < heads; ++h) {
    HeadModel m = buildHeadModel(c, h);
    std::mt19937_64 rng(mixSeed(
        c.sequenceSeed, streamSeed(c.modelSeed, c.layer, h, Stream::Tokens)));

    // Post-RoPE keys without their outlier mean: the direction a query uses
    // to single out one token rather than all of them at once.
    std::vector<Eigen::VectorXd> keys(n), distinct(n);
    Eigen::VectorXd z(dim);
    for (int64_t t = 0; t < n; ++t) {
      double position = static_cast<double>(c.firstPosition + t);
      for (int64_t j = 0; j < dim; ++j)
        z(j) = normal(rng);
      Eigen::VectorXd key = m.keyBasis * m.keySpectrum.cwiseProduct(z);
      Eigen::VectorXd mean = Eigen::VectorXd::Zero(dim);
      for (size_t o = 0; o < m.outlierChannels.size(); ++o) {
        int64_t ch = m.outlierChannels[o];
        double magnitude = c.outlierScale * m.outlierSigns[o];
        key(ch) += magnitude * (1.0 + 0.2 * normal(rng));
        mean(ch) = magnitude;
      }
      applyRope(key, position, c.ropeBase);
      applyRope(mean, position, c.ropeBase);
      distinct[t] = key - mean;
      keys[t] = std::move(key);

      for (int64_t j = 0; j < dim; ++j)
        z(j) = normal(rng);
      Eigen::VectorXd value = m.valueBasis * m.valueSpectrum.cwiseProduct(z);
      for (int64_t j = 0; j < dim; ++j) {
        out.keys[(t * heads + h) * dim + j] = static_cast<float>(keys[t](j));
        out.values[(t * heads + h) * dim + j] = static_cast<float>(value(j));
      }
    }
    if (!c.withQueries)
      continue;

    // Noise scaled so that q·k/sqrt(D) over the spectral part of a key has
    // std queryNoiseLogit: E[(q·k)²] = c² Σ s_j⁴.
    const double sqrtDim = std::sqrt(static_cast<double>(dim));
    const double noiseScale = c.queryNoiseLogit * sqrtDim /
                              std::sqrt(m.keySpectrum.array().pow(4).sum());
    std::mt19937_64 qrng(mixSeed(
        c.sequenceSeed, streamSeed(c.modelSeed, c.layer, h, Stream::Queries)));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t g = 0; g < c.queryGroup; ++g) {
        for (int64_t j = 0; j < dim; ++j)
          z(j) = normal(qrng);
        Eigen::VectorXd q =
            noiseScale * (m.keyBasis * m.keySpectrum.cwiseProduct(z));
        applyRope(q, static_cast<double>(c.firstPosition + t), c.ropeBase);
        std::uniform_int_distribution<int64_t> anyEarlier(0, t);
        const std::pair<int64_t, double> targets[] = {
            {0, c.sinkLogit},
            {t, c.recentLogit},
            {anyEarlier(qrng), c.retrievalLogit}};
        // Adds `logit` to token i's scaled score: q·k_i/sqrt(D) grows by it.
        for (auto [i, logit] : targets) {
          double alignment = distinct[i].dot(keys[i]);
          if (alignment > 1e-12)
            q += (logit * sqrtDim / alignment) * distinct[i];
        }
        int64_t row = t * qHeads + h * c.queryGroup + g;
        for (int64_t j = 0; j < dim; ++j)
          out.queries[row * dim + j] = static_cast<float>(q(j));
      }
    }
  }
  return out;
}
