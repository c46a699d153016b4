//===- RealModelTest.cpp - stories15M decoding through SWAN caches --------===//
//
// The model scripts/setup fetched (a failure, saying so, where it is absent):
// greedy decoding through f32 SWAN caches at k = D follows the dense path
// token for token and writes the story the model is known for; at k < D
// every layer's cache attention inside the running model equals the
// float64 reference on the cache's own decompressed tokens.
//
//===----------------------------------------------------------------------===//

#include "ModelFixture.h"

#include "swan/Runtime/Eval/ModelCalibration.h"
#include "swan/Runtime/Eval/Reference.h"
#include "swan/Runtime/Model/Attention.h"
#include "swan/Runtime/Model/ModelFiles.h"
#include "swan/Runtime/Model/Tokenizer.h"

#include "llvm/Support/FileSystem.h"

#include "gtest/gtest.h"

using namespace swan;
using namespace swan::model;

namespace {

class RealModelTest : public ::testing::Test {
protected:
  void SetUp() override {
    // scripts/test fetches the model before it builds: a missing one is a
    // broken setup, not a reason to pass.
    ASSERT_TRUE(llvm::sys::fs::exists(defaultModelPath()))
        << defaultModelPath() << " is missing; scripts/setup fetches it";
    auto cp = Checkpoint::load(defaultModelPath());
    ASSERT_TRUE(bool(cp)) << llvm::toString(cp.takeError());
    checkpoint = std::make_unique<Checkpoint>(std::move(*cp));
    auto tok =
        Tokenizer::load(defaultTokenizerPath(), checkpoint->config().vocab);
    ASSERT_TRUE(bool(tok)) << llvm::toString(tok.takeError());
    tokenizer = std::make_unique<Tokenizer>(std::move(*tok));
    transformer = std::make_unique<Transformer>(*checkpoint);
  }

  ModelRotations rotations() {
    std::mt19937_64 rng(99);
    return test::randomModelRotations(checkpoint->config(), rng);
  }

  std::unique_ptr<Checkpoint> checkpoint;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Transformer> transformer;
};

TEST_F(RealModelTest, GreedyThroughTheCacheAtFullKFollowsDense) {
  const ModelConfig &c = checkpoint->config();
  ModelRotations r = rotations();
  CacheConfig config;
  config.kKey = config.kValue = c.headDim();
  config.bufferTokens = 32;
  config.maxSequences = 1;
  config.storage = StorageType::F32;
  auto swanCache = CacheAttention::create(c, config, r.keys, r.values);
  ASSERT_TRUE(bool(swanCache)) << llvm::toString(swanCache.takeError());
  DenseAttention dense(c);

  std::vector<int32_t> ids = {Tokenizer::kBos};
  for (int step = 0; step < 100; ++step) {
    const int64_t at = ids.size() - 1;
    auto a = transformer->forward(ids.back(), at, *swanCache);
    auto b = transformer->forward(ids.back(), at, dense);
    ASSERT_TRUE(a && b);
    ASSERT_EQ(argmax(*a), argmax(*b)) << "step " << step;
    ids.push_back(argmax(*b));
  }
  // The story llama2.c's run.c writes greedily from BOS with this model.
  EXPECT_EQ(tokenizer->decode(ids).rfind(
                "Once upon a time, there was a little girl named Lily. She "
                "loved to play outside in the sunshine. One day, she saw a "
                "big, red ball in the sky.",
                0),
            0u)
      << tokenizer->decode(ids);
}

/// Checks every decode step's cache attention against the float64
/// reference on what the cache holds after the append.
class CheckedCacheAttention : public LayerAttention {
public:
  CheckedCacheAttention(CacheAttention &inner, const ModelRotations &r,
                        const ModelConfig &c)
      : inner(inner), rot(r), cfg(c) {}

  llvm::Error attend(int32_t layer, int64_t first, int64_t n, const float *q,
                     const float *k, const float *v, float *out) override {
    if (llvm::Error e = inner.attend(layer, first, n, q, k, v, out))
      return e;
    if (n != 1)
      return llvm::Error::success();
    auto rows = inner.cache(layer).decompress(CacheAttention::kSequence);
    if (!rows)
      return rows.takeError();
    const int64_t D = cfg.headDim(), H = cfg.kvHeads, G = cfg.group();
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> keys, values;
      for (int64_t t = 0; t < rows->tokens; ++t) {
        keys.insert(keys.end(), rows->keys.begin() + (t * H + h) * D,
                    rows->keys.begin() + (t * H + h + 1) * D);
        values.insert(values.end(), rows->values.begin() + (t * H + h) * D,
                      rows->values.begin() + (t * H + h + 1) * D);
      }
      std::vector<double> rk(rot.keys[layer].begin() + h * D * D,
                             rot.keys[layer].begin() + (h + 1) * D * D);
      std::vector<double> rv(rot.values[layer].begin() + h * D * D,
                             rot.values[layer].begin() + (h + 1) * D * D);
      std::vector<double> qh(q + h * G * D, q + (h + 1) * G * D);
      std::vector<double> want = reference::rotateBack(
          reference::attention(reference::rotate(qh, G, D, rk), G, keys, values,
                               rows->tokens, D, 1.0 / std::sqrt(double(D))),
          G, D, rv);
      for (int64_t i = 0; i < G * D; ++i) {
        worst = std::max(worst, std::fabs(out[h * G * D + i] - want[i]));
        norm = std::max(norm, std::fabs(want[i]));
      }
    }
    ++checked;
    return llvm::Error::success();
  }

  CacheAttention &inner;
  const ModelRotations &rot;
  ModelConfig cfg;
  double worst = 0.0, norm = 0.0;
  int checked = 0;
};

TEST_F(RealModelTest, CacheAttentionInTheModelEqualsTheReference) {
  const ModelConfig &c = checkpoint->config();
  ModelRotations r = rotations();
  CacheConfig config;
  config.kKey = 16;
  config.kValue = 24;
  config.bufferTokens = 8;
  config.pageTokens = 16;
  config.maxSequences = 1;
  config.storage = StorageType::F32;
  auto swanCache = CacheAttention::create(c, config, r.keys, r.values);
  ASSERT_TRUE(bool(swanCache)) << llvm::toString(swanCache.takeError());
  CheckedCacheAttention checkedCache(*swanCache, r, c);
  std::vector<int32_t> ids = tokenizer->encode(
      "Once upon a time, there was a big dog named Max. Max liked", true);
  auto logits = transformer->forward(ids, 0, checkedCache);
  ASSERT_TRUE(bool(logits)) << llvm::toString(logits.takeError());
  for (int step = 0; step < 4; ++step) {
    ids.push_back(argmax(*logits));
    logits = transformer->forward(ids.back(), ids.size() - 1, checkedCache);
    ASSERT_TRUE(bool(logits)) << llvm::toString(logits.takeError());
  }
  EXPECT_EQ(checkedCache.checked, 4 * c.layers);
  EXPECT_LT(checkedCache.worst, 1e-5 * std::max(1.0, checkedCache.norm));
}

} // namespace
