//===- CalibrationTest.cpp - rotations recover planted bases --------------===//

#include "swan/Runtime/Eval/Calibration.h"
#include "swan/Runtime/Eval/Generator.h"

#include <Eigen/Dense>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace {

/// Samples [tokens][heads][dim] whose second moment has eigenvectors `basis`
/// columns (one basis per head) and eigenvalues spectrum².
struct Planted {
  int64_t tokens, heads, dim;
  std::vector<Eigen::MatrixXd> bases;
  Eigen::VectorXd spectrum;
  std::vector<float> samples;
};

Planted plant(int64_t tokens, int64_t heads, int64_t dim, uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Planted p{tokens, heads, dim, {}, Eigen::VectorXd(dim), {}};
  // Well separated, from 1 down to 1e-3: every eigenvector is identifiable.
  for (int64_t j = 0; j < dim; ++j)
    p.spectrum(j) = std::exp(-j * std::log(1000.0) / (dim - 1));
  for (int64_t h = 0; h < heads; ++h) {
    Eigen::MatrixXd a(dim, dim);
    for (int64_t i = 0; i < dim * dim; ++i)
      a(i / dim, i % dim) = normal(rng);
    p.bases.push_back(Eigen::HouseholderQR<Eigen::MatrixXd>(a).householderQ());
  }
  p.samples.resize(tokens * heads * dim);
  Eigen::VectorXd z(dim);
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t j = 0; j < dim; ++j)
        z(j) = normal(rng) * p.spectrum(j);
      Eigen::VectorXd x = p.bases[h] * z;
      for (int64_t j = 0; j < dim; ++j)
        p.samples[(t * heads + h) * dim + j] = static_cast<float>(x(j));
    }
  return p;
}

TEST(Calibration, RecoversAPlantedBasisUpToSign) {
  for (auto [heads, dim] :
       {std::pair<int64_t, int64_t>{1, 16}, {3, 24}, {2, 64}}) {
    Planted p = plant(40000, heads, dim, 17 + dim);
    llvm::Expected<swan::Rotations> r =
        swan::calibrate(p.samples.data(), p.tokens, heads, dim);
    ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
    ASSERT_EQ(r->matrices.size(), size_t(heads * dim * dim));
    double total = p.spectrum.squaredNorm();
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t j = 0; j < dim; ++j) {
        Eigen::VectorXd column(dim);
        for (int64_t i = 0; i < dim; ++i)
          column(i) = r->head(h)[i * dim + j];
        double cosine = std::fabs(column.dot(p.bases[h].col(j)));
        EXPECT_GT(cosine, 0.995)
            << "D=" << dim << " head " << h << " col " << j;
        // Deterministic sign: the largest entry is positive.
        Eigen::Index largest;
        column.cwiseAbs().maxCoeff(&largest);
        EXPECT_GT(column(largest), 0.0);
        double expected = p.spectrum(j) * p.spectrum(j);
        EXPECT_NEAR(r->eigenvalues[h * dim + j], expected, 0.05 * expected);
      }
      for (int64_t k : swan::energyTableKs(dim)) {
        double planted = p.spectrum.head(k).squaredNorm() / total;
        EXPECT_NEAR(r->energyFraction(h, k), planted, 0.02);
      }
      EXPECT_LT(swan::orthogonalityError(r->head(h), dim), 1e-5);
    }
  }
}

TEST(Calibration, StreamingMatchesOneShot) {
  Planted p = plant(1000, 2, 32, 5);
  swan::SecondMoment moment(2, 32);
  // Uneven chunks, one of them larger than the internal block.
  for (auto [first, n] :
       {std::pair<int64_t, int64_t>{0, 1}, {1, 300}, {301, 699}})
    ASSERT_FALSE(bool(moment.add(p.samples.data() + first * 2 * 32, n)));
  EXPECT_EQ(moment.tokens(), 1000);
  llvm::Expected<swan::Rotations> streamed = swan::computeRotations(moment);
  llvm::Expected<swan::Rotations> whole =
      swan::calibrate(p.samples.data(), 1000, 2, 32);
  ASSERT_TRUE(streamed && whole);
  for (size_t i = 0; i < whole->matrices.size(); ++i)
    EXPECT_NEAR(streamed->matrices[i], whole->matrices[i], 1e-5) << i;
}

TEST(Calibration, RotationsAreOrthogonalOnGeneratedData) {
  for (int64_t dim : {64, 128, 256}) {
    swan::KVGeneratorConfig config;
    config.tokens = 700;
    config.kvHeads = 2;
    config.headDim = dim;
    config.withQueries = false;
    config.modelSeed = 40 + dim;
    llvm::Expected<swan::GeneratedKV> kv = swan::generateKV(config);
    ASSERT_TRUE(bool(kv)) << llvm::toString(kv.takeError());
    for (const std::vector<float> *x : {&kv->keys, &kv->values}) {
      llvm::Expected<swan::Rotations> r =
          swan::calibrate(x->data(), kv->tokens, 2, dim);
      ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
      for (int64_t h = 0; h < 2; ++h) {
        EXPECT_LT(swan::orthogonalityError(r->head(h), dim), 1e-5);
        for (int64_t j = 1; j < dim; ++j)
          EXPECT_GE(r->eigenvalues[h * dim + j - 1],
                    r->eigenvalues[h * dim + j]);
      }
    }
  }
}

// Fewer samples than dimensions: a rank-deficient moment still yields an
// orthogonal rotation whose leading columns span the samples.
TEST(Calibration, RankDeficientSamplesStillOrthogonal) {
  Planted p = plant(5, 1, 32, 8);
  llvm::Expected<swan::Rotations> r =
      swan::calibrate(p.samples.data(), 5, 1, 32);
  ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  EXPECT_LT(swan::orthogonalityError(r->head(0), 32), 1e-5);
  EXPECT_NEAR(r->energyFraction(0, 5), 1.0, 1e-9);
}

// Rotations learnt on one generated sequence carry over to another sequence
// of the same generated model over the same positions, as with a real model.
// (Post-RoPE keys depend on absolute position through the slowly turning
// pairs, so calibration samples must span the positions that will be used.)
TEST(Calibration, GeneratedRotationsGeneraliseAcrossSequences) {
  swan::KVGeneratorConfig config;
  config.tokens = 3000;
  config.headDim = 128;
  config.withQueries = false;
  llvm::Expected<swan::GeneratedKV> train = swan::generateKV(config);
  config.sequenceSeed = 99;
  llvm::Expected<swan::GeneratedKV> test = swan::generateKV(config);
  ASSERT_TRUE(train && test);
  llvm::Expected<swan::Rotations> r =
      swan::calibrate(train->keys.data(), train->tokens, 1, 128);
  ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  // Energy of the held-out keys in the first 32 rotated coordinates.
  double top = 0.0, total = 0.0;
  for (int64_t t = 0; t < test->tokens; ++t)
    for (int64_t j = 0; j < 128; ++j) {
      double y = 0.0;
      for (int64_t i = 0; i < 128; ++i)
        y += test->keys[t * 128 + i] * r->head(0)[i * 128 + j];
      total += y * y;
      if (j < 32)
        top += y * y;
    }
  EXPECT_NEAR(top / total, r->energyFraction(0, 32), 0.05);
}

TEST(Calibration, WinnowingKeepsAtLeastTheLowRankEnergy) {
  Planted p = plant(2000, 2, 64, 3);
  llvm::Expected<swan::Rotations> r =
      swan::calibrate(p.samples.data(), 2000, 2, 64);
  ASSERT_TRUE(bool(r));
  swan::WinnowedEnergy winnowed(*r);
  winnowed.add(p.samples.data(), 1000);
  winnowed.add(p.samples.data() + 1000 * 2 * 64, 1000);
  std::vector<double> fractions = winnowed.fractions();
  std::vector<int64_t> ks = swan::energyTableKs(64);
  ASSERT_EQ(fractions.size(), 2 * ks.size());
  for (int64_t h = 0; h < 2; ++h)
    for (size_t i = 0; i < ks.size(); ++i) {
      // Per-token top-k dominates the fixed first k coordinates.
      EXPECT_GE(fractions[h * ks.size() + i] + 1e-12,
                r->energyFraction(h, ks[i]));
      EXPECT_LE(fractions[h * ks.size() + i], 1.0 + 1e-12);
    }
  EXPECT_NEAR(fractions[ks.size() - 1], 1.0, 1e-12); // k = 64 = D
}

TEST(Calibration, RejectsBadInput) {
  std::vector<float> samples(3 * 2 * 8, 0.5f);
  samples[2 * 16 + 8 + 3] = NAN; // token 2, head 1
  llvm::Expected<swan::Rotations> r = swan::calibrate(samples.data(), 3, 2, 8);
  ASSERT_FALSE(bool(r));
  std::string message = llvm::toString(r.takeError());
  EXPECT_NE(message.find("sample 2, KV head 1"), std::string::npos) << message;

  swan::SecondMoment empty(2, 8);
  r = swan::computeRotations(empty);
  ASSERT_FALSE(bool(r));
  EXPECT_NE(llvm::toString(r.takeError()).find("no samples"),
            std::string::npos);

  swan::Rotations skewed;
  skewed.kvHeads = 1;
  skewed.headDim = 4;
  skewed.matrices = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1.0001f};
  llvm::Error e = swan::checkOrthogonal(skewed);
  ASSERT_TRUE(bool(e));
  EXPECT_NE(llvm::toString(std::move(e)).find("not orthogonal"),
            std::string::npos);
}

} // namespace
