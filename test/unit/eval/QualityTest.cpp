//===- QualityTest.cpp - equal-memory metrics on known answers ------------===//

#include "swan/Runtime/Eval/Quality.h"
#include "swan/Runtime/Eval/Calibration.h"
#include "swan/Runtime/Eval/Generator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace q = swan::quality;

namespace {

swan::Rotations identity(int64_t heads, int64_t dim) {
  swan::Rotations r;
  r.kvHeads = heads;
  r.headDim = dim;
  r.matrices.assign(heads * dim * dim, 0.0f);
  r.eigenvalues.assign(heads * dim, 1.0);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < dim; ++i)
      r.matrices[(h * dim + i) * dim + i] = 1.0f;
  return r;
}

/// Generated data with rotations calibrated on another sequence of the same
/// generated model.
q::Input generatedInput(int64_t tokens, int64_t heads, int64_t dim,
                        int64_t group, uint64_t seed) {
  swan::KVGeneratorConfig config;
  config.tokens = tokens;
  config.kvHeads = heads;
  config.headDim = dim;
  config.queryGroup = group;
  config.modelSeed = seed;
  config.sequenceSeed = seed + 1;
  llvm::Expected<swan::GeneratedKV> kv = swan::generateKV(config);
  config.sequenceSeed = seed + 2;
  config.withQueries = false;
  llvm::Expected<swan::GeneratedKV> calibration = swan::generateKV(config);
  EXPECT_TRUE(kv && calibration);
  q::Input in;
  in.tokens = tokens;
  in.kvHeads = heads;
  in.headDim = dim;
  in.queryGroup = group;
  in.keys = kv->keys;
  in.values = kv->values;
  in.queries = kv->queries;
  llvm::Expected<swan::Rotations> rk =
      swan::calibrate(calibration->keys.data(), tokens, heads, dim);
  llvm::Expected<swan::Rotations> rv =
      swan::calibrate(calibration->values.data(), tokens, heads, dim);
  EXPECT_TRUE(rk && rv);
  in.keyRotations = std::move(*rk);
  in.valueRotations = std::move(*rv);
  return in;
}

q::Evaluator makeEvaluator(q::Input in, std::vector<int64_t> positions) {
  llvm::Expected<q::Evaluator> e =
      q::Evaluator::create(std::move(in), std::move(positions));
  if (!e) {
    ADD_FAILURE() << llvm::toString(e.takeError());
    std::abort();
  }
  return std::move(*e);
}

TEST(Quality, ByteAccounting) {
  const int64_t d = 128;
  // Buffer of 128 dense tokens (512 B) + 896 winnowed at k = 32 (192 B).
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::Swan, 32, 128}, 1024, d),
                   (128 * 512 + 896 * 192) / 1024.0);
  // Mask encoding: 2k + D/8 per vector.
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::SwanMask, 32, 0}, 1024, d),
                   2 * (64 + 16));
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::SwanNoBuffer, 42, 0}, 10, d),
                   252);
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::LowRank, 32, 0}, 10, d), 128);
  EXPECT_DOUBLE_EQ(
      q::bytesPerToken({q::Method::SlidingWindow, 256, 0}, 1024, d), 128);
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::Int8, 8, 0}, 1, d), 260);
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::Int4, 4, 0}, 1, d), 132);
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::Int6, 6, 0}, 1, d), 196);
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::Int5, 5, 0}, 1, d), 164);
  // SWAN-Q8: a byte per kept value, its index or the mask, an f32 scale.
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::SwanQ8, 32, 0}, 1024, d),
                   2 * (32 + 32 + 4));
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::SwanQ8Mask, 32, 0}, 1024, d),
                   2 * (32 + 16 + 4));
  EXPECT_DOUBLE_EQ(
      q::bytesPerToken({q::Method::SwanQ8NoRotation, 32, 0}, 1024, d),
      2 * (32 + 32 + 4));
  // int4 in groups: D/2 bytes and a 2-byte scale per group.
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::Int4Grouped, 32, 0}, 1, d),
                   2 * (64 + 8));
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::Int4Grouped, 16, 0}, 1, d),
                   2 * (64 + 16));
  // A cache shorter than the buffer is all buffer.
  EXPECT_DOUBLE_EQ(q::bytesPerToken({q::Method::Swan, 1, 128}, 50, d), 512);
}

TEST(Quality, BudgetPicksTheLargestParameterThatFits) {
  for (q::Method m : q::allMethods()) {
    for (double fraction : {0.1, 0.25, 0.5, 0.9}) {
      const int64_t tokens = 777, d = 64, buffer = 32;
      const double budget = fraction * 4 * d;
      std::optional<q::Setting> s =
          q::settingForBudget(m, budget, tokens, d, buffer);
      if (!s)
        continue;
      EXPECT_LE(q::bytesPerToken(*s, tokens, d), budget + 1e-9)
          << q::methodName(m).str();
      if (q::isQuantised(m))
        continue;
      int64_t limit = m == q::Method::SlidingWindow ? tokens : d;
      if (s->parameter < limit) {
        q::Setting bigger = *s;
        ++bigger.parameter;
        EXPECT_GT(q::bytesPerToken(bigger, tokens, d), budget)
            << q::methodName(m).str();
      }
    }
  }
  // int8 costs 2·(D + 2) bytes: not within a quarter of dense.
  EXPECT_FALSE(q::settingForBudget(q::Method::Int8, 64, 100, 64, 0));
  // Groups of 16 where they fit, else of 32.
  EXPECT_EQ(
      q::settingForBudget(q::Method::Int4Grouped, 160, 100, 128, 0)->parameter,
      16);
  EXPECT_EQ(
      q::settingForBudget(q::Method::Int4Grouped, 150, 100, 128, 0)->parameter,
      32);
  EXPECT_FALSE(q::settingForBudget(q::Method::Int4Grouped, 140, 100, 128, 0));
  // The buffer alone exceeds a tiny budget.
  EXPECT_FALSE(q::settingForBudget(q::Method::Swan, 10, 100, 64, 50));
}

// No compression, no error: k = D, rank = D, a window over everything and a
// buffer holding everything all reproduce exact attention.
TEST(Quality, LosslessSettingsGiveZeroError) {
  for (auto [tokens, heads, dim, group] :
       {std::tuple<int64_t, int64_t, int64_t, int64_t>{300, 2, 64, 4},
        {77, 1, 32, 1}}) {
    q::Evaluator e =
        makeEvaluator(generatedInput(tokens, heads, dim, group, 3 + tokens),
                      {0, tokens / 2, tokens - 2, tokens - 1});
    std::vector<q::Setting> lossless = {
        {q::Method::Swan, dim, 16},
        {q::Method::SwanMask, dim, 0},
        {q::Method::SwanNoBuffer, dim, 0},
        {q::Method::TopKNoRotation, dim, 8},
        {q::Method::LowRank, dim, 0},
        {q::Method::SlidingWindow, tokens, 0},
        {q::Method::Swan, 1, tokens}, // everything still in the buffer
    };
    for (const q::Setting &s : lossless) {
      q::Metrics m = e.evaluate(s);
      // Rotations are stored in float, orthogonal to ~1e-7: a rotated cache
      // comes back to that precision; unrotated ones exactly.
      bool rotated = s.method != q::Method::TopKNoRotation &&
                     s.method != q::Method::SlidingWindow;
      EXPECT_LT(m.relativeError, rotated ? 1e-6 : 1e-12)
          << q::methodName(s.method).str();
      EXPECT_EQ(m.top1, 1.0) << q::methodName(s.method).str();
      EXPECT_EQ(m.top8, 1.0) << q::methodName(s.method).str();
      EXPECT_EQ(m.queries, 4 * heads * group);
    }
  }
}

// Two tokens, D = 2, identity rotations: a window of one drops the token
// attention prefers, so the answers are known in closed form.
TEST(Quality, WindowOfOneHasTheClosedFormError) {
  q::Input in;
  in.tokens = 2;
  in.kvHeads = 1;
  in.headDim = 2;
  in.queryGroup = 1;
  in.keys = {3, 0, 0, 0};
  in.values = {1, 0, 0, 1};
  in.queries = {0, 0, 1, 0}; // the query of position 1
  in.keyRotations = identity(1, 2);
  in.valueRotations = identity(1, 2);
  in.scale = 1.0;
  q::Evaluator e = makeEvaluator(std::move(in), {1});
  q::Metrics m = e.evaluate({q::Method::SlidingWindow, 1, 0});
  const double p0 = std::exp(3.0) / (std::exp(3.0) + 1.0), p1 = 1.0 - p0;
  // o = (p0, p1); the window answers v1 = (0, 1).
  EXPECT_NEAR(m.relativeError,
              std::sqrt(p0 * p0 + p0 * p0) / std::sqrt(p0 * p0 + p1 * p1),
              1e-12);
  EXPECT_EQ(m.top1, 0.0);
  EXPECT_EQ(m.top8, 1.0); // both tokens are in both top-8 sets
  // k = 1 without rotation keeps each key's one nonzero: lossless here for
  // keys, but v1 = (0, 1) and v0 = (1, 0) keep theirs too.
  q::Metrics k1 = e.evaluate({q::Method::SwanNoBuffer, 1, 0});
  EXPECT_LT(k1.relativeError, 1e-12);
}

// On generated data, more bytes never make SWAN much worse, and the lossy
// settings are measurably lossy (the metric is not stuck at zero).
TEST(Quality, ErrorFallsAsBudgetGrows) {
  q::Evaluator e =
      makeEvaluator(generatedInput(600, 1, 64, 2, 11), {560, 575, 590, 599});
  double previous = INFINITY;
  for (int64_t k : {4, 8, 16, 32, 48}) {
    q::Metrics m = e.evaluate({q::Method::SwanNoBuffer, k, 0});
    EXPECT_GT(m.relativeError, 0.0);
    EXPECT_LT(m.relativeError, previous * 1.05) << "k=" << k;
    previous = m.relativeError;
  }
  // Each quantiser loses less than the next coarser one.
  double finer = 0.0;
  for (const q::Setting &s : q::quantisedSettings()) {
    if (s.method == q::Method::Int4Grouped)
      continue;
    q::Metrics m = e.evaluate(s);
    EXPECT_GT(m.relativeError, finer) << s.parameter << " bits";
    finer = m.relativeError;
  }
  // Finer groups, smaller scales, less error than one scale per vector.
  q::Metrics int4 = e.evaluate({q::Method::Int4, 4, 0});
  q::Metrics g32 = e.evaluate({q::Method::Int4Grouped, 32, 0});
  q::Metrics g16 = e.evaluate({q::Method::Int4Grouped, 16, 0});
  EXPECT_LT(g32.relativeError, int4.relativeError);
  EXPECT_LT(g16.relativeError, g32.relativeError);
}

// SWAN-Q8 keeps the same components as SWAN, each within half a step
// s = max|kept| / 127 of its value, whatever the row's magnitude.
TEST(Quality, Q8StoresEachKeptValueWithinHalfAStep) {
  const int64_t dim = 48, k = 12;
  std::mt19937_64 rng(8);
  std::normal_distribution<double> normal;
  for (double magnitude : {1.0, 1e-30, 1e30, 65504.0}) {
    std::vector<double> row(dim);
    for (double &x : row)
      x = magnitude * normal(rng);
    std::vector<double> f16(dim), q8(dim);
    q::reconstruct({q::Method::Swan, k, 0}, row.data(), dim, f16.data());
    q::reconstruct({q::Method::SwanQ8, k, 0}, row.data(), dim, q8.data());
    double absmax = 0.0;
    for (double x : f16)
      absmax = std::max(absmax, std::fabs(x));
    const double step = absmax / 127.0;
    for (int64_t j = 0; j < dim; ++j) {
      ASSERT_TRUE(std::isfinite(q8[j]));
      EXPECT_EQ(f16[j] == 0.0, q8[j] == 0.0) << j; // same components kept
      EXPECT_LE(std::fabs(q8[j] - f16[j]), step * (0.5 + 1e-6))
          << "magnitude " << magnitude << ", component " << j;
    }
  }
  // An all-zero row stays zero; a lone non-zero component is 127 steps of
  // the f32 scale: exact but for the scale's own rounding.
  std::vector<double> zero(dim, 0.0), one(dim, 0.0), out(dim, 7.0);
  q::reconstruct({q::Method::SwanQ8Mask, k, 0}, zero.data(), dim, out.data());
  for (double x : out)
    EXPECT_EQ(x, 0.0);
  one[5] = -3.25;
  q::reconstruct({q::Method::SwanQ8, k, 0}, one.data(), dim, out.data());
  EXPECT_NEAR(out[5], -3.25, 3.25 * 0x1p-23);
}

// At the same k, int8 kept values cost little on top of winnowing.
TEST(Quality, Q8LosesLittleAtTheSameK) {
  q::Evaluator e = makeEvaluator(generatedInput(400, 2, 64, 2, 31), {380, 399});
  for (int64_t k : {8, 16, 32}) {
    q::Metrics f16 = e.evaluate({q::Method::Swan, k, 16});
    q::Metrics q8 = e.evaluate({q::Method::SwanQ8, k, 16});
    EXPECT_GT(q8.relativeError, 0.0);
    EXPECT_LT(std::fabs(q8.relativeError - f16.relativeError),
              0.02 * f16.relativeError + 1e-3)
        << "k=" << k;
  }
}

// With exact keys the attention weights are exact whatever happens to the
// values; with exact values and keys the output is exact.
TEST(Quality, CompressingOneSideIsolatesItsError) {
  q::Evaluator e =
      makeEvaluator(generatedInput(400, 2, 32, 3, 21), {390, 399});
  for (q::Method m : {q::Method::Swan, q::Method::SwanNoBuffer,
                      q::Method::TopKNoRotation, q::Method::LowRank,
                      q::Method::Int4}) {
    q::Setting s{m, m == q::Method::Int4 ? 4 : 6, 16};
    q::Metrics both = e.evaluate(s);
    s.compressKeys = false;
    q::Metrics valuesOnly = e.evaluate(s);
    EXPECT_EQ(valuesOnly.top1, 1.0) << q::methodName(m).str();
    EXPECT_EQ(valuesOnly.top8, 1.0) << q::methodName(m).str();
    EXPECT_GT(valuesOnly.relativeError, 0.0) << q::methodName(m).str();
    s.compressKeys = true;
    s.compressValues = false;
    q::Metrics keysOnly = e.evaluate(s);
    EXPECT_GT(keysOnly.relativeError, 0.0) << q::methodName(m).str();
    EXPECT_EQ(keysOnly.top1, both.top1) << q::methodName(m).str();
    s.compressKeys = false;
    EXPECT_LT(e.evaluate(s).relativeError,
              m == q::Method::TopKNoRotation || m == q::Method::Int4 ? 1e-12
                                                                     : 1e-6)
        << q::methodName(m).str();
  }
}

TEST(Quality, RejectsInconsistentInput) {
  q::Input in = generatedInput(50, 1, 32, 1, 5);
  in.keyRotations = identity(2, 32);
  llvm::Expected<q::Evaluator> e = q::Evaluator::create(in, {10});
  ASSERT_FALSE(bool(e));
  EXPECT_NE(llvm::toString(e.takeError()).find("rotations are for 2"),
            std::string::npos);
  in.keyRotations = identity(1, 32);
  e = q::Evaluator::create(in, {50});
  ASSERT_FALSE(bool(e));
  EXPECT_NE(llvm::toString(e.takeError()).find("decode position 50"),
            std::string::npos);
}

} // namespace
