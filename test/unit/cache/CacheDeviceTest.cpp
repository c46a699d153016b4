//===- CacheDeviceTest.cpp - one C API, two devices -----------------------===//
//
// A SWAN_DEVICE_CUDA cache over the stand-in driver of test/lib (host
// memory, the generated kernels in the kernel emulator; SWAN_CUDA_DRIVER
// names it) next to a CPU cache fed the same tokens: the same calls must
// give the same attention (within f16 storage), the same token counts,
// memory that shrinks on re-winnowing on both, and for bad arguments the
// same status and the same message. Each test runs with the default
// encodings and with keys and values as occupancy masks on both devices.
//
//===----------------------------------------------------------------------===//

#include "swan/swan.h"

#include "RandomOrthogonal.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>

using swan::test::randomFloats;
using swan::test::randomOrthogonal;

namespace {

constexpr int32_t kDim = 64, kHeads = 2, kGroup = 4, kBuffer = 8;

swan_cache_config configFor(swan_device device) {
  swan_cache_config c = {};
  c.head_dim = kDim;
  c.num_kv_heads = kHeads;
  c.group_size = kGroup;
  c.buffer_tokens = kBuffer;
  c.max_sequences = 4;
  c.k_key = 16;
  c.k_value = 24;
  c.dtype = SWAN_DTYPE_F16;
  c.device = device;
  return c;
}

class CacheDeviceTest : public ::testing::TestWithParam<swan_value_encoding> {
protected:
  void SetUp() override {
    std::mt19937_64 setup(0xdec0de);
    rotK = randomOrthogonal(kHeads, kDim, setup);
    rotV = randomOrthogonal(kHeads, kDim, setup);
    swan_cache_config c = configFor(SWAN_DEVICE_CPU);
    c.key_encoding = c.value_encoding = GetParam();
    ASSERT_EQ(swan_cache_create(&c, rotK.data(), rotV.data(), &cpu), SWAN_OK)
        << swan_last_error();
    c.device = SWAN_DEVICE_CUDA;
    setenv("SWAN_CUDA_DRIVER", SWAN_TEST_CUDA_DRIVER, 1);
    swan_status status = swan_cache_create(&c, rotK.data(), rotV.data(), &gpu);
    unsetenv("SWAN_CUDA_DRIVER");
    ASSERT_EQ(status, SWAN_OK) << swan_last_error();
  }
  void TearDown() override {
    swan_cache_destroy(cpu);
    swan_cache_destroy(gpu);
  }

  void append(int32_t seq, int32_t n) {
    auto keys = randomFloats(n * kHeads * kDim, rng);
    auto values = randomFloats(n * kHeads * kDim, rng, 0.5);
    for (swan_cache *c : {cpu, gpu})
      ASSERT_EQ(swan_cache_append(c, seq, n, keys.data(), values.data()),
                SWAN_OK)
          << swan_last_error();
    EXPECT_EQ(swan_cache_tokens(gpu, seq), swan_cache_tokens(cpu, seq));
  }

  /// The worst relative difference of an output row between the devices.
  double compareAttention(const std::vector<int32_t> &seqs) {
    const size_t rows = seqs.size() * kHeads * kGroup;
    auto q = randomFloats(rows * kDim, rng);
    std::vector<float> onCpu(rows * kDim), onGpu(rows * kDim, NAN);
    const float scale = 1.0f / std::sqrt(float(kDim));
    EXPECT_EQ(swan_cache_attention(cpu, seqs.size(), seqs.data(), q.data(),
                                   scale, onCpu.data()),
              SWAN_OK)
        << swan_last_error();
    EXPECT_EQ(swan_cache_attention(gpu, seqs.size(), seqs.data(), q.data(),
                                   scale, onGpu.data()),
              SWAN_OK)
        << swan_last_error();
    double worst = 0;
    for (size_t r = 0; r < rows; ++r) {
      double diff = 0, norm = 0;
      for (int32_t j = 0; j < kDim; ++j) {
        double a = onCpu[r * kDim + j], b = onGpu[r * kDim + j];
        diff += (a - b) * (a - b);
        norm += a * a;
      }
      double error = std::sqrt(diff / std::max(norm, 1e-300));
      worst = std::max(worst, std::isnan(error) ? INFINITY : error);
    }
    return worst;
  }

  /// Runs one failing call on both caches: same status, same message.
  template <typename Call> void expectSameRefusal(Call call) {
    swan_status onCpu = call(cpu);
    std::string cpuMessage = swan_last_error();
    swan_status onGpu = call(gpu);
    EXPECT_NE(onCpu, SWAN_OK);
    EXPECT_EQ(onGpu, onCpu);
    EXPECT_EQ(std::string(swan_last_error()), cpuMessage);
  }

  std::mt19937_64 rng{0xfeed};
  std::vector<float> rotK, rotV;
  swan_cache *cpu = nullptr, *gpu = nullptr;
};

// The CPU's f32 rotation and the stand-in's double one can pick a different
// component on a near tie: rare, and a small change to one token of many.
constexpr double kTolerance = 5e-4;

TEST_P(CacheDeviceTest, SameCallsSameResults) {
  append(0, 30);
  append(1, 3);
  for (int i = 0; i < 10; ++i)
    append(1, 1);
  EXPECT_LT(compareAttention({0, 1}), kTolerance);

  for (swan_cache *c : {cpu, gpu})
    ASSERT_EQ(swan_cache_set_k(c, 8, 12), SWAN_OK);
  append(0, 5);
  append(1, 2);
  EXPECT_LT(compareAttention({1, 0, 1}), kTolerance);

  const size_t cpuBytes = swan_cache_bytes(cpu),
               gpuBytes = swan_cache_bytes(gpu);
  for (swan_cache *c : {cpu, gpu})
    ASSERT_EQ(swan_cache_rewinnow(c, 6, 10), SWAN_OK) << swan_last_error();
  EXPECT_LT(swan_cache_bytes(cpu), cpuBytes);
  EXPECT_LT(swan_cache_bytes(gpu), gpuBytes);
  EXPECT_LT(compareAttention({0, 1}), kTolerance);
  EXPECT_EQ(swan_cache_break_even_tokens(gpu),
            swan_cache_break_even_tokens(cpu));

  for (swan_cache *c : {cpu, gpu})
    ASSERT_EQ(swan_cache_release(c, 1), SWAN_OK);
  EXPECT_EQ(swan_cache_tokens(gpu, 1), -1);
  EXPECT_LT(compareAttention({0}), kTolerance);
}

TEST_P(CacheDeviceTest, SameRefusalsSameMessages) {
  append(0, 12);
  auto keys = randomFloats(kHeads * kDim, rng);
  auto values = randomFloats(kHeads * kDim, rng);
  auto q = randomFloats(kHeads * kGroup * kDim, rng);
  std::vector<float> out(q.size());
  const int32_t known = 0, unknown = 7;
  expectSameRefusal([&](swan_cache *c) {
    auto bad = keys;
    bad[5] = NAN;
    return swan_cache_append(c, 0, 1, bad.data(), values.data());
  });
  expectSameRefusal([&](swan_cache *c) {
    std::vector<float> huge(keys.size(), 1e6f); // beyond fp16 once rotated
    return swan_cache_append(c, 0, 1, huge.data(), values.data());
  });
  expectSameRefusal([&](swan_cache *c) {
    return swan_cache_append(c, -1, 1, keys.data(), values.data());
  });
  expectSameRefusal([&](swan_cache *c) {
    return swan_cache_attention(c, 1, &unknown, q.data(), 1.0f, out.data());
  });
  expectSameRefusal([&](swan_cache *c) {
    auto bad = q;
    bad[0] = INFINITY;
    return swan_cache_attention(c, 1, &known, bad.data(), 1.0f, out.data());
  });
  expectSameRefusal([&](swan_cache *c) { return swan_cache_set_k(c, 0, 4); });
  expectSameRefusal(
      [&](swan_cache *c) { return swan_cache_rewinnow(c, 8, kDim + 1); });
  expectSameRefusal([&](swan_cache *c) { return swan_cache_release(c, 9); });
  // Nothing above changed either cache.
  EXPECT_EQ(swan_cache_tokens(gpu, 0), 12);
  EXPECT_LT(compareAttention({0}), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(
    Encodings, CacheDeviceTest,
    ::testing::Values(SWAN_ENCODING_AUTO, SWAN_ENCODING_MASK),
    [](const auto &info) {
      return std::string(info.param == SWAN_ENCODING_MASK ? "Masks" : "Auto");
    });

// The GPU kernels read keys and values in one encoding: a CUDA cache that
// asks for indices and masks at once is refused up front.
TEST(CacheDeviceConfigTest, MixedEncodingsAreRefusedOnCuda) {
  std::mt19937_64 setup(0xdec0de);
  auto rotK = randomOrthogonal(kHeads, kDim, setup);
  auto rotV = randomOrthogonal(kHeads, kDim, setup);
  swan_cache_config c = configFor(SWAN_DEVICE_CUDA);
  c.key_encoding = SWAN_ENCODING_INDICES;
  c.value_encoding = SWAN_ENCODING_MASK;
  setenv("SWAN_CUDA_DRIVER", SWAN_TEST_CUDA_DRIVER, 1);
  swan_cache *refused = nullptr;
  EXPECT_EQ(swan_cache_create(&c, rotK.data(), rotV.data(), &refused),
            SWAN_ERR_UNSUPPORTED);
  unsetenv("SWAN_CUDA_DRIVER");
  EXPECT_NE(std::string(swan_last_error()).find("in one encoding"),
            std::string::npos)
      << swan_last_error();
  EXPECT_EQ(refused, nullptr);
}

} // namespace
