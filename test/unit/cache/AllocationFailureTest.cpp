//===- AllocationFailureTest.cpp - injected malloc failures in the cache --===//
//
// This executable replaces malloc and realloc (glibc lets a program
// interpose them) so that the n-th large allocation made during one call
// fails. For every n until the call succeeds, the call must return
// OutOfMemory and leave the cache exactly as it was: token counts, bytes and
// the decompressed contents bit for bit. Not built with AddressSanitizer,
// which owns malloc itself.
//
//===----------------------------------------------------------------------===//

#include "swan/Cache.h"

#include "RandomOrthogonal.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <utility>

extern "C" void *__libc_malloc(size_t);
extern "C" void *__libc_realloc(void *, size_t);

namespace {
// Token storage and append scratch are at least this large at the test's
// shape; bookkeeping (vectors of pages, map nodes, messages) is smaller and
// is never failed, as libswan has no way to report those.
constexpr size_t kLarge = 1024;
thread_local bool armed = false;
thread_local long countdown = -1; // large allocations left before a failure
thread_local long injected = 0;

bool shouldFail(size_t size) {
  if (!armed || size < kLarge)
    return false;
  if (countdown-- == 0) {
    ++injected;
    return true;
  }
  return false;
}
} // namespace

extern "C" void *malloc(size_t size) {
  return shouldFail(size) ? nullptr : __libc_malloc(size);
}
extern "C" void *realloc(void *p, size_t size) {
  return shouldFail(size) ? nullptr : __libc_realloc(p, size);
}

using namespace swan;

namespace {

struct Snapshot {
  std::vector<int64_t> tokens;
  size_t bytes;
  std::vector<std::vector<float>> keys, values;
  bool operator==(const Snapshot &o) const {
    return tokens == o.tokens && bytes == o.bytes && keys == o.keys &&
           values == o.values;
  }
};

Snapshot observe(const Cache &cache) {
  Snapshot s;
  s.bytes = cache.bytes();
  for (int32_t seq = 0; seq < 3; ++seq) {
    s.tokens.push_back(cache.tokens(seq));
    auto d = cache.decompress(seq);
    if (!d) {
      llvm::consumeError(d.takeError());
      s.keys.emplace_back();
      s.values.emplace_back();
      continue;
    }
    s.keys.push_back(d->keys);
    s.values.push_back(d->values);
  }
  return s;
}

/// Runs `call` with the n-th large allocation failing, n = 0, 1, ... until
/// no failure is injected; returns how many failures were injected.
template <typename Call> long failEachAllocation(Cache &cache, Call call) {
  long failures = 0;
  for (long n = 0;; ++n) {
    Snapshot before = observe(cache);
    countdown = n;
    injected = 0;
    armed = true;
    llvm::Error e = call();
    armed = false;
    if (!injected) {
      EXPECT_FALSE(bool(e)) << llvm::toString(std::move(e));
      return failures;
    }
    ++failures;
    if (!e) {
      // Only rewinnow's shrinking realloc may fail silently: it keeps the
      // old, larger block, which the byte count then still reports.
      continue;
    }
    bool oom = false;
    llvm::handleAllErrors(std::move(e), [&](const CacheError &error) {
      oom = error.getCode() == CacheErrorCode::OutOfMemory;
    });
    EXPECT_TRUE(oom) << "failure " << n << " is not OutOfMemory";
    EXPECT_TRUE(observe(cache) == before)
        << "failure " << n << " changed the cache";
  }
}

/// The key and the value encoding, in that order.
using Encodings = std::pair<ValueEncoding, ValueEncoding>;

class AllocationFailureTest : public ::testing::TestWithParam<Encodings> {};

/// Index pages, value masks, and keys and values both as masks: their pages
/// differ in size and layout.
TEST_P(AllocationFailureTest, EveryFailingAllocationLeavesTheCacheIntact) {
  std::mt19937_64 rng(0xa11c + int(GetParam().second) +
                      4 * int(GetParam().first));
  CacheConfig config;
  config.keyEncoding = GetParam().first;
  config.valueEncoding = GetParam().second;
  config.headDim = 128;
  config.numKvHeads = 4;
  config.groupSize = 2;
  config.bufferTokens = 16;
  config.maxSequences = 3;
  config.kKey = 24;
  config.kValue = 16;
  config.pageTokens = 8;
  auto created = Cache::create(config,
                               test::randomOrthogonal(4, 128, rng),
                               test::randomOrthogonal(4, 128, rng));
  ASSERT_TRUE(bool(created)) << llvm::toString(created.takeError());
  Cache cache = std::move(*created);
  std::vector<float> keys = test::randomFloats(100 * 4 * 128, rng),
                     values = test::randomFloats(100 * 4 * 128, rng);
  long total = 0;
  // A new sequence (buffer allocated), a prefill spanning pages, decode
  // steps that fill the last page, then re-winnowing.
  total += failEachAllocation(
      cache, [&] { return cache.append(0, 3, keys.data(), values.data()); });
  total += failEachAllocation(
      cache, [&] { return cache.append(0, 60, keys.data(), values.data()); });
  total += failEachAllocation(
      cache, [&] { return cache.append(1, 100, keys.data(), values.data()); });
  for (int step = 0; step < 5; ++step)
    total += failEachAllocation(
        cache, [&] { return cache.append(0, 1, keys.data(), values.data()); });
  total += failEachAllocation(cache, [&] { return cache.rewinnow(8, 8); });
  // Scratch, staging, buffer and every page of each call, and the shrinking
  // reallocs of rewinnow.
  EXPECT_GE(total, 30);
  std::printf("%ld allocation failures injected\n", total);
  EXPECT_EQ(cache.tokens(0), 68);
  EXPECT_EQ(cache.tokens(1), 100);
}

INSTANTIATE_TEST_SUITE_P(
    Encodings, AllocationFailureTest,
    ::testing::Values(Encodings(ValueEncoding::Indices, ValueEncoding::Indices),
                      Encodings(ValueEncoding::Indices, ValueEncoding::Mask),
                      Encodings(ValueEncoding::Mask, ValueEncoding::Mask)),
    [](const auto &info) {
      return info.param.first == ValueEncoding::Mask    ? "masks"
             : info.param.second == ValueEncoding::Mask ? "mask"
                                                        : "indices";
    });

} // namespace
