//===- ModelQualityTest.cpp - quality measured inside a model -------------===//
//
// On a random small model: settings that lose nothing score zero KL and
// full agreement, lossy ones do not, and coarser quantisers lose more.
//
//===----------------------------------------------------------------------===//

#include "ModelFixture.h"

#include "swan/Runtime/Eval/ModelQuality.h"

#include "gtest/gtest.h"

using namespace swan;
using namespace swan::model;
using namespace swan::test;
namespace q = swan::quality;

namespace {

TEST(ModelQualityTest, LosslessIsZeroAndLossyIsNot) {
  ModelConfig c = tinyConfig();
  SmallModel m = SmallModel::random(c, 21);
  auto cp = m.load();
  ASSERT_TRUE(bool(cp));
  Transformer transformer(*cp);
  std::mt19937_64 rng(4);
  ModelRotations rotations = randomModelRotations(c, rng);
  std::vector<std::vector<int32_t>> stories;
  for (int s = 0; s < 3; ++s) {
    std::vector<int32_t> story(20 - s);
    for (int32_t &t : story)
      t = static_cast<int32_t>(rng() % c.vocab);
    stories.push_back(story);
  }
  auto e = q::ModelEvaluator::create(transformer, rotations, stories, 4);
  ASSERT_TRUE(bool(e)) << llvm::toString(e.takeError());
  EXPECT_EQ(e->predictions(), (19 - 4) + (18 - 4) + (17 - 4));
  EXPECT_EQ(e->meanTokens(), 19);

  auto score = [&](q::Setting s) {
    auto metrics = e->evaluate(s);
    EXPECT_TRUE(bool(metrics));
    return metrics ? *metrics : q::ModelMetrics();
  };
  const int64_t D = c.headDim();
  // The longest story, 20 tokens, is last read at position 18: a window or
  // a buffer of 19 tokens sees all of it, one of 18 does not.
  for (q::Setting lossless :
       {q::Setting{q::Method::Swan, D, 4}, q::Setting{q::Method::LowRank, D, 0},
        q::Setting{q::Method::SlidingWindow, 19, 0},
        q::Setting{q::Method::Swan, 1, 19},
        q::Setting{q::Method::SwanNoBuffer, 1, 0, false, false}}) {
    q::ModelMetrics lm = score(lossless);
    // Rotating there and back in float leaves rounding, no more.
    EXPECT_LT(lm.kl, 1e-8) << q::methodName(lossless.method).str();
    EXPECT_LT(std::fabs(lm.nllChange), 1e-5);
    EXPECT_EQ(lm.top1, 1.0);
  }
  q::ModelMetrics int8 = score({q::Method::Int8, 8, 0});
  q::ModelMetrics int4 = score({q::Method::Int4, 4, 0});
  q::ModelMetrics k1 = score({q::Method::SwanNoBuffer, 1, 0});
  q::ModelMetrics window = score({q::Method::SlidingWindow, 2, 0});
  EXPECT_GT(int8.kl, 1e-6);
  EXPECT_LT(int8.kl, int4.kl);
  EXPECT_GT(k1.kl, int8.kl);
  EXPECT_GT(window.kl, int8.kl);
  // One token lost at one position: small, and far above rounding.
  EXPECT_GT(score({q::Method::SlidingWindow, 18, 0}).kl, 1e-7);
  EXPECT_GT(score({q::Method::Swan, 1, 18}).kl, 1e-7);
}

TEST(ModelQualityTest, RejectsStoriesWithoutPredictions) {
  SmallModel m = SmallModel::random(tinyConfig(), 22);
  auto cp = m.load();
  ASSERT_TRUE(bool(cp));
  Transformer transformer(*cp);
  auto e = q::ModelEvaluator::create(transformer, {}, {{1, 2, 3}}, 0);
  ASSERT_FALSE(bool(e));
  EXPECT_NE(llvm::toString(e.takeError()).find("rotations for 0 layers"),
            std::string::npos);
  ModelRotations r;
  r.keys.resize(2);
  r.values.resize(2);
  e = q::ModelEvaluator::create(transformer, r, {{1, 2, 3}}, 2);
  ASSERT_FALSE(bool(e));
  EXPECT_NE(llvm::toString(e.takeError()).find("no prediction"),
            std::string::npos);
}

} // namespace
