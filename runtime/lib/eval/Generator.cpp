//===- Generator.cpp - seeded LLM-like K/V caches and queries -------------===//

#include "swan/Runtime/Eval/Generator.h"

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

enum class Stream : uint64_t {
  KeyBasis,
  ValueBasis,
  Outliers,
  Tokens,
  Queries
};

uint64_t streamSeed(uint64_t seed, int64_t layer, int64_t head, Stream s) {
  return mixSeed(mixSeed(mixSeed(seed, layer), head), static_cast<uint64_t>(s));
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

using RowMatrix =
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// cos and sin of pos·θ_i for the positions of one call, [tokens][D/2]
/// each: computed once and shared by every head, key and query.
struct RopeTable {
  RowMatrix cos, sin;
  RopeTable(int64_t firstPosition, int64_t tokens, int64_t dim, double base)
      : cos(tokens, dim / 2), sin(tokens, dim / 2) {
    for (int64_t i = 0; i < dim / 2; ++i) {
      double frequency = std::pow(base, -2.0 * i / dim);
      for (int64_t t = 0; t < tokens; ++t) {
        double theta = static_cast<double>(firstPosition + t) * frequency;
        cos(t, i) = std::cos(theta);
        sin(t, i) = std::sin(theta);
      }
    }
  }
  /// Half-split RoPE (GPT-NeoX / Llama): pair (i, i + D/2) of row `x` turns
  /// by the angle of token t.
  template <typename Row> void apply(Row &&x, int64_t t) const {
    const int64_t half = cos.cols();
    for (int64_t i = 0; i < half; ++i) {
      double a = x(i), b = x(i + half);
      x(i) = a * cos(t, i) - b * sin(t, i);
      x(i + half) = a * sin(t, i) + b * cos(t, i);
    }
  }
};

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
  const RopeTable rope(c.firstPosition, n, dim, c.ropeBase);
  const double sqrtDim = std::sqrt(static_cast<double>(dim));
  for (int64_t h = 0; h < heads; ++h) {
    HeadModel m = buildHeadModel(c, h);
    std::mt19937_64 rng(mixSeed(
        c.sequenceSeed, streamSeed(c.modelSeed, c.layer, h, Stream::Tokens)));

    // Draw every token's coordinates first (in a fixed order), then map them
    // through the bases with two matrix products.
    const int64_t outliers = m.outlierChannels.size();
    RowMatrix keyCoords(n, dim), valueCoords(n, dim), outlierNoise(n, outliers);
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t j = 0; j < dim; ++j)
        keyCoords(t, j) = normal(rng) * m.keySpectrum(j);
      for (int64_t o = 0; o < outliers; ++o)
        outlierNoise(t, o) = normal(rng);
      for (int64_t j = 0; j < dim; ++j)
        valueCoords(t, j) = normal(rng) * m.valueSpectrum(j);
    }
    RowMatrix keys = keyCoords * m.keyBasis.transpose();
    RowMatrix values = valueCoords * m.valueBasis.transpose();

    // `distinct` is the key without its outlier mean: the direction a query
    // uses to single out one token rather than all of them at once.
    RowMatrix distinct = keys;
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t o = 0; o < outliers; ++o) {
        double magnitude = c.outlierScale * m.outlierSigns[o];
        int64_t ch = m.outlierChannels[o];
        keys(t, ch) += magnitude * (1.0 + 0.2 * outlierNoise(t, o));
        distinct(t, ch) += magnitude * 0.2 * outlierNoise(t, o);
      }
      rope.apply(keys.row(t), t);
      rope.apply(distinct.row(t), t);
      for (int64_t j = 0; j < dim; ++j) {
        out.keys[(t * heads + h) * dim + j] = static_cast<float>(keys(t, j));
        out.values[(t * heads + h) * dim + j] =
            static_cast<float>(values(t, j));
      }
    }
    if (!c.withQueries)
      continue;

    // Noise scaled so that q·k/sqrt(D) over the spectral part of a key has
    // std queryNoiseLogit: E[(q·k)²] = c² Σ s_j⁴.
    const double noiseScale = c.queryNoiseLogit * sqrtDim /
                              std::sqrt(m.keySpectrum.array().pow(4).sum());
    std::mt19937_64 qrng(mixSeed(
        c.sequenceSeed, streamSeed(c.modelSeed, c.layer, h, Stream::Queries)));
    const int64_t g = c.queryGroup;
    RowMatrix queryCoords(n * g, dim);
    std::vector<int64_t> retrieved(n * g);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < g; ++r) {
        for (int64_t j = 0; j < dim; ++j)
          queryCoords(t * g + r, j) = normal(qrng) * m.keySpectrum(j);
        retrieved[t * g + r] =
            std::uniform_int_distribution<int64_t>(0, t)(qrng);
      }
    RowMatrix queries = noiseScale * (queryCoords * m.keyBasis.transpose());
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < g; ++r) {
        auto q = queries.row(t * g + r);
        rope.apply(q, t);
        const std::pair<int64_t, double> targets[] = {
            {0, c.sinkLogit},
            {t, c.recentLogit},
            {retrieved[t * g + r], c.retrievalLogit}};
        // Adds `logit` to token i's scaled score: q·k_i/sqrt(D) grows by it.
        for (auto [i, logit] : targets) {
          double alignment = distinct.row(i).dot(keys.row(i));
          if (alignment > 1e-12)
            q += (logit * sqrtDim / alignment) * distinct.row(i);
        }
        int64_t row = t * qHeads + h * g + r;
        for (int64_t j = 0; j < dim; ++j)
          out.queries[row * dim + j] = static_cast<float>(q(j));
      }
  }
  return out;
}
