//===- FakeCudaDriver.cpp - a CUDA driver stand-in for the cache tests ----===//
//
// A shared library with the driver entry points swan::cuda::Device opens,
// backed by host memory: "device" pointers are malloc'd, copies are
// memcpy, and a launch runs the named kernel's contract (KernelABI.h) on the
// host in double precision through swan::reference. It lets the GPU cache's
// own logic (ring, store layout, padding, re-layout, re-winnowing, commit)
// run on every machine; the generated kernels themselves are tested on a
// real GPU (CudaRuntimeTest.cpp, scripts/gpu-check).
//
// A module's storage type is read from its PTX (f16 modules convert f16).
// It also counts allocations and can fail a chosen call (FakeCudaDriver.h).
//
//===----------------------------------------------------------------------===//

#include "FakeCudaDriver.h"

#include "swan/Runtime/Reference.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace {

using CUresult = int;
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kNotFound = 500;

struct FakeFunction {
  std::string name;
  bool f16 = false;
};
struct FakeModule {
  bool f16 = false;
  std::vector<std::unique_ptr<FakeFunction>> functions;
};

/// What the real kernels need and cannot check: every token's indices lie
/// in [0, D) and are distinct (the value scatter would race). A launch that
/// breaks it fails, as a faulting kernel would.
constexpr CUresult kLaunchFailed = 719;
bool distinctIndices(const uint8_t *indices, int64_t k, int64_t dim) {
  std::vector<bool> seen(dim, false);
  for (int64_t j = 0; j < k; ++j) {
    if (indices[j] >= dim || seen[indices[j]])
      return false;
    seen[indices[j]] = true;
  }
  return true;
}

/// One memref argument in the expanded ABI: pointers, offset, sizes.
struct MemRef {
  char *data = nullptr;
  std::vector<int64_t> sizes;
  int64_t count() const {
    int64_t n = 1;
    for (int64_t s : sizes)
      n *= s;
    return n;
  }
};

/// Reads the kernel parameters in order.
class Params {
public:
  explicit Params(void **params) : params(params) {}
  MemRef memref(int rank) {
    MemRef m;
    m.data = reinterpret_cast<char *>(slot()); // allocated
    slot();                                    // aligned
    slot(); // offset: swan's arguments always pass 0
    for (int i = 0; i < rank; ++i)
      m.sizes.push_back(static_cast<int64_t>(slot()));
    for (int i = 0; i < rank; ++i)
      slot(); // strides: row-major
    return m;
  }
  float f32() {
    float f;
    std::memcpy(&f, params[next++], sizeof(f));
    return f;
  }
  int64_t index() { return static_cast<int64_t>(slot()); }

private:
  uint64_t slot() { return *static_cast<uint64_t *>(params[next++]); }
  void **params;
  int next = 0;
};

double load(const MemRef &m, int64_t i, bool f16) {
  if (f16)
    return static_cast<double>(reinterpret_cast<const _Float16 *>(m.data)[i]);
  return reinterpret_cast<const float *>(m.data)[i];
}

void store(MemRef &m, int64_t i, double x, bool f16) {
  if (f16)
    reinterpret_cast<_Float16 *>(m.data)[i] = static_cast<_Float16>(x);
  else
    reinterpret_cast<float *>(m.data)[i] = static_cast<float>(x);
}

std::vector<double> rows(const MemRef &m, bool f16) {
  std::vector<double> out(m.count());
  for (int64_t i = 0; i < m.count(); ++i)
    out[i] = load(m, i, f16);
  return out;
}

void rotateKernel(Params p) {
  MemRef x = p.memref(2), r = p.memref(2), out = p.memref(2);
  auto y = swan::reference::rotate(rows(x, false), x.sizes[0], x.sizes[1],
                                   rows(r, false));
  for (int64_t i = 0; i < out.count(); ++i)
    store(out, i, y[i], false);
}

void compressKernel(Params p, bool inputF16, bool f16) {
  MemRef x = p.memref(2), r = p.memref(2);
  int64_t k = p.index();
  MemRef values = p.memref(2), indices = p.memref(2);
  const int64_t n = x.sizes[0], d = x.sizes[1];
  // As the kernel does: f32 arithmetic on the input as stored.
  auto y = swan::reference::rotate(rows(x, inputF16), n, d, rows(r, false));
  for (int64_t row = 0; row < n; ++row) {
    std::vector<double> yr(y.begin() + row * d, y.begin() + (row + 1) * d);
    for (double &v : yr)
      v = static_cast<float>(v);
    auto w = swan::reference::winnow(yr.data(), d, k);
    for (int64_t j = 0; j < k; ++j) {
      store(values, row * k + j, w.values[j], f16);
      reinterpret_cast<uint8_t *>(indices.data)[row * k + j] =
          static_cast<uint8_t>(w.indices[j]);
    }
  }
}

/// Partial attention: block 0 of every (sequence, head) takes all tokens,
/// the others are empty (max -inf, sum 0), which the merge ignores.
CUresult partialKernel(Params p, bool f16) {
  MemRef q = p.memref(3);
  const double scale = p.f32();
  MemRef rk = p.memref(3), kv = p.memref(4), ki = p.memref(4), vv = p.memref(4),
         vi = p.memref(4), bk = p.memref(4), bv = p.memref(4), sl = p.memref(1),
         bl = p.memref(1), pmax = p.memref(4), psum = p.memref(4),
         pacc = p.memref(5);
  const int64_t B = q.sizes[0], H = rk.sizes[0], D = rk.sizes[2];
  const int64_t G = q.sizes[1] / H, L = kv.sizes[2], kK = kv.sizes[3],
                kV = vv.sizes[3], b = bk.sizes[2], blocks = pmax.sizes[2];
  const auto *sparseLengths = reinterpret_cast<const int32_t *>(sl.data);
  const auto *bufferLengths = reinterpret_cast<const int32_t *>(bl.data);
  auto *maxOut = reinterpret_cast<float *>(pmax.data);
  auto *sumOut = reinterpret_cast<float *>(psum.data);
  auto *accOut = reinterpret_cast<float *>(pacc.data);
  for (int64_t s = 0; s < B; ++s)
    for (int64_t h = 0; h < H; ++h) {
      // Dense rotated rows of every token this (sequence, head) holds.
      std::vector<double> keys, values;
      for (int64_t t = 0; t < sparseLengths[s]; ++t) {
        std::vector<double> key(D, 0.0), value(D, 0.0);
        const int64_t kRow = ((s * H + h) * L + t) * kK;
        const int64_t vRow = ((s * H + h) * L + t) * kV;
        const auto *keyIndices = reinterpret_cast<uint8_t *>(ki.data);
        const auto *valueIndices = reinterpret_cast<uint8_t *>(vi.data);
        if (t >= L || !distinctIndices(keyIndices + kRow, kK, D) ||
            !distinctIndices(valueIndices + vRow, kV, D))
          return kLaunchFailed;
        for (int64_t j = 0; j < kK; ++j)
          key[keyIndices[kRow + j]] = load(kv, kRow + j, f16);
        for (int64_t j = 0; j < kV; ++j)
          value[valueIndices[vRow + j]] = load(vv, vRow + j, f16);
        keys.insert(keys.end(), key.begin(), key.end());
        values.insert(values.end(), value.begin(), value.end());
      }
      if (bufferLengths[s] > b)
        return kLaunchFailed;
      for (int64_t t = 0; t < bufferLengths[s]; ++t)
        for (int64_t j = 0; j < D; ++j) {
          keys.push_back(load(bk, ((s * H + h) * b + t) * D + j, f16));
          values.push_back(load(bv, ((s * H + h) * b + t) * D + j, f16));
        }
      const int64_t tokens = keys.size() / D;
      std::vector<double> query(q.count() / B / H);
      for (int64_t i = 0; i < G * D; ++i)
        query[i] = load(q, (s * H * G * D) + h * G * D + i, false);
      std::vector<double> rotation(D * D);
      for (int64_t i = 0; i < D * D; ++i)
        rotation[i] = load(rk, h * D * D + i, false);
      auto rotated = swan::reference::rotate(query, G, D, rotation);
      for (int64_t g = 0; g < G; ++g) {
        std::vector<double> logits(tokens);
        double top = -std::numeric_limits<double>::infinity();
        for (int64_t t = 0; t < tokens; ++t) {
          double dot = 0;
          for (int64_t j = 0; j < D; ++j)
            dot += rotated[g * D + j] * keys[t * D + j];
          logits[t] = scale * dot;
          top = std::max(top, logits[t]);
        }
        for (int64_t block = 0; block < blocks; ++block) {
          const int64_t at = ((s * H + h) * blocks + block) * G + g;
          maxOut[at] = block == 0 && tokens > 0
                           ? static_cast<float>(top)
                           : -std::numeric_limits<float>::infinity();
          double sum = 0;
          std::vector<double> acc(D, 0.0);
          if (block == 0)
            for (int64_t t = 0; t < tokens; ++t) {
              double w = std::exp(logits[t] - top);
              sum += w;
              for (int64_t j = 0; j < D; ++j)
                acc[j] += w * values[t * D + j];
            }
          sumOut[at] = static_cast<float>(sum);
          for (int64_t j = 0; j < D; ++j)
            accOut[at * D + j] = static_cast<float>(acc[j]);
        }
      }
    }
  return kSuccess;
}

void mergeKernel(Params p, bool rotatedOutput) {
  MemRef pmax = p.memref(4), psum = p.memref(4), pacc = p.memref(5);
  MemRef rv;
  if (!rotatedOutput)
    rv = p.memref(3);
  MemRef out = p.memref(3);
  const int64_t B = pmax.sizes[0], H = pmax.sizes[1], blocks = pmax.sizes[2],
                G = pmax.sizes[3], D = pacc.sizes[4];
  const auto *maxIn = reinterpret_cast<const float *>(pmax.data);
  const auto *sumIn = reinterpret_cast<const float *>(psum.data);
  const auto *accIn = reinterpret_cast<const float *>(pacc.data);
  for (int64_t s = 0; s < B; ++s)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t g = 0; g < G; ++g) {
        double top = -std::numeric_limits<double>::infinity();
        for (int64_t block = 0; block < blocks; ++block)
          top = std::max<double>(top,
                                 maxIn[((s * H + h) * blocks + block) * G + g]);
        double sum = 0;
        std::vector<double> acc(D, 0.0);
        for (int64_t block = 0; block < blocks; ++block) {
          const int64_t at = ((s * H + h) * blocks + block) * G + g;
          if (sumIn[at] == 0)
            continue;
          double w = std::exp(maxIn[at] - top);
          sum += w * sumIn[at];
          for (int64_t j = 0; j < D; ++j)
            acc[j] += w * accIn[at * D + j];
        }
        for (double &a : acc)
          a /= sum;
        if (!rotatedOutput) {
          std::vector<double> rotation(D * D);
          for (int64_t i = 0; i < D * D; ++i)
            rotation[i] = load(rv, h * D * D + i, false);
          acc = swan::reference::rotateBack(acc, 1, D, rotation);
        }
        for (int64_t j = 0; j < D; ++j)
          store(out, ((s * H + h) * G + g) * D + j, acc[j], false);
      }
}

uint64_t allocations = 0;

/// Calls of the kinds in `faultKinds` to go before one fails; negative:
/// none fails.
int64_t callsBeforeFault = -1;
unsigned faultKinds = 0;

/// Whether this call, of `kind`, is the one to fail.
bool fault(swan::test::FakeCudaCall kind) {
  if (callsBeforeFault < 0 || !(faultKinds & kind))
    return false;
  return callsBeforeFault-- == 0;
}

constexpr CUresult kOutOfMemory = 2;

bool endsWith(const std::string &s, const char *suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

} // namespace

extern "C" {

CUresult cuInit(unsigned) { return kSuccess; }
CUresult cuDeviceGetCount(int *count) {
  *count = 1;
  return kSuccess;
}
CUresult cuDeviceGet(int *device, int ordinal) {
  *device = ordinal;
  return ordinal == 0 ? kSuccess : kInvalidValue;
}
CUresult cuDeviceGetName(char *name, int length, int) {
  std::strncpy(name, "swan fake CUDA device (host memory)", length);
  return kSuccess;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int) {
  // Multiprocessors 16; compute capability 9.0.
  *value = attribute == 16 ? 16 : attribute == 75 ? 9 : 0;
  return kSuccess;
}
CUresult cuDevicePrimaryCtxRetain(void **context, int) {
  static int primary;
  *context = &primary;
  return kSuccess;
}
CUresult cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
CUresult cuCtxSetCurrent(void *) { return kSuccess; }
CUresult cuCtxSynchronize() {
  return fault(swan::test::kFakeSynchronize) ? kLaunchFailed : kSuccess;
}

uint64_t swanFakeCudaAllocations() { return allocations; }

void swanFakeCudaFailAfter(int64_t calls, unsigned kinds) {
  callsBeforeFault = calls;
  faultKinds = kinds;
}

CUresult cuMemAlloc_v2(unsigned long long *address, size_t bytes) {
  if (fault(swan::test::kFakeAllocation))
    return kOutOfMemory;
  ++allocations;
  void *p = std::malloc(bytes ? bytes : 1);
  if (!p)
    return kOutOfMemory;
  *address = reinterpret_cast<uintptr_t>(p);
  return kSuccess;
}
CUresult cuMemFree_v2(unsigned long long address) {
  std::free(reinterpret_cast<void *>(address));
  return kSuccess;
}
CUresult cuMemcpyHtoD_v2(unsigned long long dst, const void *src,
                         size_t bytes) {
  if (fault(swan::test::kFakeCopyToDevice))
    return kLaunchFailed;
  std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t bytes) {
  if (fault(swan::test::kFakeCopyToHost))
    return kLaunchFailed;
  std::memcpy(dst, reinterpret_cast<const void *>(src), bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoD_v2(unsigned long long dst, unsigned long long src,
                         size_t bytes) {
  if (fault(swan::test::kFakeCopyOnDevice))
    return kLaunchFailed;
  std::memmove(reinterpret_cast<void *>(dst),
               reinterpret_cast<const void *>(src), bytes);
  return kSuccess;
}

CUresult cuModuleLoadDataEx(void **module, const void *image, unsigned, int *,
                            void **) {
  auto *m = new FakeModule;
  m->f16 = std::strstr(static_cast<const char *>(image), "f16") != nullptr;
  *module = m;
  return kSuccess;
}
CUresult cuModuleUnload(void *module) {
  delete static_cast<FakeModule *>(module);
  return kSuccess;
}
CUresult cuModuleGetFunction(void **function, void *module, const char *name) {
  static const char *const known[] = {"rotate",
                                      "compress",
                                      "compress_stored",
                                      "decode_attention_partial",
                                      "decode_attention_merge",
                                      "decode_attention_rotated_partial",
                                      "decode_attention_rotated_merge"};
  for (const char *k : known)
    if (std::strcmp(k, name) == 0) {
      auto *m = static_cast<FakeModule *>(module);
      m->functions.push_back(
          std::make_unique<FakeFunction>(FakeFunction{name, m->f16}));
      *function = m->functions.back().get();
      return kSuccess;
    }
  return kNotFound;
}
CUresult cuLaunchKernel(void *function, unsigned, unsigned, unsigned, unsigned,
                        unsigned, unsigned, unsigned, void *, void **params,
                        void **) {
  if (fault(swan::test::kFakeLaunch))
    return kLaunchFailed;
  const auto &f = *static_cast<FakeFunction *>(function);
  if (f.name == "rotate")
    rotateKernel(Params(params));
  else if (f.name == "compress")
    compressKernel(Params(params), /*inputF16=*/false, f.f16);
  else if (f.name == "compress_stored")
    compressKernel(Params(params), f.f16, f.f16);
  else if (endsWith(f.name, "_partial"))
    return partialKernel(Params(params), f.f16);
  else
    mergeKernel(Params(params), f.name == "decode_attention_rotated_merge");
  return kSuccess;
}

CUresult cuEventCreate(void **event, unsigned) {
  *event = nullptr;
  return kSuccess;
}
CUresult cuEventRecord(void *, void *) { return kSuccess; }
CUresult cuEventSynchronize(void *) { return kSuccess; }
CUresult cuEventElapsedTime(float *ms, void *, void *) {
  *ms = 0;
  return kSuccess;
}
CUresult cuEventDestroy_v2(void *) { return kSuccess; }
CUresult cuGetErrorString(CUresult, const char **text) {
  *text = "fake driver error";
  return kSuccess;
}

} // extern "C"
