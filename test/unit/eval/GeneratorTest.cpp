//===- GeneratorTest.cpp - the LLM-like K/V generator ---------------------===//

#include "swan/Runtime/Eval/Generator.h"
#include "swan/Runtime/Eval/Reference.h"

#include <Eigen/Dense>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace {

swan::GeneratedKV generateOrFail(const swan::KVGeneratorConfig &config) {
  llvm::Expected<swan::GeneratedKV> kv = swan::generateKV(config);
  if (!kv) {
    ADD_FAILURE() << llvm::toString(kv.takeError());
    return {};
  }
  return std::move(*kv);
}

/// Descending eigenvalues of the uncentred second moment of one KV head.
Eigen::VectorXd secondMomentSpectrum(const std::vector<float> &x,
                                     int64_t tokens, int64_t heads,
                                     int64_t head, int64_t dim) {
  Eigen::MatrixXd m = Eigen::MatrixXd::Zero(dim, dim);
  for (int64_t t = 0; t < tokens; ++t) {
    Eigen::VectorXd v(dim);
    for (int64_t j = 0; j < dim; ++j)
      v(j) = x[(t * heads + head) * dim + j];
    m += v * v.transpose();
  }
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(m);
  return solver.eigenvalues().reverse();
}

double topFraction(const Eigen::VectorXd &eigenvalues, int64_t k) {
  return eigenvalues.head(k).sum() / eigenvalues.sum();
}

TEST(Generator, SameSeedsSameData) {
  swan::KVGeneratorConfig config;
  config.tokens = 37;
  config.kvHeads = 3;
  config.headDim = 64;
  config.queryGroup = 2;
  config.modelSeed = 11;
  config.sequenceSeed = 5;
  swan::GeneratedKV a = generateOrFail(config);
  swan::GeneratedKV b = generateOrFail(config);
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(a.queries, b.queries);
  ASSERT_EQ(a.keys.size(), 37u * 3 * 64);
  ASSERT_EQ(a.queries.size(), 37u * 3 * 2 * 64);
  for (float x : a.keys)
    ASSERT_TRUE(std::isfinite(x));

  config.sequenceSeed = 6;
  swan::GeneratedKV c = generateOrFail(config);
  EXPECT_NE(a.keys, c.keys);
  EXPECT_NE(a.values, c.values);
}

TEST(Generator, RejectsMeaninglessConfigurations) {
  swan::KVGeneratorConfig odd;
  odd.headDim = 63;
  llvm::Expected<swan::GeneratedKV> kv = swan::generateKV(odd);
  ASSERT_FALSE(static_cast<bool>(kv));
  EXPECT_NE(llvm::toString(kv.takeError()).find("head_dim must be even"),
            std::string::npos);

  swan::KVGeneratorConfig empty;
  empty.tokens = 0;
  kv = swan::generateKV(empty);
  ASSERT_FALSE(static_cast<bool>(kv));
  llvm::consumeError(kv.takeError());

  swan::KVGeneratorConfig outliers;
  outliers.headDim = 8;
  outliers.keyOutliers = 9;
  kv = swan::generateKV(outliers);
  ASSERT_FALSE(static_cast<bool>(kv));
  llvm::consumeError(kv.takeError());
}

// Keys have a low effective rank and values a flatter spectrum: the property
// the rotations exploit.
TEST(Generator, KeysConcentrateEnergyMoreThanValues) {
  for (int64_t dim : {64, 128}) {
    swan::KVGeneratorConfig config;
    config.tokens = 2000;
    config.kvHeads = 2;
    config.headDim = dim;
    config.withQueries = false;
    config.modelSeed = 3 + dim;
    swan::GeneratedKV kv = generateOrFail(config);
    for (int64_t h = 0; h < 2; ++h) {
      Eigen::VectorXd keys =
          secondMomentSpectrum(kv.keys, kv.tokens, 2, h, dim);
      Eigen::VectorXd values =
          secondMomentSpectrum(kv.values, kv.tokens, 2, h, dim);
      double keyTop = topFraction(keys, dim / 4);
      double valueTop = topFraction(values, dim / 4);
      EXPECT_GT(keyTop, 0.75) << "D=" << dim << " head " << h;
      EXPECT_LT(valueTop, keyTop - 0.1) << "D=" << dim << " head " << h;
      // Not a toy rank: the tail still carries energy.
      EXPECT_LT(topFraction(keys, 4), 0.98);
    }
  }
}

// A few channels carry keys' largest magnitudes, as in real caches.
TEST(Generator, KeysHaveOutlierChannels) {
  swan::KVGeneratorConfig config;
  config.tokens = 500;
  config.headDim = 128;
  config.keyOutliers = 4;
  config.withQueries = false;
  swan::GeneratedKV kv = generateOrFail(config);
  std::vector<double> rms(128, 0.0);
  for (int64_t t = 0; t < kv.tokens; ++t)
    for (int64_t j = 0; j < 128; ++j)
      rms[j] += kv.keys[t * 128 + j] * kv.keys[t * 128 + j] / kv.tokens;
  std::sort(rms.begin(), rms.end(), std::greater<double>());
  // The 4th largest channel is far above the median channel.
  EXPECT_GT(std::sqrt(rms[3]), 3.0 * std::sqrt(rms[64]));
}

// Queries single out a few tokens: attention is peaked, not uniform.
TEST(Generator, AttentionIsPeaked) {
  swan::KVGeneratorConfig config;
  config.tokens = 700;
  config.kvHeads = 2;
  config.headDim = 64;
  config.queryGroup = 4;
  swan::GeneratedKV kv = generateOrFail(config);
  const int64_t dim = 64, heads = 2, g = 4;
  double topWeight = 0.0, sinkWeight = 0.0;
  int64_t samples = 0;
  for (int64_t t : {100, 333, 699}) {
    int64_t len = t + 1;
    for (int64_t h = 0; h < heads; ++h) {
      std::vector<double> keys(len * dim), q(g * dim);
      for (int64_t i = 0; i < len; ++i)
        for (int64_t j = 0; j < dim; ++j)
          keys[i * dim + j] = kv.keys[(i * heads + h) * dim + j];
      for (int64_t r = 0; r < g; ++r)
        for (int64_t j = 0; j < dim; ++j)
          q[r * dim + j] = kv.queries[(t * heads * g + h * g + r) * dim + j];
      std::vector<double> w = swan::reference::attentionWeights(
          q, g, keys, len, dim, 1.0 / std::sqrt(double(dim)));
      for (int64_t r = 0; r < g; ++r) {
        topWeight +=
            *std::max_element(w.begin() + r * len, w.begin() + (r + 1) * len);
        sinkWeight += w[r * len];
        ++samples;
      }
    }
  }
  topWeight /= samples;
  sinkWeight /= samples;
  EXPECT_GT(topWeight, 0.3);
  EXPECT_GT(sinkWeight, 0.05);
}

} // namespace
