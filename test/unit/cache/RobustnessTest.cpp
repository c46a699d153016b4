//===- RobustnessTest.cpp - extreme logits, threads and limits of the cache ===//
//
// What a long-running server meets: logits far outside the usual range,
// caches shared between threads, and caches filled to their limits. Results
// are checked against the float64 reference on the decompressed cache.
//
//===----------------------------------------------------------------------===//

#include "swan/Cache.h"
#include "swan/Runtime/Eval/Reference.h"
#include "swan/swan.h"

#include "RandomOrthogonal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

using namespace swan;
using swan::test::randomFloats;
using swan::test::randomOrthogonal;

namespace {

/// True when the call failed; the error is consumed (threads count them).
bool failed(llvm::Error error) {
  if (!error)
    return false;
  llvm::consumeError(std::move(error));
  return true;
}

#define ASSERT_OK(call)                                                        \
  do {                                                                         \
    llvm::Error error_ = (call);                                               \
    ASSERT_FALSE(bool(error_))                                                 \
        << #call << ": " << llvm::toString(std::move(error_));                 \
  } while (false)

/// The float64 reference of one sequence's attention on what the cache holds
/// (rotated keys and values with the dropped entries zero).
std::vector<double> referenceAttention(const Cache &cache, int32_t seq,
                                       const float *q, float scale,
                                       const std::vector<float> &rotK,
                                       const std::vector<float> &rotV) {
  const CacheConfig &c = cache.config();
  const int64_t d = c.headDim, h = c.numKvHeads, g = c.groupSize;
  auto stored = cache.decompress(seq);
  EXPECT_TRUE(bool(stored));
  std::vector<double> out;
  for (int64_t head = 0; head < h; ++head) {
    std::vector<double> keys, values;
    for (int64_t t = 0; t < stored->tokens; ++t)
      for (int64_t j = 0; j < d; ++j) {
        keys.push_back(stored->keys[(t * h + head) * d + j]);
        values.push_back(stored->values[(t * h + head) * d + j]);
      }
    std::vector<double> rk(rotK.begin() + head * d * d,
                           rotK.begin() + (head + 1) * d * d),
        rv(rotV.begin() + head * d * d, rotV.begin() + (head + 1) * d * d);
    std::vector<double> query(q + head * g * d, q + (head + 1) * g * d);
    std::vector<double> o = reference::rotateBack(
        reference::attention(reference::rotate(query, g, d, rk), g, keys,
                             values, stored->tokens, d, scale),
        g, d, rv);
    out.insert(out.end(), o.begin(), o.end());
  }
  return out;
}

struct Fixture {
  CacheConfig config;
  std::vector<float> rotK, rotV;
  std::unique_ptr<Cache> cache;
  Fixture(const CacheConfig &c, std::mt19937_64 &rng) : config(c) {
    rotK = randomOrthogonal(c.numKvHeads, c.headDim, rng);
    rotV = randomOrthogonal(c.numKvHeads, c.headDim, rng);
    auto created = Cache::create(c, rotK, rotV);
    EXPECT_TRUE(bool(created)) << llvm::toString(created.takeError());
    cache = std::make_unique<Cache>(std::move(*created));
  }
  int64_t queryFloats() const {
    return int64_t(config.numKvHeads) * config.groupSize * config.headDim;
  }
};

CacheConfig smallConfig(StorageType storage) {
  CacheConfig c;
  c.headDim = 48;
  c.numKvHeads = 3;
  c.groupSize = 5;
  c.bufferTokens = 7;
  c.maxSequences = 4;
  c.kKey = 13;
  c.kValue = 9;
  c.storage = storage;
  c.pageTokens = 11;
  return c;
}

class ExtremeLogitsTest : public ::testing::TestWithParam<StorageType> {};

/// Logits up to ~1e30 (softmax is one-hot) and down to ~1e-30 (softmax is
/// uniform): the output stays finite and equals the reference.
TEST_P(ExtremeLogitsTest, SoftmaxStaysFiniteAndMatchesReference) {
  std::mt19937_64 rng(0x10917u + static_cast<int>(GetParam()));
  Fixture f(smallConfig(GetParam()), rng);
  const int64_t n = 61;
  std::vector<float> keys = randomFloats(n * 3 * 48, rng),
                     values = randomFloats(n * 3 * 48, rng);
  ASSERT_OK(f.cache->append(2, n, keys.data(), values.data()));
  for (float scale : {1e30f, 1e20f, 1e6f, 1.0f, 1e-6f, 1e-30f, 0.0f, -1e25f}) {
    std::vector<float> q = randomFloats(f.queryFloats(), rng);
    std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());
    int32_t seq = 2;
    llvm::Error e = f.cache->attention(seq, q.data(), scale, out.data());
    ASSERT_FALSE(bool(e)) << "scale " << scale << ": "
                          << llvm::toString(std::move(e));
    std::vector<double> expected =
        referenceAttention(*f.cache, 2, q.data(), scale, f.rotK, f.rotV);
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_TRUE(std::isfinite(out[i])) << "scale " << scale << " i " << i;
      // One-hot softmax: the output is one value row, exact up to the
      // rotations' rounding, unless two logits tie within f32 rounding.
      ASSERT_NEAR(out[i], expected[i], 2e-3 * (1 + std::fabs(expected[i])))
          << "scale " << scale << " i " << i;
    }
  }
}

/// Finite f32 values whose weighted sum leaves the f32 range: stored values
/// near FLT_MAX under equal logits sum to Inf. Reported as an argument error,
/// not returned as Inf.
TEST(ExtremeValuesTest, OutputBeyondF32IsReported) {
  std::mt19937_64 rng(0x7a1);
  CacheConfig config = smallConfig(StorageType::F32);
  config.valuesPrerotated = true; // stored as given: no rotation to overflow
  config.outputRotated = true;
  Fixture f(config, rng);
  std::vector<float> keys(2 * 3 * 48, 0.25f), values(2 * 3 * 48, 2e38f);
  ASSERT_OK(f.cache->append(0, 2, keys.data(), values.data()));
  std::vector<float> q(f.queryFloats(), 0.5f), out(q.size());
  int32_t seq = 0;
  llvm::Error e = f.cache->attention(seq, q.data(), 1.0f, out.data());
  ASSERT_TRUE(bool(e));
  EXPECT_NE(llvm::toString(std::move(e)).find("is not finite"),
            std::string::npos);
  // One such token alone is fine: the output is that value row.
  ASSERT_OK(f.cache->append(1, 1, keys.data(), values.data()));
  seq = 1;
  ASSERT_OK(f.cache->attention(seq, q.data(), 1.0f, out.data()));
  for (float x : out)
    ASSERT_NEAR(x, 2e38f, 1e33f);
}

INSTANTIATE_TEST_SUITE_P(Storage, ExtremeLogitsTest,
                         ::testing::Values(StorageType::F32, StorageType::F16));

//===----------------------------------------------------------------------===//
// Threads
//===----------------------------------------------------------------------===//

/// Documented in swan.h: different caches are independent, and attention
/// (like tokens and bytes) only reads its cache, so several threads may run
/// it on one cache at once. Each thread's output must be bit-identical to
/// the same call made alone.
TEST(ConcurrencyTest, ThreadsOnTheirOwnCachesAndAttentionOnOneShared) {
  constexpr int kThreads = 4;
  std::mt19937_64 rng(0xc0c0);
  CacheConfig config = smallConfig(StorageType::F16);
  std::vector<std::unique_ptr<Fixture>> own;
  for (int t = 0; t < kThreads; ++t)
    own.push_back(std::make_unique<Fixture>(config, rng));
  Fixture shared(config, rng);
  std::vector<float> keys = randomFloats(300 * 3 * 48, rng),
                     values = randomFloats(300 * 3 * 48, rng);
  for (int32_t s = 0; s < 3; ++s)
    ASSERT_OK(shared.cache->append(s, 100 * (s + 1) - 13 * s,
                                           keys.data(), values.data()));
  std::vector<std::vector<float>> queries, alone;
  const int32_t seqs[3] = {0, 1, 2};
  for (int t = 0; t < kThreads; ++t) {
    queries.push_back(randomFloats(3 * shared.queryFloats(), rng));
    alone.emplace_back(queries.back().size());
    ASSERT_OK(shared.cache->attention(seqs, queries[t].data(), 0.3f,
                                              alone[t].data()));
  }

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 local(1000 + t);
      Cache &mine = *own[t]->cache;
      std::vector<float> out(alone[t].size());
      for (int step = 0; step < 40; ++step) {
        // Own cache: appends, k changes, attention, release, all checked.
        std::vector<float> k = randomFloats(3 * 3 * 48, local),
                           v = randomFloats(3 * 3 * 48, local);
        int32_t seq = step % 3;
        int64_t before = mine.tokens(seq);
        if (failed(mine.append(seq, 3, k.data(), v.data())) ||
            mine.tokens(seq) != std::max<int64_t>(before, 0) + 3)
          ++failures;
        if (step % 10 == 9 && failed(mine.rewinnow(5 + t, 4)))
          ++failures;
        std::vector<float> q = randomFloats(own[t]->queryFloats(), local);
        std::vector<float> o(q.size());
        if (failed(mine.attention(seq, q.data(), 0.2f, o.data())))
          ++failures;
        std::vector<double> expected = referenceAttention(
            mine, seq, q.data(), 0.2f, own[t]->rotK, own[t]->rotV);
        for (size_t i = 0; i < o.size(); ++i)
          if (!(std::fabs(o[i] - expected[i]) <= 1e-3 * (1 + std::fabs(expected[i]))))
            ++failures;
        // Shared cache: read-only attention, bit-identical to the lone call.
        std::fill(out.begin(), out.end(), std::nanf(""));
        if (failed(shared.cache->attention(seqs, queries[t].data(), 0.3f,
                                           out.data())) ||
            std::memcmp(out.data(), alone[t].data(),
                        out.size() * sizeof(float)) != 0)
          ++failures;
      }
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
}

//===----------------------------------------------------------------------===//
// Limits
//===----------------------------------------------------------------------===//

/// max_sequences live sequences, no more; a released id frees its slot and
/// returns every byte; the cache stays usable and exact.
TEST(LimitsTest, MaxSequencesAndReuse) {
  std::mt19937_64 rng(0x11);
  CacheConfig config = smallConfig(StorageType::F32);
  config.maxSequences = 5;
  Fixture f(config, rng);
  std::vector<float> keys = randomFloats(40 * 3 * 48, rng),
                     values = randomFloats(40 * 3 * 48, rng);
  for (int32_t s = 0; s < 5; ++s)
    ASSERT_OK(f.cache->append(1000 * s + 1, 8 + s, keys.data(),
                                      values.data()));
  size_t bytes = f.cache->bytes();
  llvm::Error sixth = f.cache->append(77, 1, keys.data(), values.data());
  ASSERT_TRUE(bool(sixth));
  EXPECT_NE(llvm::toString(std::move(sixth)).find("max_sequences"),
            std::string::npos);
  EXPECT_EQ(f.cache->bytes(), bytes);
  EXPECT_EQ(f.cache->tokens(77), -1);
  // The largest id is a valid id too.
  ASSERT_OK(f.cache->release(2001));
  ASSERT_OK(f.cache->append(std::numeric_limits<int32_t>::max(), 40,
                                    keys.data(), values.data()));
  EXPECT_EQ(f.cache->tokens(std::numeric_limits<int32_t>::max()), 40);
  for (int32_t s : {1, 1001, 3001, 4001})
    ASSERT_OK(f.cache->release(s));
  ASSERT_OK(f.cache->release(std::numeric_limits<int32_t>::max()));
  EXPECT_EQ(f.cache->bytes(), 0u);
  EXPECT_EQ(f.cache->sequenceCount(), 0);
}

/// A long sequence grown one decode step at a time and by prefill chunks:
/// token counts exact at every step, hundreds of pages, attention exact.
TEST(LimitsTest, ManyTokensAndPages) {
  std::mt19937_64 rng(0x22);
  CacheConfig config = smallConfig(StorageType::F16);
  config.numKvHeads = 1;
  config.groupSize = 1;
  config.headDim = 16;
  config.pageTokens = 5;
  config.kKey = config.kValue = 3;
  Fixture f(config, rng);
  std::vector<float> keys = randomFloats(4099 * 16, rng),
                     values = randomFloats(4099 * 16, rng);
  int64_t expected = 0;
  for (int round = 0; round < 12; ++round) {
    int64_t n = round % 3 == 0 ? 4099 : 1 + round;
    ASSERT_OK(f.cache->append(0, n, keys.data(), values.data()));
    expected += n;
    ASSERT_EQ(f.cache->tokens(0), expected);
  }
  auto stats = f.cache->stats(0);
  ASSERT_TRUE(bool(stats));
  EXPECT_GE(stats->pages, expected / 5 - 1);
  std::vector<float> q = randomFloats(16, rng), out(16, std::nanf(""));
  int32_t seq = 0;
  ASSERT_OK(f.cache->attention(seq, q.data(), 0.25f, out.data()));
  std::vector<double> want =
      referenceAttention(*f.cache, 0, q.data(), 0.25f, f.rotK, f.rotV);
  for (int i = 0; i < 16; ++i)
    EXPECT_NEAR(out[i], want[i], 1e-4 * (1 + std::fabs(want[i])));
}

} // namespace
