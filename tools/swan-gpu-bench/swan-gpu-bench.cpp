//===- swan-gpu-bench.cpp - SWAN decode attention on a CUDA GPU -----------===//
//
// Prints, one line per figure: the device-to-device copy bandwidth of the
// GPU (the HBM reference of this run), then the time of one decode step of
// the generated flash-decoding kernels on a compressed cache and the bytes
// per second it reads; then the same step through the GPU cache
// (swan::cuda::DeviceStore: host query in, host output back) and its
// appends. Links no MLIR: it runs on the GPU machine as built on the
// development machine. A benchmark, not a test: it prints figures.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CUDA/DeviceStore.h"
#include "swan/Runtime/CUDA/Kernels.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace swan;
using namespace swan::cuda;

namespace {

bool report(const Status &s, const char *what) {
  if (s.isOk())
    return true;
  std::fprintf(stderr, "swan-gpu-bench: %s: %s\n", what, s.message().c_str());
  return false;
}

/// Random bytes for a buffer: the kernels' speed does not depend on values,
/// but indices must be valid and distinct per token, values finite.
Status fill(Device &device, Buffer &buffer, size_t bytes,
            const std::vector<uint8_t> &pattern) {
  if (Status s = device.allocate(bytes, buffer); !s.isOk())
    return s;
  std::vector<uint8_t> host(bytes);
  for (size_t i = 0; i < bytes; ++i)
    host[i] = pattern[i % pattern.size()];
  return device.copyToDevice(buffer, host.data(), bytes);
}

double copyBandwidth(Device &device, size_t bytes, int reps) {
  Buffer a, b;
  if (!report(device.allocate(bytes, a), "allocate") ||
      !report(device.allocate(bytes, b), "allocate"))
    return 0;
  float ms = 0;
  device.copyOnDevice(b, a, bytes); // warm-up
  if (!report(device.time(
                  [&] {
                    for (int i = 0; i < reps; ++i)
                      if (Status s = device.copyOnDevice(b, a, bytes);
                          !s.isOk())
                        return s;
                    return Status::ok();
                  },
                  ms),
              "copy"))
    return 0;
  // A copy reads and writes every byte.
  return 2.0 * bytes * reps / (ms * 1e-3);
}

struct Shape {
  int64_t batch, kvHeads, group, dim, sparseTokens, bufferTokens, k;
  int64_t splits = 0; // 0: the runtime chooses
  SparseEncoding encoding = SparseEncoding::Indices;
};

const char *encodingName(SparseEncoding encoding) {
  return encoding == SparseEncoding::Mask ? "masks" : "indices";
}

/// `reps` timed steps per figure, after 5 warm-up steps.
bool benchDecode(Device &device, const Shape &shape, double copyBytesPerSec,
                 int reps) {
  const int64_t B = shape.batch, H = shape.kvHeads, G = shape.group,
                D = shape.dim, L = shape.sparseTokens,
                b = shape.bufferTokens, k = shape.k;
  std::unique_ptr<DeviceKernels> set;
  if (!report(DeviceKernels::load(device, D, G, StorageType::F16, set), "load"))
    return false;
  std::mt19937 rng(7);
  std::vector<uint8_t> halfPattern(4096);
  for (size_t i = 0; i < halfPattern.size(); i += 2) {
    _Float16 h = static_cast<_Float16>(
        std::uniform_real_distribution<float>(-1, 1)(rng));
    std::memcpy(&halfPattern[i], &h, 2);
  }
  // Ascending, distinct indices per token: k components spread over D; or
  // the mask of the same components.
  const int64_t positions = positionBytes(shape.encoding, D, k);
  std::vector<uint8_t> indexPattern(k);
  for (int64_t j = 0; j < k; ++j)
    indexPattern[j] = static_cast<uint8_t>(j * D / k);
  if (shape.encoding == SparseEncoding::Mask) {
    std::vector<uint8_t> mask(positions);
    indicesMask(indexPattern.data(), k, D, mask.data());
    indexPattern = mask;
  }
  std::vector<uint8_t> floatPattern(4096);
  for (size_t i = 0; i < floatPattern.size(); i += 4) {
    float f = std::uniform_real_distribution<float>(-0.1f, 0.1f)(rng);
    std::memcpy(&floatPattern[i], &f, 4);
  }
  std::vector<int32_t> sparse(B, static_cast<int32_t>(L)),
      buffer(B, static_cast<int32_t>(b));
  std::vector<uint8_t> sparseBytes(B * 4), bufferBytes(B * 4);
  std::memcpy(sparseBytes.data(), sparse.data(), B * 4);
  std::memcpy(bufferBytes.data(), buffer.data(), B * 4);

  Buffer q, rk, rv, kv, ki, vv, vi, bk, bv, sl, bl, out;
  bool ok =
      report(fill(device, q, B * H * G * D * 4, floatPattern), "query") &&
      report(fill(device, rk, H * D * D * 4, floatPattern), "rk") &&
      report(fill(device, rv, H * D * D * 4, floatPattern), "rv") &&
      report(fill(device, kv, B * H * L * k * 2, halfPattern), "kv") &&
      report(fill(device, ki, B * H * L * positions, indexPattern), "ki") &&
      report(fill(device, vv, B * H * L * k * 2, halfPattern), "vv") &&
      report(fill(device, vi, B * H * L * positions, indexPattern), "vi") &&
      report(fill(device, bk, B * H * b * D * 2, halfPattern), "bk") &&
      report(fill(device, bv, B * H * b * D * 2, halfPattern), "bv") &&
      report(fill(device, sl, B * 4, sparseBytes), "sl") &&
      report(fill(device, bl, B * 4, bufferBytes), "bl") &&
      report(device.allocate(B * H * G * D * 4, out), "out");
  if (!ok)
    return false;

  DecodeProblem problem;
  problem.batch = B;
  problem.kvHeads = H;
  problem.sparseCapacity = L;
  problem.keyK = k;
  problem.valueK = k;
  problem.bufferCapacity = b;
  problem.scale = 1.0f / 11.3137f;
  problem.splits = shape.splits;
  problem.encoding = shape.encoding;
  DecodeBuffers buffers{q, rk, rv, kv, ki, vv, vi, bk, bv, sl, bl, out};
  for (int i = 0; i < 5; ++i)
    if (!report(set->decodeAttention(problem, buffers), "warm-up"))
      return false;
  if (!report(device.synchronize(), "warm-up"))
    return false;
  float ms = 0;
  if (!report(device.time(
                  [&] {
                    for (int i = 0; i < reps; ++i)
                      if (Status s = set->decodeAttention(problem, buffers);
                          !s.isOk())
                        return s;
                    return Status::ok();
                  },
                  ms),
              "decode"))
    return false;
  // Host time to enqueue one step: when it exceeds the GPU time, the
  // launches, not the kernels, set the pace.
  if (!report(device.synchronize(), "sync"))
    return false;
  auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i)
    if (!report(set->decodeAttention(problem, buffers), "enqueue"))
      return false;
  double enqueueUs = std::chrono::duration<double, std::micro>(
                         std::chrono::steady_clock::now() - begin)
                         .count() /
                     reps;
  if (!report(device.synchronize(), "sync"))
    return false;
  double seconds = ms * 1e-3 / reps;
  // Bytes a decode step must read: the compressed cache (an fp16 value per
  // kept component, and a uint8 index per component or a D-bit mask per
  // row) and the dense fp16 buffer. Rotations, query and the partials are
  // small and stay in L2.
  double cacheBytes =
      double(B) * H * (L * 2.0 * (2 * k + positions) + b * 4.0 * D);
  double denseBytes = double(B) * H * (L + b) * 4.0 * D;
  std::printf(
      "decode B=%lld H=%lld G=%lld D=%lld L_sparse=%lld b=%lld "
      "k=%lld %s splits=%lld: %.2f us, compressed cache %.2f MB "
      "(dense fp16 would be %.2f MB), %.0f GB/s = %.1f %% of copy "
      "bandwidth; host enqueue %.2f us\n",
      (long long)B, (long long)H, (long long)G, (long long)D, (long long)L,
      (long long)b, (long long)k, encodingName(shape.encoding),
      (long long)(shape.splits ? shape.splits : set->chooseSplits(problem)),
      seconds * 1e6, cacheBytes / 1e6, denseBytes / 1e6,
      cacheBytes / seconds / 1e9,
      100.0 * cacheBytes / seconds / copyBytesPerSec, enqueueUs);
  return true;
}

/// The GPU cache at `batch` sequences of `tokens` tokens each: the prompt
/// appended at once (winnowed on the GPU), then per decode step one token
/// appended and attention over the batch from host queries to host outputs,
/// as a serving loop calls them (the prefill and append times are the first
/// sequence's).
bool benchCache(int64_t tokens, int64_t batch, SparseEncoding encoding,
                int reps) {
  const int64_t H = 8, G = 4, D = 128;
  const int32_t k = 32;
  CacheShape shape;
  shape.dim = D;
  shape.kvHeads = H;
  shape.group = G;
  shape.bufferTokens = 128;
  shape.encoding = encoding;
  // Any orthogonal matrix serves a timing: the identity.
  std::vector<float> rotation(H * D * D, 0.0f);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < D; ++i)
      rotation[(h * D + i) * D + i] = 1.0f;
  std::unique_ptr<DeviceStore> cache;
  if (!report(
          DeviceStore::create(shape, rotation.data(), rotation.data(), cache),
          "cache"))
    return false;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::vector<float> keys(tokens * H * D), values(tokens * H * D);
  for (float &x : keys)
    x = uniform(rng);
  for (float &x : values)
    x = uniform(rng);
  auto seconds = [](auto begin) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                         begin)
        .count();
  };
  // Every sequence holds the same tokens: the timing does not depend on
  // their values.
  const int64_t lastRow = (tokens - 1) * H * D;
  double prefill = 0, append = 0;
  std::vector<int32_t> seqs;
  for (int32_t seq = 0; seq < batch; ++seq) {
    auto begin = std::chrono::steady_clock::now();
    if (!report(
            cache->append(seq, tokens - 1, keys.data(), values.data(), k, k),
            "prefill"))
      return false;
    if (seq == 0)
      prefill = seconds(begin);
    begin = std::chrono::steady_clock::now();
    if (!report(cache->append(seq, 1, keys.data() + lastRow,
                              values.data() + lastRow, k, k),
                "append"))
      return false;
    if (seq == 0)
      append = seconds(begin);
    seqs.push_back(seq);
  }
  std::vector<float> q(batch * H * G * D, 0.01f), out(batch * H * G * D);
  for (int i = 0; i < 5; ++i)
    if (!report(
            cache->attention(seqs.data(), batch, q.data(), 0.088f, out.data()),
            "attention"))
      return false;
  auto begin = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i)
    if (!report(
            cache->attention(seqs.data(), batch, q.data(), 0.088f, out.data()),
            "attention"))
      return false;
  const double attention = seconds(begin) / reps;
  std::printf("cache B=%lld H=%lld G=%lld D=%lld tokens=%lld k=%d %s: prefill "
              "append %.2f ms, one-token append %.1f us, attention (host "
              "query to host output, one launch) %.2f us; %.2f MB of "
              "device memory\n",
              (long long)batch, (long long)H, (long long)G, (long long)D,
              (long long)tokens, k, encodingName(encoding), prefill * 1e3,
              append * 1e6, attention * 1e6, cache->bytes() / 1e6);
  return true;
}

} // namespace

constexpr const char *kUsage = R"(USAGE: swan-gpu-bench [--sweep | --smoke]

Times one decode step of SWAN attention on a CUDA GPU at the Llama-3.1-8B
layer shape (8 KV heads, G = 4, D = 128, fp16, k = 32 unless stated), with
the winnowed keys and values as indices and as occupancy masks, after
measuring the device-to-device copy bandwidth of the same GPU, then the GPU
cache's prefill, one-token append and attention at 16512 tokens, for one
sequence and for a batch of 8, in both encodings. Needs an NVIDIA GPU and
its driver (libcuda.so.1); exits with 77 where there is none.

  --sweep   the first shape over split counts, and with an empty cache
  --smoke   every row at a tiny size, twice: checks that the benchmark
            runs (the test suite runs it over the stand-in driver)
  --help    this text
)";

int main(int argc, char **argv) {
  bool sweep = false, smoke = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 ||
        std::strcmp(argv[i], "-h") == 0) {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (std::strcmp(argv[i], "--sweep") == 0) {
      sweep = true;
    } else if (std::strcmp(argv[i], "--smoke") == 0) {
      smoke = true;
    } else {
      std::fprintf(stderr, "swan-gpu-bench: unknown option '%s'\n%s",
                   argv[i], kUsage);
      return 2;
    }
  }
  // Timed repetitions of each figure; --smoke runs every path twice.
  const int reps = smoke ? 2 : 200;
  std::unique_ptr<Device> device;
  Status s = Device::open(device);
  if (!s.isOk()) {
    std::fprintf(stderr, "swan-gpu-bench: %s\n", s.message().c_str());
    return s.code() == StatusCode::Unsupported ? 77 : 1;
  }
  std::printf("device %s, compute capability %d.%d, %d multiprocessors\n",
              device->name().c_str(), device->computeCapabilityMajor(),
              device->computeCapabilityMinor(),
              device->multiprocessorCount());
  double bandwidth = copyBandwidth(
      *device, smoke ? size_t(1) << 20 : size_t(1) << 30, std::min(20, reps));
  if (bandwidth <= 0)
    return 1;
  std::printf("copy bandwidth (device-to-device, read + write): %.0f GB/s\n",
              bandwidth / 1e9);
  // Llama-3.1-8B layer: 8 KV heads, G = 4, D = 128; k_K = k_V = 32.
  std::vector<Shape> shapes = {
      {1, 8, 4, 128, 16384, 128, 32},  {1, 8, 4, 128, 65536, 128, 32},
      {8, 8, 4, 128, 16384, 128, 32},  {1, 8, 4, 128, 16384, 128, 64},
      {16, 8, 4, 128, 16384, 128, 32},
  };
  if (smoke)
    shapes = {{1, 2, 4, 128, 150, 16, 32}, {2, 2, 4, 128, 100, 16, 64}};
  for (size_t i = 0, n = shapes.size(); i < n; ++i) {
    shapes.push_back(shapes[i]);
    shapes.back().encoding = SparseEncoding::Mask;
  }
  // --sweep: the first shape over split counts, and with an empty cache
  // (what the query rotation, the merge and the launches cost alone).
  if (sweep) {
    shapes.clear();
    for (int64_t splits : {16, 32, 65, 97, 131, 197, 263})
      shapes.push_back({1, 8, 4, 128, 16384, 128, 32, splits});
    shapes.push_back({1, 8, 4, 128, 0, 1, 32, 0});
  }
  bool ok = true;
  for (const Shape &shape : shapes)
    ok &= benchDecode(*device, shape, bandwidth, reps);
  if (!sweep)
    for (SparseEncoding encoding :
         {SparseEncoding::Indices, SparseEncoding::Mask})
      for (int64_t batch : {1, smoke ? 2 : 8})
        ok &= benchCache(smoke ? 140 : 16384 + 128, batch, encoding, reps);
  return ok ? 0 : 1;
}
