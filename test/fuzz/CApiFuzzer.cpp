//===- CApiFuzzer.cpp - libFuzzer target for sequences of C API calls -----===//
//
// The input picks a cache shape, then a sequence of create-time-valid or
// invalid calls: append (some with NaN or huge values), set_k, rewinnow,
// attention, release. After every call the fuzzer checks the status against
// its own model of which sequences exist, the token count of every sequence,
// that a failing call changed nothing, and after each successful attention
// every output element against the float64 reference on the decompressed
// cache. Any mismatch aborts (a crash for libFuzzer). One input bit puts
// the cache on SWAN_DEVICE_CUDA over the stand-in driver of
// test/lib/FakeCudaDriver.cpp (at a shape with embedded GPU kernels).
// Built with SWAN_ENABLE_FUZZERS=ON:
//   build-fuzz/bin/swan-capi-fuzzer -max_total_time=60 test/fuzz/corpus/capi
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/Eval/Reference.h"
#include "swan/swan.h"

#include "CacheHandle.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <vector>

namespace {

/// Reads bytes from the input; zeros once it is exhausted.
class Input {
public:
  Input(const uint8_t *data, size_t size) : data(data), size(size) {}
  uint8_t byte() { return pos < size ? data[pos++] : 0; }
  bool done() const { return pos >= size; }

private:
  const uint8_t *data;
  size_t size, pos = 0;
};

[[noreturn]] void fail(const char *what, long long a = 0, long long b = 0) {
  std::fprintf(stderr, "swan-capi-fuzzer: %s (%lld, %lld); last error: %s\n",
               what, a, b, swan_last_error());
  std::abort();
}

/// One seeded orthogonal matrix per head, rounded to f32.
std::vector<float> rotations(int64_t heads, int64_t d, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> out;
  for (int64_t h = 0; h < heads; ++h) {
    std::vector<double> r = swan::reference::randomOrthogonal(d, rng);
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

struct Checker {
  swan_cache_config config;
  std::vector<float> rotK, rotV;
  swan_cache *cache = nullptr;
  std::map<int32_t, int64_t> model; // sequence -> tokens
  std::mt19937_64 rng;

  int64_t rowFloats() const {
    return int64_t(config.num_kv_heads) * config.head_dim;
  }
  int64_t queryFloats() const { return rowFloats() * config.group_size; }

  /// Token counts of every id the input can name, and the byte total, match
  /// the model.
  void checkCounts(const char *after) {
    for (int32_t seq = 0; seq < 6; ++seq) {
      auto it = model.find(seq);
      int64_t want = it == model.end() ? -1 : it->second;
      if (swan_cache_tokens(cache, seq) != want)
        fail(after, seq, swan_cache_tokens(cache, seq));
    }
    if (model.empty() && swan_cache_bytes(cache) != 0)
      fail("bytes held with no sequence", swan_cache_bytes(cache));
  }

  /// The reference on what the cache holds: rotate the query, attend over
  /// the decompressed (rotated, winnowed) rows, rotate back unless the
  /// cache returns rotated outputs.
  void checkAttention(const std::vector<int32_t> &seqs, const float *q,
                      float scale, const float *out) {
    const int64_t d = config.head_dim, g = config.group_size;
    for (size_t i = 0; i < seqs.size(); ++i) {
      auto stored = cache->cache.decompress(seqs[i]);
      if (!stored)
        fail("decompress failed", seqs[i]);
      for (int64_t h = 0; h < config.num_kv_heads; ++h) {
        std::vector<double> keys, values;
        for (int64_t t = 0; t < stored->tokens; ++t)
          for (int64_t j = 0; j < d; ++j) {
            keys.push_back(stored->keys[(t * config.num_kv_heads + h) * d + j]);
            values.push_back(
                stored->values[(t * config.num_kv_heads + h) * d + j]);
          }
        std::vector<double> rk(rotK.begin() + h * d * d,
                               rotK.begin() + (h + 1) * d * d);
        std::vector<double> rv(rotV.begin() + h * d * d,
                               rotV.begin() + (h + 1) * d * d);
        const float *query = q + (i * config.num_kv_heads + h) * g * d;
        std::vector<double> expected = swan::reference::attention(
            swan::reference::rotate({query, query + g * d}, g, d, rk), g, keys,
            values, stored->tokens, d, scale);
        if (!config.output_rotated)
          expected = swan::reference::rotateBack(expected, g, d, rv);
        const float *got = out + (i * config.num_kv_heads + h) * g * d;
        for (int64_t e = 0; e < g * d; ++e)
          if (!(std::fabs(got[e] - expected[e]) <=
                2e-3 * (1.0 + std::fabs(expected[e]))))
            fail("attention differs from the reference", seqs[i], e);
      }
    }
  }

  std::vector<float> tokens(int64_t n, float magnitude) {
    std::normal_distribution<float> normal(0.0f, magnitude);
    std::vector<float> x(std::max<int64_t>(n, 1) * rowFloats());
    for (float &v : x)
      v = normal(rng);
    return x;
  }

  void run(Input &in) {
    for (int step = 0; step < 64 && !in.done(); ++step) {
      uint8_t op = in.byte() % 6;
      int32_t seq = in.byte() % 6;
      bool known = model.count(seq) != 0;
      size_t bytesBefore = swan_cache_bytes(cache);
      switch (op) {
      case 0:
      case 1: { // append, the common call
        int32_t n = in.byte() % 24;
        uint8_t kind = in.byte();
        // 1 in 8 appends carries a NaN, 1 in 8 a row too large
        // for fp16.
        std::vector<float> k = tokens(n, 1.0f), v = tokens(n, 1.0f);
        bool nonFinite = n > 0 && kind % 8 == 1;
        // A row of norm > 1e6: some rotated component exceeds fp16's 65504.
        bool huge = n > 0 && kind % 8 == 2;
        if (nonFinite)
          ((kind & 16) ? k : v)[(kind >> 5) % k.size()] = NAN;
        if (huge)
          for (int64_t j = 0; j < config.head_dim; ++j)
            ((kind & 16) ? k : v)[j] = j % 2 ? 1e6f : -1e6f;
        // fp16 overflows, unless the row leaves at once (n > b) into int8
        // winnowed storage, whose scale keeps any finite magnitude.
        bool direct = config.winnowed_storage == SWAN_WINNOWED_INT8 &&
                      n > config.buffer_tokens;
        bool overflows = huge && config.dtype == SWAN_DTYPE_F16 && !direct;
        bool room = known || int32_t(model.size()) < config.max_sequences;
        swan_status s = swan_cache_append(cache, seq, n, k.data(), v.data());
        swan_status want = (!room || nonFinite || overflows)
                               ? SWAN_ERR_INVALID_ARGUMENT
                               : SWAN_OK;
        if (s != want)
          fail("append status", s, want);
        if (s == SWAN_OK)
          model[seq] += n;
        else if (swan_cache_bytes(cache) != bytesBefore)
          fail("failed append changed the bytes");
        break;
      }
      case 2:
      case 3: { // set_k / rewinnow, sometimes out of range
        int32_t kk = int32_t(in.byte() % (config.head_dim + 2));
        int32_t kv = int32_t(in.byte() % (config.head_dim + 2));
        bool valid = kk >= 1 && kk <= config.head_dim && kv >= 1 &&
                     kv <= config.head_dim;
        swan_status s = op == 2 ? swan_cache_set_k(cache, kk, kv)
                                : swan_cache_rewinnow(cache, kk, kv);
        if (s != (valid ? SWAN_OK : SWAN_ERR_INVALID_ARGUMENT))
          fail("set_k/rewinnow status", s, kk);
        if (s == SWAN_OK && op == 3 && swan_cache_bytes(cache) > bytesBefore)
          fail("rewinnow grew the cache");
        break;
      }
      case 4: { // attention over up to three listed ids
        int32_t count = 1 + in.byte() % 3;
        std::vector<int32_t> seqs;
        bool valid = true;
        for (int32_t i = 0; i < count; ++i) {
          int32_t id = (seq + i * (1 + in.byte() % 3)) % 6;
          seqs.push_back(id);
          auto it = model.find(id);
          valid &= it != model.end() && it->second > 0;
        }
        float scale = (in.byte() % 4 + 1) / std::sqrt(float(config.head_dim));
        std::vector<float> q = tokens(count * config.group_size, 1.0f);
        q.resize(count * queryFloats());
        std::vector<float> out(q.size(), NAN);
        swan_status s = swan_cache_attention(cache, count, seqs.data(),
                                             q.data(), scale, out.data());
        if (s != (valid ? SWAN_OK : SWAN_ERR_INVALID_ARGUMENT))
          fail("attention status", s, valid);
        if (s == SWAN_OK)
          checkAttention(seqs, q.data(), scale, out.data());
        break;
      }
      case 5: { // release
        swan_status s = swan_cache_release(cache, seq);
        if (s != (known ? SWAN_OK : SWAN_ERR_INVALID_ARGUMENT))
          fail("release status", s, known);
        model.erase(seq);
        break;
      }
      }
      checkCounts("token counts differ from the model");
    }
  }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  Input in(data, size);
  // Few shapes, so that the JIT compiles each once per process.
  static const int32_t dims[] = {16, 32};
  static const int32_t groups[] = {1, 3};
  Checker c;
  std::memset(&c.config, 0, sizeof(c.config));
  uint8_t shape = in.byte();
  c.config.head_dim = dims[shape & 1];
  c.config.group_size = groups[(shape >> 1) & 1];
  c.config.dtype = (shape >> 2) & 1 ? SWAN_DTYPE_F16 : SWAN_DTYPE_F32;
  c.config.values_prerotated = (shape >> 3) & 1;
  c.config.output_rotated = (shape >> 4) & 1;
  c.config.num_kv_heads = 1 + ((shape >> 5) & 1);
  // AUTO twice as often: it mixes both encodings in one sequence.
  static const swan_value_encoding encodings[] = {
      SWAN_ENCODING_AUTO, SWAN_ENCODING_INDICES, SWAN_ENCODING_MASK,
      SWAN_ENCODING_AUTO};
  c.config.value_encoding = encodings[shape >> 6];
  uint8_t sizes = in.byte();
  c.config.buffer_tokens = 1 + sizes % 6;
  c.config.page_tokens = 1 + (sizes >> 3) % 8;
  const bool cuda = sizes >> 7;
  // The sequence count uses two bits of its byte; the next two draw the key
  // encoding the same way, the next the winnowed storage (SWAN-Q8).
  uint8_t sequences = in.byte();
  c.config.max_sequences = 1 + sequences % 4;
  c.config.key_encoding = encodings[(sequences >> 2) & 3];
  c.config.winnowed_storage =
      (sequences >> 4) & 1 ? SWAN_WINNOWED_INT8 : SWAN_WINNOWED_AS_DTYPE;
  c.config.k_key = 1 + in.byte() % c.config.head_dim;
  c.config.k_value = 1 + in.byte() % c.config.head_dim;
  c.config.device = SWAN_DEVICE_CPU;
  if (cuda) {
    // The GPU kernels exist for D = 64, G = 1 or 4, keys and values in one
    // encoding (AUTO follows the other).
    c.config.device = SWAN_DEVICE_CUDA;
    c.config.winnowed_storage = SWAN_WINNOWED_AS_DTYPE; // CPU only
    c.config.head_dim = 64;
    c.config.group_size = c.config.group_size == 1 ? 1 : 4;
    c.config.k_key = 1 + c.config.k_key * 4 % 64;
    c.config.k_value = 1 + c.config.k_value * 4 % 64;
    for (swan_value_encoding *e :
         {&c.config.value_encoding, &c.config.key_encoding})
      if (*e == SWAN_ENCODING_MASK &&
          (c.config.value_encoding == SWAN_ENCODING_INDICES ||
           c.config.key_encoding == SWAN_ENCODING_INDICES))
        *e = SWAN_ENCODING_AUTO;
    setenv("SWAN_CUDA_DRIVER", SWAN_TEST_CUDA_DRIVER, 1);
  }
  c.rng.seed(in.byte());
  c.rotK = rotations(c.config.num_kv_heads, c.config.head_dim, 1);
  c.rotV = rotations(c.config.num_kv_heads, c.config.head_dim, 2);
  if (swan_cache_create(&c.config, c.rotK.data(), c.rotV.data(), &c.cache) !=
      SWAN_OK)
    fail("create failed");
  c.run(in);
  swan_cache_destroy(c.cache);
  return 0;
}
