//===- TransformerTest.cpp - the forward pass and its caches --------------===//
//
// On random small models: the runner's logits against the float64 forward
// pass, a prompt at once against token by token, and the swan::Cache path
// at k = D against the dense one.
//
//===----------------------------------------------------------------------===//

#include "ModelFixture.h"

#include "swan/Runtime/Eval/Reference.h"
#include "swan/Runtime/Model/Attention.h"

#include "gtest/gtest.h"

using namespace swan;
using namespace swan::model;
using namespace swan::test;

namespace {

std::vector<int32_t> randomTokens(int64_t n, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(n);
  for (int32_t &t : ids)
    t = static_cast<int32_t>(rng() % vocab);
  return ids;
}

double maxRelativeError(llvm::ArrayRef<float> got,
                        llvm::ArrayRef<double> want) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, std::fabs(got[i] - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  return diff / scale;
}

/// Identity rotations for every layer.
std::vector<std::vector<float>> identities(const ModelConfig &c) {
  const int64_t D = c.headDim();
  std::vector<float> eye(int64_t(c.kvHeads) * D * D, 0.0f);
  for (int64_t h = 0; h < c.kvHeads; ++h)
    for (int64_t i = 0; i < D; ++i)
      eye[(h * D + i) * D + i] = 1.0f;
  return std::vector<std::vector<float>>(c.layers, eye);
}

TEST(TransformerTest, MatchesTheFloat64ForwardPass) {
  for (bool shared : {true, false}) {
    SmallModel m = SmallModel::random(tinyConfig(shared), 11);
    auto cp = m.load();
    ASSERT_TRUE(bool(cp)) << llvm::toString(cp.takeError());
    Transformer transformer(*cp);
    std::vector<int32_t> ids = randomTokens(m.config.seqLen, m.config.vocab, 5);
    DenseAttention dense(cp->config());
    auto logits = transformer.forward(ids, 0, dense, /*allLogits=*/true);
    ASSERT_TRUE(bool(logits)) << llvm::toString(logits.takeError());
    EXPECT_LT(maxRelativeError(*logits, m.referenceLogits(ids)), 1e-5);
  }
}

TEST(TransformerTest, TokenByTokenEqualsAPrompt) {
  SmallModel m = SmallModel::random(tinyConfig(), 12);
  auto cp = m.load();
  ASSERT_TRUE(bool(cp));
  Transformer transformer(*cp);
  const int32_t vocab = m.config.vocab;
  std::vector<int32_t> ids = randomTokens(m.config.seqLen, vocab, 6);
  DenseAttention whole(cp->config()), steps(cp->config());
  auto all = transformer.forward(ids, 0, whole, /*allLogits=*/true);
  ASSERT_TRUE(bool(all));
  // A prompt of 5, then one token at a time.
  auto prompt =
      transformer.forward(llvm::ArrayRef(ids).take_front(5), 0, steps);
  ASSERT_TRUE(bool(prompt));
  std::vector<double> want(all->begin() + 4 * vocab, all->begin() + 5 * vocab);
  EXPECT_LT(maxRelativeError(*prompt, want), 1e-5);
  for (size_t t = 5; t < ids.size(); ++t) {
    auto one = transformer.forward(ids[t], t, steps);
    ASSERT_TRUE(bool(one));
    want.assign(all->begin() + t * vocab, all->begin() + (t + 1) * vocab);
    EXPECT_LT(maxRelativeError(*one, want), 1e-5) << "token " << t;
  }
  EXPECT_EQ(steps.tokens(), int64_t(ids.size()));
}

TEST(TransformerTest, CacheAtFullKEqualsDense) {
  // D = 16 and G = 1, as the cache's kernels take them.
  ModelConfig c = tinyConfig();
  c.dim = 64;
  c.kvHeads = c.heads;
  SmallModel m = SmallModel::random(c, 13);
  auto cp = m.load();
  ASSERT_TRUE(bool(cp));
  Transformer transformer(*cp);
  CacheConfig config;
  config.kKey = config.kValue = c.headDim();
  config.bufferTokens = 4;
  config.pageTokens = 8;
  config.maxSequences = 1;
  config.storage = StorageType::F32;
  auto cache = CacheAttention::create(c, config, identities(c), identities(c));
  ASSERT_TRUE(bool(cache)) << llvm::toString(cache.takeError());
  DenseAttention dense(c);
  std::vector<int32_t> ids = randomTokens(c.seqLen, c.vocab, 7);
  const int64_t prompt = 9; // more than the buffer: the bulk compress path
  auto a =
      transformer.forward(llvm::ArrayRef(ids).take_front(prompt), 0, *cache);
  auto b =
      transformer.forward(llvm::ArrayRef(ids).take_front(prompt), 0, dense);
  ASSERT_TRUE(a && b);
  EXPECT_LT(maxRelativeError(*a, std::vector<double>(b->begin(), b->end())),
            1e-5);
  for (int64_t t = prompt; t < c.seqLen; ++t) {
    a = transformer.forward(ids[t], t, *cache);
    b = transformer.forward(ids[t], t, dense);
    ASSERT_TRUE(a && b) << "token " << t;
    EXPECT_LT(maxRelativeError(*a, std::vector<double>(b->begin(), b->end())),
              1e-5)
        << "token " << t;
  }
  EXPECT_EQ(cache->cache(0).tokens(CacheAttention::kSequence), c.seqLen);
}

TEST(TransformerTest, RejectsBadTokensPositionsAndGaps) {
  SmallModel m = SmallModel::random(tinyConfig(), 14);
  auto cp = m.load();
  ASSERT_TRUE(bool(cp));
  Transformer transformer(*cp);
  DenseAttention dense(cp->config());
  auto error = [&](llvm::ArrayRef<int32_t> ids, int64_t position) {
    auto r = transformer.forward(ids, position, dense);
    return r ? std::string() : llvm::toString(r.takeError());
  };
  EXPECT_NE(error(40, 0).find("token 40 is outside the vocabulary of 40"),
            std::string::npos);
  EXPECT_NE(error(-1, 0).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(error(1, 24).find("exceed the model's context of 24"),
            std::string::npos);
  EXPECT_NE(error({}, 0).find("no tokens"), std::string::npos);
  // Position 3 when the cache holds none: a gap.
  EXPECT_NE(error(1, 3).find("holds 0"), std::string::npos);
  EXPECT_EQ(dense.tokens(), 0);
}

} // namespace
