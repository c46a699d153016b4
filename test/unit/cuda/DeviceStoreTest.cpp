//===- DeviceStoreTest.cpp - the GPU token store against the reference ----===//
//
// swan::cuda::DeviceStore, the storage behind a SWAN_DEVICE_CUDA cache,
// through a life of appends (bulk and token by token, around the ring),
// k lowered and raised, re-winnowing, a refused append and a release. After
// each step every stored row must be the top k of its rotated original, the
// byte count must follow the layout, and decode attention must equal the
// float64 reference on the decompressed cache.
//
// Part of swan-cuda-tests, which runs twice: against the real driver (skips
// without a GPU) and, with SWAN_CUDA_DRIVER naming test/lib/FakeCudaDriver.cpp
// (a stand-in on host memory that runs the generated kernels in the kernel
// emulator), on every machine.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CUDA/DeviceStore.h"
#include "swan/Runtime/Eval/Reference.h"

#include "FakeCudaDriver.h"
#include "RandomOrthogonal.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <sstream>

using namespace swan;
using namespace swan::cuda;
using namespace swan::test;

namespace {

#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    Status status_ = (expr);                                                   \
    ASSERT_TRUE(status_.isOk()) << status_.message();                          \
  } while (0)

struct Shape {
  int64_t dim, group;
  StorageType storage;
  int32_t kKey, kValue;
  SparseEncoding encoding = SparseEncoding::Indices;
};

std::ostream &operator<<(std::ostream &os, const Shape &s) {
  return os << "D" << s.dim << "_G" << s.group
            << (s.storage == StorageType::F16 ? "_f16" : "_f32") << "_k"
            << s.kKey << "_" << s.kValue
            << (s.encoding == SparseEncoding::Mask ? "_masks" : "");
}

constexpr int64_t kHeads = 2;
constexpr int64_t kBuffer = 8;

class CudaCacheTest : public ::testing::TestWithParam<Shape> {
protected:
  void SetUp() override {
    const Shape &p = GetParam();
    shape.dim = p.dim;
    shape.kvHeads = kHeads;
    shape.group = p.group;
    shape.bufferTokens = kBuffer;
    shape.storage = p.storage;
    shape.encoding = p.encoding;
    rotK = randomOrthogonal(kHeads, p.dim, rng);
    rotV = randomOrthogonal(kHeads, p.dim, rng);
    Status s = DeviceStore::create(shape, rotK.data(), rotV.data(), cache);
    if (s.code() == StatusCode::Unsupported)
      GTEST_SKIP() << "no CUDA GPU here: " << s.message();
    ASSERT_TRUE(s.isOk()) << s.message();
    kKey = p.kKey;
    kValue = p.kValue;
  }

  int64_t rowFloats() const { return kHeads * shape.dim; }
  double rounding() const {
    return shape.storage == StorageType::F16 ? 1e-3 : 1e-5;
  }

  void append(int32_t seq, int64_t n) {
    auto keys = randomFloats(n * rowFloats(), rng);
    auto values = randomFloats(n * rowFloats(), rng, 0.5);
    ASSERT_OK(cache->append(seq, n, keys.data(), values.data(), kKey, kValue));
    appended(seq, n, keys, values);
  }

  /// The model's side of a successful append.
  void appended(int32_t seq, int64_t n, const std::vector<float> &keys,
                const std::vector<float> &values) {
    Model &m = model[seq];
    int64_t before = std::max<int64_t>(0, m.tokens - kBuffer);
    m.keys.insert(m.keys.end(), keys.begin(), keys.end());
    m.values.insert(m.values.end(), values.begin(), values.end());
    m.tokens += n;
    for (int64_t t = before; t < std::max<int64_t>(0, m.tokens - kBuffer);
         ++t) {
      m.keyK.push_back(kKey);
      m.valueK.push_back(kValue);
    }
  }

  void rewinnow(int32_t newKey, int32_t newValue) {
    ASSERT_OK(cache->rewinnow(newKey, newValue));
    rewinnowed(newKey, newValue);
  }

  /// The model's side of a successful rewinnow.
  void rewinnowed(int32_t newKey, int32_t newValue) {
    kKey = newKey;
    kValue = newValue;
    for (auto &[seq, m] : model)
      for (size_t t = 0; t < m.keyK.size(); ++t) {
        m.keyK[t] = std::min(m.keyK[t], newKey);
        m.valueK[t] = std::min(m.valueK[t], newValue);
      }
  }

  /// Every stored row against its rotated original; the byte count against
  /// the layout.
  void checkContents(int32_t seq) {
    const Model &m = model.at(seq);
    const int64_t d = shape.dim;
    SequenceRows rows;
    ASSERT_OK(cache->decompress(seq, rows));
    ASSERT_EQ(rows.tokens, m.tokens);
    const int64_t winnowed = m.keyK.size();
    for (int64_t t = 0; t < m.tokens; ++t) {
      ASSERT_EQ(rows.inBuffer[t], t >= winnowed) << "token " << t;
      ASSERT_EQ(rows.keyK[t], t < winnowed ? m.keyK[t] : d) << "token " << t;
      ASSERT_EQ(rows.valueK[t], t < winnowed ? m.valueK[t] : d);
      for (int64_t h = 0; h < kHeads; ++h)
        for (bool isKey : {true, false}) {
          const int64_t at = (t * kHeads + h) * d;
          const float *original = (isKey ? m.keys : m.values).data() + at;
          std::vector<double> x(original, original + d);
          const float *r = (isKey ? rotK : rotV).data() + h * d * d;
          std::vector<double> y =
              reference::rotate(x, 1, d, std::vector<double>(r, r + d * d));
          const float *got = (isKey ? rows.keys : rows.values).data() + at;
          const int64_t k = isKey ? rows.keyK[t] : rows.valueK[t];
          int64_t nonzero = 0;
          double smallestKept = INFINITY, largestDropped = 0;
          for (int64_t i = 0; i < d; ++i) {
            if (got[i] != 0.0f) {
              ++nonzero;
              ASSERT_NEAR(got[i], y[i], rounding() * (1 + std::fabs(y[i])))
                  << "token " << t << " head " << h << " dim " << i;
              smallestKept = std::min(smallestKept, std::fabs(y[i]));
            } else {
              largestDropped = std::max(largestDropped, std::fabs(y[i]));
            }
          }
          ASSERT_LE(nonzero, k) << "token " << t << " head " << h;
          ASSERT_GE(nonzero, k - 1) << "token " << t << " head " << h;
          ASSERT_GE(smallestKept, largestDropped * (1 - 2 * rounding()) - 1e-6)
              << "token " << t << " head " << h;
        }
    }
    SequenceInfo info = cache->info(seq);
    EXPECT_EQ(info.bufferTokens, std::min<int64_t>(m.tokens, kBuffer));
    EXPECT_EQ(info.sparseTokens, winnowed);
    int32_t keyStride = 0, valueStride = 0;
    for (int64_t t = 0; t < winnowed; ++t) {
      keyStride = std::max(keyStride, m.keyK[t]);
      valueStride = std::max(valueStride, m.valueK[t]);
    }
    if (winnowed > 0) {
      EXPECT_GE(info.keyStride, keyStride);
      EXPECT_GE(info.valueStride, valueStride);
    }
    // Buffer plus store; the store's capacity is at least its tokens.
    const size_t e = elementBytes(shape.storage);
    const size_t ring = 2 * kHeads * kBuffer * d * e;
    const size_t perToken =
        kHeads * ((info.keyStride + info.valueStride) * e +
                  positionBytes(shape.encoding, d, info.keyStride) +
                  positionBytes(shape.encoding, d, info.valueStride));
    EXPECT_GE(info.bytes, ring + winnowed * perToken);
    EXPECT_EQ((info.bytes - ring) % std::max<size_t>(perToken, 1), 0u);
  }

  /// Decode attention against the float64 reference on the decompressed
  /// cache; returns the worst relative error of an output row.
  double checkAttention(const std::vector<int32_t> &seqs) {
    const int64_t d = shape.dim, g = shape.group, rows = kHeads * g * d;
    auto q = randomFloats(seqs.size() * rows, rng);
    std::vector<float> out(seqs.size() * rows,
                           std::numeric_limits<float>::quiet_NaN());
    const float scale = 1.0f / std::sqrt(float(d));
    Status s =
        cache->attention(seqs.data(), seqs.size(), q.data(), scale, out.data());
    EXPECT_TRUE(s.isOk()) << s.message();
    double worst = 0;
    for (size_t i = 0; i < seqs.size(); ++i) {
      SequenceRows stored;
      EXPECT_TRUE(cache->decompress(seqs[i], stored).isOk());
      for (int64_t h = 0; h < kHeads; ++h) {
        std::vector<double> keys(stored.tokens * d), values(stored.tokens * d);
        for (int64_t t = 0; t < stored.tokens; ++t)
          for (int64_t j = 0; j < d; ++j) {
            keys[t * d + j] = stored.keys[(t * kHeads + h) * d + j];
            values[t * d + j] = stored.values[(t * kHeads + h) * d + j];
          }
        auto rk = std::vector<double>(rotK.data() + h * d * d,
                                      rotK.data() + (h + 1) * d * d);
        auto rv = std::vector<double>(rotV.data() + h * d * d,
                                      rotV.data() + (h + 1) * d * d);
        keys = reference::rotateBack(keys, stored.tokens, d, rk);
        values = reference::rotateBack(values, stored.tokens, d, rv);
        const int64_t at = (i * kHeads + h) * g * d;
        auto want = reference::attention(
            std::vector<double>(q.data() + at, q.data() + at + g * d), g, keys,
            values, stored.tokens, d, scale);
        for (int64_t r = 0; r < g; ++r) {
          double diff = 0, norm = 0;
          for (int64_t j = 0; j < d; ++j) {
            double got = out[at + r * d + j];
            diff += (got - want[r * d + j]) * (got - want[r * d + j]);
            norm += want[r * d + j] * want[r * d + j];
          }
          double error = std::sqrt(diff / std::max(norm, 1e-300));
          worst = std::max(worst, std::isnan(error) ? INFINITY : error);
        }
      }
    }
    return worst;
  }

  struct Model {
    std::vector<float> keys, values; // originals, [t][H][D]
    int64_t tokens = 0;
    std::vector<int32_t> keyK, valueK; // per winnowed token
  };

  CacheShape shape;
  std::mt19937_64 rng{0x5eed};
  std::vector<float> rotK, rotV;
  std::unique_ptr<DeviceStore> cache;
  std::map<int32_t, Model> model;
  int32_t kKey = 0, kValue = 0;
};

constexpr double kTolerance = 5e-4;

TEST_P(CudaCacheTest, ALifeOfAppendsKChangesAndRewinnowing) {
  // A prompt in bulk (most tokens straight to the store) and a sequence
  // that grows token by token, around the ring more than once.
  append(0, 40);
  append(1, 5);
  for (int i = 0; i < 13; ++i)
    append(1, 1);
  for (int32_t seq : {0, 1})
    checkContents(seq);
  EXPECT_LT(checkAttention({0, 1, 0}), kTolerance);

  // Lower k: new tokens are padded to the stride.
  kKey = std::max(1, kKey - 8);
  kValue = std::max(1, kValue - 4);
  append(0, 10);
  append(1, 2);
  for (int32_t seq : {0, 1})
    checkContents(seq);
  EXPECT_LT(checkAttention({1, 0}), kTolerance);

  // Higher k: the store is laid out again at the wider stride.
  kKey = std::min<int32_t>(shape.dim, GetParam().kKey + 8);
  append(1, 3);
  checkContents(1);
  EXPECT_LT(checkAttention({1}), kTolerance);

  // Re-winnowing shrinks the strides and gives memory back.
  const size_t before = cache->bytes();
  rewinnow(std::max(1, GetParam().kKey - 12),
           std::max(1, GetParam().kValue - 12));
  EXPECT_LT(cache->bytes(), before);
  for (int32_t seq : {0, 1})
    checkContents(seq);
  EXPECT_LT(checkAttention({0, 1}), kTolerance);

  // A refused append (a rotated component beyond the storage type) leaves
  // the sequence as it was.
  if (shape.storage == StorageType::F16) {
    SequenceRows was, is;
    ASSERT_OK(cache->decompress(1, was));
    const size_t bytes = cache->bytes();
    std::vector<float> keys(rowFloats(), 1e6f), values(rowFloats(), 0.5f);
    Status s = cache->append(1, 1, keys.data(), values.data(), kKey, kValue);
    EXPECT_EQ(s.code(), StatusCode::InvalidArgument) << s.message();
    EXPECT_NE(s.message().find("overflows the fp16 storage"), std::string::npos)
        << s.message();
    ASSERT_OK(cache->decompress(1, is));
    EXPECT_EQ(is.keys, was.keys);
    EXPECT_EQ(is.values, was.values);
    EXPECT_EQ(cache->bytes(), bytes);
  }

  const size_t withBoth = cache->bytes();
  cache->release(1);
  EXPECT_FALSE(cache->contains(1));
  EXPECT_LT(cache->bytes(), withBoth);
  EXPECT_EQ(cache->bytes(), cache->info(0).bytes);
  checkContents(0);
  EXPECT_LT(checkAttention({0}), kTolerance);
}

// The stand-in's device memory is fenced by inaccessible pages and starts
// undefined, so that the emulated kernels and the cache can neither read
// past a buffer nor count on zeroed memory without a test noticing.
TEST(FakeDeviceMemoryTest, BuffersAreFencedAndStartUndefined) {
  std::unique_ptr<Device> device;
  if (Status s = Device::open(device); !s.isOk())
    GTEST_SKIP() << "no CUDA driver here: " << s.message();
  if (!fakeDriverFunction<decltype(&swanFakeCudaAllocations)>(
          "swanFakeCudaAllocations"))
    GTEST_SKIP() << "this is the stand-in driver's memory";
  auto allocate = fakeDriverFunction<int (*)(unsigned long long *, size_t)>(
      "cuMemAlloc_v2");
  auto release =
      fakeDriverFunction<int (*)(unsigned long long)>("cuMemFree_v2");
  unsigned long long address = 0;
  ASSERT_EQ(allocate(&address, 1000), 0);
  EXPECT_EQ(address % 256, 0u);
  auto *bytes = reinterpret_cast<volatile unsigned char *>(address);
  for (int i = 0; i < 1000; ++i)
    ASSERT_EQ(bytes[i], 0xff) << "byte " << i;
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(bytes[1024] = 0, "");
  ASSERT_EQ(release(address), 0);
  EXPECT_DEATH((void)bytes[0], "");
}

TEST_P(CudaCacheTest, DecodeStepsAllocateNoDeviceMemory) {
  auto allocations = fakeDriverFunction<decltype(&swanFakeCudaAllocations)>(
      "swanFakeCudaAllocations");
  if (!allocations)
    GTEST_SKIP() << "device allocations are counted by the stand-in driver";
  // Ring full, store allocated (room for 256 tokens), staging kept.
  append(2, 20);
  append(2, 1);
  const uint64_t before = allocations();
  for (int i = 0; i < 30; ++i)
    append(2, 1);
  EXPECT_EQ(allocations(), before);
  checkContents(2);
  EXPECT_LT(checkAttention({2}), kTolerance);
}

/// Everything a caller can see of the cache.
struct Snapshot {
  size_t bytes;
  std::map<int32_t, SequenceRows> rows;
  std::map<int32_t, SequenceInfo> info;
};

Snapshot snapshot(const DeviceStore &cache, const std::vector<int32_t> &seqs) {
  Snapshot s{cache.bytes(), {}, {}};
  for (int32_t seq : seqs) {
    EXPECT_TRUE(cache.decompress(seq, s.rows[seq]).isOk());
    s.info[seq] = cache.info(seq);
  }
  return s;
}

void expectSame(const Snapshot &was, const Snapshot &is, const char *call,
                int64_t fault) {
  SCOPED_TRACE(std::string(call) + ", driver call " + std::to_string(fault) +
               " failing");
  EXPECT_EQ(is.bytes, was.bytes);
  for (const auto &[seq, rows] : was.rows) {
    const SequenceRows &now = is.rows.at(seq);
    EXPECT_EQ(now.tokens, rows.tokens) << "sequence " << seq;
    EXPECT_EQ(now.keys, rows.keys) << "sequence " << seq;
    EXPECT_EQ(now.values, rows.values) << "sequence " << seq;
    EXPECT_EQ(now.keyK, rows.keyK) << "sequence " << seq;
    EXPECT_EQ(now.valueK, rows.valueK) << "sequence " << seq;
    EXPECT_EQ(now.inBuffer, rows.inBuffer) << "sequence " << seq;
    const SequenceInfo &a = was.info.at(seq), &b = is.info.at(seq);
    EXPECT_EQ(b.bytes, a.bytes) << "sequence " << seq;
    EXPECT_EQ(b.keyStride, a.keyStride) << "sequence " << seq;
    EXPECT_EQ(b.valueStride, a.valueStride) << "sequence " << seq;
    EXPECT_EQ(b.maxKeyNorm, a.maxKeyNorm) << "sequence " << seq;
  }
}

using FailAfter = decltype(&swanFakeCudaFailAfter);

TEST_P(CudaCacheTest, AFailedCallLeavesTheCacheAsItWas) {
  auto failAfter = fakeDriverFunction<FailAfter>("swanFakeCudaFailAfter");
  if (!failAfter)
    GTEST_SKIP() << "driver faults are injected by the stand-in driver";
  // Every kind but what commits an append (device-to-device copies and the
  // synchronisation after them: the next two tests).
  const unsigned kinds =
      kFakeAllocation | kFakeCopyToDevice | kFakeCopyToHost | kFakeLaunch;
  append(0, 20);
  append(1, 3);
  const std::vector<int32_t> seqs{0, 1};

  // Runs `call` with the n-th driver call failing, for n = 0, 1, ... until
  // the call makes fewer driver calls than that and succeeds; every failed
  // attempt must report the fault and leave the cache as it was.
  auto everyFault = [&](const char *name, const std::function<Status()> &call) {
    for (int64_t n = 0;; ++n) {
      ASSERT_LT(n, 10000) << name << " never succeeded";
      Snapshot was = snapshot(*cache, seqs);
      failAfter(n, kinds);
      Status st = call();
      failAfter(-1, 0);
      if (st.isOk())
        return;
      EXPECT_TRUE(st.code() == StatusCode::OutOfMemory ||
                  st.code() == StatusCode::DriverError)
          << name << ": " << st.message();
      expectSame(was, snapshot(*cache, seqs), name, n);
      if (::testing::Test::HasFailure())
        return;
    }
  };
  auto appendCall = [&](const char *name, int32_t seq, int64_t n) {
    auto keys = randomFloats(n * rowFloats(), rng);
    auto values = randomFloats(n * rowFloats(), rng, 0.5);
    everyFault(name, [&] {
      return cache->append(seq, n, keys.data(), values.data(), kKey, kValue);
    });
    if (!::testing::Test::HasFailure())
      appended(seq, n, keys, values);
  };

  appendCall("a decode step", 1, 1);
  appendCall("a step that leaves the buffer", 0, 1);
  appendCall("a new sequence", 2, 12);
  model.erase(2);
  cache->release(2);
  // Past the store's first 256 rows, with staging of its own.
  appendCall("a prefill that grows the store", 0, 300);
  kKey = std::max(1, kKey - 4);
  appendCall("an append below the stride (padded)", 1, 9);
  kKey = std::min<int32_t>(shape.dim, GetParam().kKey + 4);
  appendCall("an append above the stride (re-laid out)", 1, 9);
  for (int32_t seq : seqs)
    checkContents(seq);

  const int32_t newKey = std::max(1, GetParam().kKey - 8);
  const int32_t newValue = std::max(1, GetParam().kValue - 8);
  everyFault("rewinnow", [&] { return cache->rewinnow(newKey, newValue); });
  rewinnowed(newKey, newValue);
  for (int32_t seq : seqs)
    checkContents(seq);

  const int64_t rows = kHeads * shape.group * shape.dim;
  auto q = randomFloats(2 * rows, rng);
  std::vector<float> out(2 * rows);
  everyFault("attention", [&] {
    return cache->attention(seqs.data(), 2, q.data(), 0.1f, out.data());
  });
  EXPECT_LT(checkAttention(seqs), kTolerance);
}

TEST_P(CudaCacheTest, AFailedCopyIntoAGrownStoreChangesNothing) {
  auto failAfter = fakeDriverFunction<FailAfter>("swanFakeCudaFailAfter");
  if (!failAfter)
    GTEST_SKIP() << "driver faults are injected by the stand-in driver";
  append(0, 20);
  append(1, 20);
  // Past the first 256 rows: the store is copied into a larger one before
  // the commit's own device copies.
  const int64_t n = 300;
  auto keys = randomFloats(n * rowFloats(), rng);
  auto values = randomFloats(n * rowFloats(), rng, 0.5);
  int64_t unchanged = 0;
  for (int64_t fault = 0;; ++fault) {
    ASSERT_LT(fault, 10000);
    Snapshot was = snapshot(*cache, {0, 1});
    failAfter(fault, kFakeCopyOnDevice);
    Status st = cache->append(0, n, keys.data(), values.data(), kKey, kValue);
    failAfter(-1, 0);
    ASSERT_FALSE(st.isOk()) << "the commit copies never failed";
    if (st.message().find("is lost") != std::string::npos)
      break; // the commit's copies: the previous test
    expectSame(was, snapshot(*cache, {0, 1}), "a store growth", fault);
    ++unchanged;
  }
  EXPECT_GT(unchanged, 0);
  checkContents(1);
}

TEST_P(CudaCacheTest, AFaultWhileCommittingLosesOnlyThatSequence) {
  auto failAfter = fakeDriverFunction<FailAfter>("swanFakeCudaFailAfter");
  if (!failAfter)
    GTEST_SKIP() << "driver faults are injected by the stand-in driver";
  for (int32_t seq : {0, 1, 2})
    append(seq, 20);
  auto keys = randomFloats(rowFloats(), rng);
  auto values = randomFloats(rowFloats(), rng);
  // A decode step with the `n`-th call of `kinds` failing.
  auto step = [&](int32_t seq, int64_t n, unsigned kinds) {
    failAfter(n, kinds);
    Status st = cache->append(seq, 1, keys.data(), values.data(), kKey, kValue);
    failAfter(-1, 0);
    EXPECT_EQ(st.code(), StatusCode::DriverError) << st.message();
    return st;
  };

  // The first synchronisation comes before the commit (kernel faults
  // surface there): the step changes nothing.
  Snapshot was = snapshot(*cache, {0, 1, 2});
  Status st = step(1, 0, kFakeSynchronize);
  expectSame(was, snapshot(*cache, {0, 1, 2}), "a decode step", 0);
  EXPECT_EQ(st.message().find("lost"), std::string::npos) << st.message();

  // A device copy of the commit, or the synchronisation after them, fails:
  // that sequence is lost, and says so to every call but release.
  const size_t bytes = cache->bytes();
  for (auto [seq, kinds] :
       {std::pair(1, kFakeCopyOnDevice), std::pair(2, kFakeSynchronize)}) {
    st = step(seq, kinds == kFakeSynchronize ? 1 : 0, kinds);
    const std::string lost = "sequence " + std::to_string(seq) + " is lost";
    EXPECT_NE(st.message().find(lost), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("release it"), std::string::npos)
        << st.message();
    SequenceRows rows;
    EXPECT_EQ(cache->decompress(seq, rows).message(), st.message());
    EXPECT_EQ(cache->append(seq, 1, keys.data(), values.data(), kKey, kValue)
                  .message(),
              st.message());
    const int64_t q = kHeads * shape.group * shape.dim;
    auto queries = randomFloats(2 * q, rng);
    std::vector<float> out(2 * q);
    const int32_t pair[] = {0, seq};
    EXPECT_EQ(
        cache->attention(pair, 2, queries.data(), 0.1f, out.data()).message(),
        st.message());
  }
  EXPECT_EQ(cache->bytes(), bytes);
  checkContents(0);
  EXPECT_LT(checkAttention({0}), kTolerance);

  // Release gives the ids back.
  for (int32_t seq : {1, 2}) {
    cache->release(seq);
    model.erase(seq);
    append(seq, 3);
    checkContents(seq);
  }
  EXPECT_LT(checkAttention({0, 1, 2}), kTolerance);
}

TEST_P(CudaCacheTest, KEqualToDIsDenseAttention) {
  kKey = kValue = static_cast<int32_t>(shape.dim);
  append(3, 25);
  checkContents(3);
  EXPECT_LT(checkAttention({3}), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaCacheTest,
    ::testing::Values(
        Shape{64, 1, StorageType::F32, 16, 24},
        Shape{128, 4, StorageType::F16, 32, 32},
        Shape{128, 8, StorageType::F16, 20, 48},
        Shape{256, 4, StorageType::F32, 40, 24},
        Shape{64, 1, StorageType::F32, 16, 24, SparseEncoding::Mask},
        Shape{128, 8, StorageType::F16, 20, 48, SparseEncoding::Mask}),
    [](const ::testing::TestParamInfo<Shape> &info) {
      std::ostringstream name;
      name << info.param;
      return name.str();
    });

} // namespace
