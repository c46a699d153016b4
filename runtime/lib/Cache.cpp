//===- Cache.cpp - the SWAN KV cache of one attention layer ---------------===//
//
// Layout. Per sequence: one dense buffer allocation, keys [H][cap][D] then
// values [H][cap][D] in the storage type, holding a FIFO window of the newest
// b tokens; and a list of pages, each one allocation with one (k_K, k_V),
// one key and one value encoding and room for P tokens of every KV head:
//   key values [H][P][k_K], value values [H][P][k_V]   (storage type)
//   key positions [H][P][k_K] indices (uint8, ascending), or [H][P][D/8]
//   occupancy masks; value positions likewise with k_V
// so the tokens of one head in one page are one SparseBlock for the kernels.
// Values come before positions to keep every section aligned for its type.
// Both encodings are chosen per page when it is created (see
// CacheImpl::encodingFor and keyEncodingFor) and kept for the page's life.
//
// Every byte of token storage comes from malloc with its exact size, and the
// byte counts are summed from those sizes, so they are what is allocated.
//
// With device = SWAN_DEVICE_CUDA the tokens live in GPU memory instead, in
// the layout of swan/Runtime/CudaCache.h; this file still validates every
// call, so both devices reject the same arguments with the same messages.
//
//===----------------------------------------------------------------------===//

#include "swan/Cache.h"

#include "swan/Runtime/CacheHost.h"
#include "swan/Runtime/CostModel.h"
#include "swan/Runtime/CudaCache.h"

#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <numeric>
#include <optional>

#ifdef __GLIBC__
#include <malloc.h>
#endif

using namespace swan;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;

char CacheError::ID = 0;

void CacheError::log(llvm::raw_ostream &os) const { os << message; }

std::error_code CacheError::convertToErrorCode() const {
  return llvm::inconvertibleErrorCode();
}

namespace {

Error fail(CacheErrorCode code, const llvm::Twine &message) {
  return llvm::make_error<CacheError>(code, message.str());
}

Error invalid(const llvm::Twine &message) {
  return fail(CacheErrorCode::InvalidArgument, message);
}

Error outOfMemory(size_t bytes, const char *what) {
  return fail(CacheErrorCode::OutOfMemory,
              llvm::Twine("cannot allocate ") + llvm::Twine(bytes) +
                  " bytes for " + what);
}

/// Kernel failures after our own validation are bugs, not user errors.
Error internal(Error error, const char *what) {
  return fail(CacheErrorCode::Internal,
              llvm::Twine(what) + ": " + llvm::toString(std::move(error)));
}

void storeRows(const float *src, void *dst, int64_t count,
               StorageType storage) {
  if (storage == StorageType::F32) {
    std::memcpy(dst, src, count * sizeof(float));
    return;
  }
  auto *out = static_cast<_Float16 *>(dst);
  for (int64_t i = 0; i < count; ++i)
    out[i] = static_cast<_Float16>(src[i]);
}

/// Logits are bounded by |scale|·‖q‖·‖k‖ (Cauchy-Schwarz, every partial sum
/// included); below this bound, with room for rounding, none overflows f32.
constexpr double kMaxLogitBound = 0x1p124;

/// The first non-finite element among count stored ones, or -1.
int64_t firstNonFinite(const void *base, int64_t count, StorageType storage) {
  for (int64_t i = 0; i < count; ++i)
    if (!std::isfinite(loadElement(base, i, storage)))
      return i;
  return -1;
}

void loadRows(const void *src, float *dst, int64_t count,
              StorageType storage) {
  if (storage == StorageType::F32) {
    std::memcpy(dst, src, count * sizeof(float));
    return;
  }
  const auto *in = static_cast<const _Float16 *>(src);
  for (int64_t i = 0; i < count; ++i)
    dst[i] = static_cast<float>(in[i]);
}

/// A run of winnowed tokens sharing one (k_K, k_V); see the file comment.
struct Page {
  HostArray<char> memory;
  size_t bytes = 0; // what malloc/realloc gave
  int32_t kKey = 0, kValue = 0;
  SparseEncoding keyEncoding = SparseEncoding::Indices;
  SparseEncoding valueEncoding = SparseEncoding::Indices;
  int64_t capacity = 0, used = 0;
};

/// The FIFO window [start, start + count) of a capacity-row allocation.
struct DenseBuffer {
  HostArray<char> memory;
  size_t bytes = 0;
  int64_t capacity = 0, start = 0, count = 0;
};

struct Sequence {
  DenseBuffer buffer;
  std::vector<Page> pages;
  int64_t sparseTokens = 0;
  /// The largest key norm ever appended (rotation keeps norms): with the
  /// query norm it bounds every logit before attention runs.
  double maxKeyNorm = 0.0;

  size_t bytes() const {
    size_t total = buffer.bytes;
    for (const Page &page : pages)
      total += page.bytes;
    return total;
  }
};

} // namespace

namespace swan {

class CacheImpl {
public:
  CacheConfig config;
  std::shared_ptr<const KernelSet> kernels;  ///< CPU
  std::unique_ptr<cuda::DeviceCache> device; ///< CUDA: holds the tokens
  std::vector<float> rotK, rotV, identity;
  int32_t currentKKey, currentKValue;
  std::map<int32_t, Sequence> sequences; ///< CPU

  // What validation needs to know on either device.
  bool holds(int32_t seq) const {
    return device ? device->contains(seq) : sequences.count(seq) != 0;
  }
  int64_t liveSequences() const {
    return device ? device->sequenceCount()
                  : static_cast<int64_t>(sequences.size());
  }
  /// -1 for an unknown sequence.
  int64_t tokensOf(int32_t seq) const {
    if (!holds(seq))
      return -1;
    if (device) {
      cuda::SequenceInfo info = device->info(seq);
      return info.bufferTokens + info.sparseTokens;
    }
    const Sequence &s = sequences.at(seq);
    return s.buffer.count + s.sparseTokens;
  }
  double maxKeyNormOf(int32_t seq) const {
    return device ? device->info(seq).maxKeyNorm : sequences.at(seq).maxKeyNorm;
  }

  CacheImpl(const CacheConfig &config,
            std::shared_ptr<const KernelSet> kernels, ArrayRef<float> rotK,
            ArrayRef<float> rotV)
      : config(config), kernels(std::move(kernels)), rotK(rotK.vec()),
        rotV(rotV.vec()), currentKKey(config.kKey),
        currentKValue(config.kValue) {
    int64_t d = config.headDim;
    identity.assign(d * d, 0.0f);
    for (int64_t i = 0; i < d; ++i)
      identity[i * d + i] = 1.0f;
  }
  /// On CUDA the device holds the rotations and does all numeric work.
  CacheImpl(const CacheConfig &config,
            std::unique_ptr<cuda::DeviceCache> device)
      : config(config), device(std::move(device)), currentKKey(config.kKey),
        currentKValue(config.kValue) {}

  int64_t dim() const { return config.headDim; }
  int64_t heads() const { return config.numKvHeads; }
  size_t element() const { return elementBytes(config.storage); }

  /// The buffer keeps 1/8 of b spare rows so that leaving tokens move the
  /// window instead of shifting every row; compaction then costs 8 row moves
  /// per token, for 1/8 more buffer memory.
  int64_t bufferCapacity() const {
    int64_t b = config.bufferTokens;
    return b + std::max<int64_t>(1, (b + 7) / 8);
  }

  /// The encoding a configuration asks for, or nothing under Auto.
  static std::optional<SparseEncoding> fixedEncoding(ValueEncoding choice) {
    switch (choice) {
    case ValueEncoding::Indices:
      return SparseEncoding::Indices;
    case ValueEncoding::Mask:
      return SparseEncoding::Mask;
    case ValueEncoding::Auto:
      break;
    }
    return std::nullopt;
  }

  /// The encoding of a page created now with k_V = kValue: under Auto the
  /// smaller one, indices when both cost the same.
  SparseEncoding encodingFor(int32_t kValue) const {
    if (std::optional<SparseEncoding> fixed =
            fixedEncoding(config.valueEncoding))
      return *fixed;
    return positionBytes(SparseEncoding::Mask, dim(), kValue) <
                   positionBytes(SparseEncoding::Indices, dim(), kValue)
               ? SparseEncoding::Mask
               : SparseEncoding::Indices;
  }

  /// The key encoding of a page created now with k_K = kKey. A mask key is
  /// expanded and dotted with each of the G query rows, so its score costs
  /// G · D/16 FMAs whatever k, against about one step per kept entry with
  /// indices: under Auto, masks only when they are smaller (D/8 < k_K) and
  /// G · D/8 <= k_K.
  /// Measured on the CPU (swan-bench, L = 32768): G = 1, D = 64, k = 32:
  /// 1.35 ms as masks vs 2.03 ms with key indices; G = 4, D = 128: k = 32
  /// 3.57 vs 2.43 ms (indices win), k = 64 3.41 vs 3.31 ms (a tie).
  SparseEncoding keyEncodingFor(int32_t kKey) const {
    if (std::optional<SparseEncoding> fixed = fixedEncoding(config.keyEncoding))
      return *fixed;
    const int64_t maskBytes = positionBytes(SparseEncoding::Mask, dim(), kKey);
    return maskBytes < positionBytes(SparseEncoding::Indices, dim(), kKey) &&
                   config.groupSize * maskBytes <= kKey
               ? SparseEncoding::Mask
               : SparseEncoding::Indices;
  }

  /// Bytes per row of a page's key or value positions.
  int64_t positionRowBytes(SparseEncoding encoding, int32_t k) const {
    return positionBytes(encoding, dim(), k);
  }

  size_t pageBytes(int64_t capacity, int32_t kKey, int32_t kValue,
                   SparseEncoding keyEncoding,
                   SparseEncoding valueEncoding) const {
    return static_cast<size_t>(heads() * capacity) *
           ((kKey + kValue) * element() + positionRowBytes(keyEncoding, kKey) +
            positionRowBytes(valueEncoding, kValue));
  }

  // Section addresses inside a page or the buffer.
  char *keyValues(const Page &p, int64_t h, int64_t slot) const {
    return p.memory.get() + (h * p.capacity + slot) * p.kKey * element();
  }
  char *valueValues(const Page &p, int64_t h, int64_t slot) const {
    return p.memory.get() + heads() * p.capacity * p.kKey * element() +
           (h * p.capacity + slot) * p.kValue * element();
  }
  uint8_t *keyPositions(const Page &p, int64_t h, int64_t slot) const {
    return reinterpret_cast<uint8_t *>(
        p.memory.get() +
        heads() * p.capacity * (p.kKey + p.kValue) * element() +
        (h * p.capacity + slot) * positionRowBytes(p.keyEncoding, p.kKey));
  }
  uint8_t *valuePositions(const Page &p, int64_t h, int64_t slot) const {
    return reinterpret_cast<uint8_t *>(
        p.memory.get() +
        heads() * p.capacity * (p.kKey + p.kValue) * element() +
        heads() * p.capacity * positionRowBytes(p.keyEncoding, p.kKey) +
        (h * p.capacity + slot) * positionRowBytes(p.valueEncoding, p.kValue));
  }
  char *bufferKeys(const DenseBuffer &b, int64_t h, int64_t row) const {
    return b.memory.get() + (h * b.capacity + row) * dim() * element();
  }
  char *bufferValues(const DenseBuffer &b, int64_t h, int64_t row) const {
    return b.memory.get() +
           (heads() * b.capacity + h * b.capacity + row) * dim() * element();
  }

  const float *keyRotation(int64_t h) const {
    return rotK.data() + h * dim() * dim();
  }
  const float *valueRotation(int64_t h) const {
    return rotV.data() + h * dim() * dim();
  }

  Error append(int32_t seq, int64_t n, const float *keys,
               const float *values);
  void shrinkPage(Page &page, int32_t kKey, int32_t kValue) const;
  Error attention(ArrayRef<int32_t> seqs, const float *q, float scale,
                  float *out) const;
  Error cpuAttention(ArrayRef<int32_t> seqs, const float *q, float scale,
                     float *out) const;
};

} // namespace swan

//===----------------------------------------------------------------------===//
// Creation
//===----------------------------------------------------------------------===//

static Error checkK(int32_t kKey, int32_t kValue, int32_t dim) {
  if (kKey < 1 || kKey > dim)
    return invalid(llvm::Twine("k_key = ") + llvm::Twine(kKey) +
                   " is outside [1, head_dim = " + llvm::Twine(dim) + "]");
  if (kValue < 1 || kValue > dim)
    return invalid(llvm::Twine("k_value = ") + llvm::Twine(kValue) +
                   " is outside [1, head_dim = " + llvm::Twine(dim) + "]");
  return Error::success();
}

/// Rotations must be orthogonal: attention undoes R_V by its transpose.
static Error checkRotations(ArrayRef<float> rotation, const char *name,
                            int64_t heads, int64_t dim) {
  if (static_cast<int64_t>(rotation.size()) != heads * dim * dim)
    return invalid(llvm::Twine(name) + " holds " +
                   llvm::Twine(rotation.size()) + " floats, expected H*D*D = " +
                   llvm::Twine(heads * dim * dim));
  for (int64_t h = 0; h < heads; ++h) {
    const float *r = rotation.data() + h * dim * dim;
    for (int64_t i = 0; i < dim * dim; ++i)
      if (!std::isfinite(r[i]))
        return invalid(llvm::Twine(name) + "[head " + llvm::Twine(h) +
                       "] holds a non-finite entry");
    double worst = 0.0;
    for (int64_t i = 0; i < dim; ++i)
      for (int64_t j = i; j < dim; ++j) {
        double dot = 0.0;
        for (int64_t c = 0; c < dim; ++c)
          dot += double(r[i * dim + c]) * double(r[j * dim + c]);
        worst = std::max(worst, std::fabs(dot - (i == j ? 1.0 : 0.0)));
      }
    if (worst > 1e-3)
      return invalid(llvm::Twine(name) + "[head " + llvm::Twine(h) +
                     "] is not orthogonal (max |R·Rᵀ - I| = " +
                     std::to_string(worst) + ")");
  }
  return Error::success();
}

static Error checkConfig(const CacheConfig &c) {
  if (c.headDim < 1 || c.headDim > 256)
    return invalid(llvm::Twine("head_dim = ") + llvm::Twine(c.headDim) +
                   " is outside [1, 256] (indices are bytes)");
  if (c.numKvHeads < 1)
    return invalid(llvm::Twine("num_kv_heads = ") + llvm::Twine(c.numKvHeads) +
                   " must be at least 1");
  if (c.groupSize < 1)
    return invalid(llvm::Twine("group_size = ") + llvm::Twine(c.groupSize) +
                   " must be at least 1");
  if (c.bufferTokens < 1)
    return invalid(llvm::Twine("buffer_tokens = ") +
                   llvm::Twine(c.bufferTokens) + " must be at least 1");
  if (c.maxSequences < 1)
    return invalid(llvm::Twine("max_sequences = ") +
                   llvm::Twine(c.maxSequences) + " must be at least 1");
  if (c.pageTokens < 1)
    return invalid(llvm::Twine("page_tokens = ") + llvm::Twine(c.pageTokens) +
                   " must be at least 1");
  if (c.storage != StorageType::F32 && c.storage != StorageType::F16)
    return invalid("dtype is neither SWAN_DTYPE_F32 nor SWAN_DTYPE_F16");
  if (c.valueEncoding != ValueEncoding::Auto &&
      c.valueEncoding != ValueEncoding::Indices &&
      c.valueEncoding != ValueEncoding::Mask)
    return invalid("value_encoding is none of SWAN_ENCODING_AUTO, "
                   "SWAN_ENCODING_INDICES, SWAN_ENCODING_MASK");
  if (c.keyEncoding != ValueEncoding::Auto &&
      c.keyEncoding != ValueEncoding::Indices &&
      c.keyEncoding != ValueEncoding::Mask)
    return invalid("key_encoding is none of SWAN_ENCODING_AUTO, "
                   "SWAN_ENCODING_INDICES, SWAN_ENCODING_MASK");
  return checkK(c.kKey, c.kValue, c.headDim);
}

/// A CUDA failure as a cache error; driver faults are internal errors.
static Error fromCuda(const cuda::Status &status) {
  switch (status.code()) {
  case cuda::StatusCode::Ok:
    return Error::success();
  case cuda::StatusCode::Unsupported:
    return fail(CacheErrorCode::Unsupported, status.message());
  case cuda::StatusCode::InvalidArgument:
    return invalid(status.message());
  case cuda::StatusCode::OutOfMemory:
    return fail(CacheErrorCode::OutOfMemory, status.message());
  case cuda::StatusCode::DriverError:
    break;
  }
  return fail(CacheErrorCode::Internal, status.message());
}

/// The CPU kernels, JIT-compiled once per (D, G, storage).
static Expected<std::shared_ptr<const KernelSet>>
cpuKernels(const CacheConfig &c) {
  auto kernels = KernelSet::get({c.headDim, c.groupSize, c.storage});
  if (!kernels)
    return fail(CacheErrorCode::Unsupported,
                llvm::Twine("no CPU kernels for head_dim = ") +
                    llvm::Twine(c.headDim) +
                    ", group_size = " + llvm::Twine(c.groupSize) + ": " +
                    llvm::toString(kernels.takeError()));
  return kernels;
}

/// The GPU cache: the driver, the kernels embedded for (D, G, storage) and
/// the rotations in device memory.
static Expected<std::unique_ptr<cuda::DeviceCache>>
cudaCache(const CacheConfig &c, ArrayRef<float> rotK, ArrayRef<float> rotV) {
  // The GPU kernels read keys and values in one encoding; AUTO follows
  // the other choice, and indices when both are AUTO.
  const bool masks = c.keyEncoding == ValueEncoding::Mask ||
                     c.valueEncoding == ValueEncoding::Mask;
  if (masks && (c.keyEncoding == ValueEncoding::Indices ||
                c.valueEncoding == ValueEncoding::Indices))
    return fail(CacheErrorCode::Unsupported,
                "device = SWAN_DEVICE_CUDA stores winnowed keys and values "
                "in one encoding: key_encoding and value_encoding cannot be "
                "SWAN_ENCODING_INDICES and SWAN_ENCODING_MASK");
  cuda::CacheShape shape;
  shape.encoding = masks ? SparseEncoding::Mask : SparseEncoding::Indices;
  shape.dim = c.headDim;
  shape.kvHeads = c.numKvHeads;
  shape.group = c.groupSize;
  shape.bufferTokens = c.bufferTokens;
  shape.storage = c.storage;
  shape.valuesPrerotated = c.valuesPrerotated;
  shape.outputRotated = c.outputRotated;
  std::unique_ptr<cuda::DeviceCache> cache;
  if (cuda::Status s =
          cuda::DeviceCache::create(shape, rotK.data(), rotV.data(), cache);
      !s.isOk())
    return fromCuda(cuda::Status::error(
        s.code(), "device = SWAN_DEVICE_CUDA: " + s.message()));
  return cache;
}

Expected<Cache> Cache::create(const CacheConfig &config, ArrayRef<float> rotK,
                              ArrayRef<float> rotV) {
  if (Error e = checkConfig(config))
    return std::move(e);
  if (Error e = checkRotations(rotK, "rot_k", config.numKvHeads,
                               config.headDim))
    return std::move(e);
  if (Error e = checkRotations(rotV, "rot_v", config.numKvHeads,
                               config.headDim))
    return std::move(e);
  switch (config.device) {
  case Device::CPU: {
    auto kernels = cpuKernels(config);
    if (!kernels)
      return kernels.takeError();
    return Cache(
        std::make_unique<CacheImpl>(config, std::move(*kernels), rotK, rotV));
  }
  case Device::CUDA: {
    auto device = cudaCache(config, rotK, rotV);
    if (!device)
      return device.takeError();
    return Cache(std::make_unique<CacheImpl>(config, std::move(*device)));
  }
  }
  return invalid("device is neither SWAN_DEVICE_CPU nor SWAN_DEVICE_CUDA");
}

Cache::Cache(std::unique_ptr<CacheImpl> impl) : impl(std::move(impl)) {}
Cache::Cache(Cache &&) noexcept = default;
Cache &Cache::operator=(Cache &&) noexcept = default;
Cache::~Cache() = default;

const CacheConfig &Cache::config() const { return impl->config; }

//===----------------------------------------------------------------------===//
// Append: the FIFO buffer and winnowing
//===----------------------------------------------------------------------===//

Error Cache::append(int32_t seq, int64_t tokens, const float *keys,
                    const float *values) {
  return impl->append(seq, tokens, keys, values);
}

Error CacheImpl::append(int32_t seq, int64_t n, const float *keys,
                        const float *values) {
  if (seq < 0)
    return invalid(llvm::Twine("seq = ") + llvm::Twine(seq) +
                   " is negative");
  if (n < 0)
    return invalid(llvm::Twine("n_tokens = ") + llvm::Twine(n) +
                   " is negative");
  if (n > 0 && !keys)
    return invalid("keys is NULL");
  if (n > 0 && !values)
    return invalid("values is NULL");
  if (!holds(seq) && liveSequences() >= config.maxSequences)
    return invalid(llvm::Twine("seq = ") + llvm::Twine(seq) +
                   " is new, but the cache already holds max_sequences = " +
                   llvm::Twine(config.maxSequences) + " sequences");
  if (device)
    return fromCuda(
        device->append(seq, n, keys, values, currentKKey, currentKValue));
  auto found = sequences.find(seq);
  bool isNew = found == sequences.end();
  if (n == 0) {
    if (isNew)
      sequences.try_emplace(seq);
    return Error::success();
  }

  static const Sequence empty;
  const Sequence &s = isNew ? empty : found->second;
  const int64_t d = dim(), hCount = heads(), b = config.bufferTokens;
  const int64_t held = s.buffer.count;
  const int64_t leave = std::max<int64_t>(0, held + n - b);
  const int64_t fromOld = std::min(leave, held);
  const int64_t fromNew = leave - fromOld;
  const int64_t toBuffer = n - fromNew;

  // Where the leaving tokens go: the rest of the last page if it has the
  // current k, then fresh pages.
  const Page *last = s.pages.empty() ? nullptr : &s.pages.back();
  int64_t intoLast = 0;
  const SparseEncoding keyEncoding = keyEncodingFor(currentKKey);
  const SparseEncoding valueEncoding = encodingFor(currentKValue);
  if (last && last->kKey == currentKKey && last->kValue == currentKValue &&
      last->keyEncoding == keyEncoding && last->valueEncoding == valueEncoding)
    intoLast = std::min(leave, last->capacity - last->used);
  const int64_t pageCap = config.pageTokens;
  const int64_t freshPages = (leave - intoLast + pageCap - 1) / pageCap;

  // Allocate everything before touching the sequence; scratch first, as it
  // grows fastest with n (an absurd n fails here, before any page exists).
  int64_t scratchRows = std::max(leave, toBuffer);
  auto scratch = allocateArray<float>(scratchRows * d);
  auto rotated = allocateArray<float>(toBuffer * d);
  auto stagedKeys = allocateArray<char>(hCount * toBuffer * d * element());
  auto stagedValues = allocateArray<char>(hCount * toBuffer * d * element());
  if (!scratch || !rotated || !stagedKeys || !stagedValues)
    return outOfMemory((scratchRows + toBuffer) * d * sizeof(float) +
                           2 * hCount * toBuffer * d * element(),
                       "append scratch space");
  std::vector<Page> fresh(freshPages);
  for (Page &page : fresh) {
    page.capacity = pageCap;
    page.kKey = currentKKey;
    page.kValue = currentKValue;
    page.keyEncoding = keyEncoding;
    page.valueEncoding = valueEncoding;
    page.bytes = pageBytes(pageCap, currentKKey, currentKValue, keyEncoding,
                           valueEncoding);
    page.memory = allocateArray<char>(page.bytes);
    if (!page.memory)
      return outOfMemory(page.bytes, "a sparse page");
  }
  DenseBuffer newBuffer;
  if (!s.buffer.memory) {
    newBuffer.capacity = bufferCapacity();
    newBuffer.bytes = 2 * hCount * newBuffer.capacity * d * element();
    newBuffer.memory = allocateArray<char>(newBuffer.bytes);
    if (!newBuffer.memory)
      return outOfMemory(newBuffer.bytes, "the dense buffer");
  }
  const DenseBuffer &buffer = s.buffer.memory ? s.buffer : newBuffer;
  // Checked after the allocations, so that an absurd n fails there first.
  if (std::string bad = nonFiniteInput(keys, values, n, heads() * dim());
      !bad.empty())
    return invalid(bad);
  double maxKeyNorm = 0.0;
  for (int64_t row = 0; row < n * heads(); ++row)
    maxKeyNorm = std::max(maxKeyNorm, rowNorm(keys + row * dim(), dim()));

  auto pageSlot = [&](int64_t j) -> std::pair<const Page *, int64_t> {
    if (j < intoLast)
      return {last, last->used + j};
    j -= intoLast;
    return {&fresh[j / pageCap], j % pageCap};
  };
  // Finite inputs can still overflow once rotated and stored: |x·R| reaches
  // ‖x‖, beyond fp16's 65504 (or f32's range).
  auto storageOverflow = [&](bool isKey, int64_t h) {
    return invalid(llvm::Twine(isKey ? "keys" : "values") + " of head " +
                   llvm::Twine(h) + ": a rotated component overflows the " +
                   (config.storage == StorageType::F16 ? "fp16" : "f32") +
                   " storage (|x·R| > " +
                   (config.storage == StorageType::F16 ? "65504" : "FLT_MAX") +
                   ")");
  };
  // Winnows scratch rows [0, count), which are leaving tokens
  // [first, first + count), into their page slots, one kernel call per page.
  auto compressInto = [&](int64_t h, bool isKey, int64_t first, int64_t count,
                          const float *rotation) -> Error {
    for (int64_t j = first; j < first + count;) {
      auto [page, slot] = pageSlot(j);
      int64_t run = std::min(first + count - j, page->capacity - slot);
      const float *rows = scratch.get() + (j - first) * d;
      Error e = isKey ? kernels->compress(rows, run, rotation, page->kKey,
                                          keyValues(*page, h, slot),
                                          keyPositions(*page, h, slot),
                                          page->keyEncoding)
                      : kernels->compress(rows, run, rotation, page->kValue,
                                          valueValues(*page, h, slot),
                                          valuePositions(*page, h, slot),
                                          page->valueEncoding);
      if (e)
        return internal(std::move(e), "compress");
      int32_t k = isKey ? page->kKey : page->kValue;
      if (firstNonFinite(isKey ? keyValues(*page, h, slot)
                               : valueValues(*page, h, slot),
                         run * k, config.storage) >= 0)
        return storageOverflow(isKey, h);
      j += run;
    }
    return Error::success();
  };
  auto gatherNew = [&](const float *src, int64_t h, int64_t first,
                       int64_t count) {
    for (int64_t t = 0; t < count; ++t)
      std::memcpy(scratch.get() + t * d, src + ((first + t) * hCount + h) * d,
                  d * sizeof(float));
  };

  for (int64_t h = 0; h < hCount; ++h) {
    for (bool isKey : {true, false}) {
      const float *input = isKey ? keys : values;
      // Buffer rows are stored rotated already, so they are winnowed with
      // the identity: keeping unrotated copies would double the buffer.
      if (fromOld > 0) {
        for (int64_t t = 0; t < fromOld; ++t) {
          int64_t row = buffer.start + t;
          loadRows(isKey ? bufferKeys(buffer, h, row)
                         : bufferValues(buffer, h, row),
                   scratch.get() + t * d, d, config.storage);
        }
        if (Error e = compressInto(h, isKey, 0, fromOld, identity.data()))
          return e;
      }
      if (fromNew > 0) {
        gatherNew(input, h, 0, fromNew);
        const float *rotation =
            isKey ? keyRotation(h)
                  : (config.valuesPrerotated ? identity.data()
                                             : valueRotation(h));
        if (Error e = compressInto(h, isKey, fromOld, fromNew, rotation))
          return e;
      }
      if (toBuffer > 0) {
        gatherNew(input, h, fromNew, toBuffer);
        const float *rows = scratch.get();
        if (isKey || !config.valuesPrerotated) {
          if (Error e = kernels->rotate(scratch.get(), toBuffer,
                                        isKey ? keyRotation(h)
                                              : valueRotation(h),
                                        rotated.get()))
            return internal(std::move(e), "rotate");
          rows = rotated.get();
        }
        char *staged = (isKey ? stagedKeys : stagedValues).get() +
                       h * toBuffer * d * element();
        storeRows(rows, staged, toBuffer * d, config.storage);
        if (firstNonFinite(staged, toBuffer * d, config.storage) >= 0)
          return storageOverflow(isKey, h);
      }
    }
  }

  // Commit: nothing below can fail except bookkeeping allocations.
  Sequence &target = isNew ? sequences[seq] : found->second;
  target.pages.reserve(target.pages.size() + fresh.size());
  if (intoLast > 0)
    target.pages.back().used += intoLast;
  int64_t rest = leave - intoLast;
  for (Page &page : fresh) {
    page.used = std::min(rest, page.capacity);
    rest -= page.used;
    target.pages.push_back(std::move(page));
  }
  target.sparseTokens += leave;
  target.maxKeyNorm = std::max(target.maxKeyNorm, maxKeyNorm);

  DenseBuffer &buf = target.buffer;
  if (!buf.memory)
    buf = std::move(newBuffer);
  buf.start += fromOld;
  buf.count -= fromOld;
  if (buf.start + buf.count + toBuffer > buf.capacity) {
    for (int64_t h = 0; h < hCount; ++h) {
      std::memmove(bufferKeys(buf, h, 0), bufferKeys(buf, h, buf.start),
                   buf.count * d * element());
      std::memmove(bufferValues(buf, h, 0), bufferValues(buf, h, buf.start),
                   buf.count * d * element());
    }
    buf.start = 0;
  }
  for (int64_t h = 0; h < hCount; ++h) {
    int64_t row = buf.start + buf.count;
    std::memcpy(bufferKeys(buf, h, row),
                stagedKeys.get() + h * toBuffer * d * element(),
                toBuffer * d * element());
    std::memcpy(bufferValues(buf, h, row),
                stagedValues.get() + h * toBuffer * d * element(),
                toBuffer * d * element());
  }
  buf.count += toBuffer;
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Runtime k and re-winnowing
//===----------------------------------------------------------------------===//

Error Cache::setK(int32_t kKey, int32_t kValue) {
  if (Error e = checkK(kKey, kValue, impl->config.headDim))
    return e;
  impl->currentKKey = kKey;
  impl->currentKValue = kValue;
  return Error::success();
}

/// swan::keepLargest on a row of the storage type, the kept values then
/// moved to `outValues` (at or below `values`: rows move down in place).
static void keepLargestStored(char *values, uint8_t *indices, int32_t k,
                              int32_t keep, StorageType storage,
                              char *outValues) {
  if (storage == StorageType::F16)
    keepLargest(reinterpret_cast<_Float16 *>(values), indices, k, keep);
  else
    keepLargest(reinterpret_cast<float *>(values), indices, k, keep);
  std::memmove(outValues, values, keep * elementBytes(storage));
}

/// keepLargestStored on a row whose positions are a `dim`-bit occupancy mask:
/// the stored values ascend with the dimension just as with indices, so the
/// same selection applies; the mask is rewritten in place with only the kept
/// bits.
static void keepLargestMasked(char *values, uint8_t *mask, int64_t dim,
                              int32_t k, int32_t keep, StorageType storage,
                              char *outValues) {
  uint8_t dims[256] = {};
  maskIndices(mask, dim, dims);
  keepLargestStored(values, dims, k, keep, storage, outValues);
  indicesMask(dims, keep, dim, mask);
}

/// Lowers a page to (kKey, kValue) in place and gives the tail back with
/// realloc. Every section and row moves to a lower address, in increasing
/// order, so no row is overwritten before it is read; kept positions first
/// go to their own old row (indices to its front). Nothing here can fail:
/// if realloc cannot shrink, the page keeps its old (still valid, still
/// counted) block.
///
/// A mask page stays a mask page even when the new k is at most D/8, where
/// indices would be smaller: its mask rows are rewritten within themselves,
/// with no re-encoding pass and nothing that can fail, and the price is
/// bounded by D/8 bytes per row. This holds for key masks and value masks
/// alike; pages created afterwards get the encodings that suit the new k.
void CacheImpl::shrinkPage(Page &page, int32_t kKey, int32_t kValue) const {
  const int32_t newKKey = std::min(page.kKey, kKey);
  const int32_t newKValue = std::min(page.kValue, kValue);
  if (newKKey == page.kKey && newKValue == page.kValue)
    return;
  const int64_t hCount = heads(), cap = page.capacity;
  const size_t e = element();
  char *base = page.memory.get();
  auto rows = [&](auto &&visit) {
    for (int64_t h = 0; h < hCount; ++h)
      for (int64_t t = 0; t < page.used; ++t)
        visit(h * cap + t);
  };
  // 1. key values to their new rows; kept key positions within their own
  // old rows (indices to the front, masks with only the kept bits).
  char *oldKeyPos = base + hCount * cap * (page.kKey + page.kValue) * e;
  const int64_t oldKeyRow = positionRowBytes(page.keyEncoding, page.kKey);
  const int64_t newKeyRow = positionRowBytes(page.keyEncoding, newKKey);
  char *oldValuePos = oldKeyPos + hCount * cap * oldKeyRow;
  const int64_t oldValueRow = positionRowBytes(page.valueEncoding, page.kValue);
  const int64_t newValueRow = positionRowBytes(page.valueEncoding, newKValue);
  auto keepRow = [&](char *values, char *positions, SparseEncoding encoding,
                     int32_t k, int32_t keep, char *outValues) {
    auto *bytes = reinterpret_cast<uint8_t *>(positions);
    if (encoding == SparseEncoding::Mask)
      keepLargestMasked(values, bytes, dim(), k, keep, config.storage,
                        outValues);
    else
      keepLargestStored(values, bytes, k, keep, config.storage, outValues);
  };
  rows([&](int64_t r) {
    keepRow(base + r * page.kKey * e, oldKeyPos + r * oldKeyRow,
            page.keyEncoding, page.kKey, newKKey, base + r * newKKey * e);
  });
  // 2. value values likewise.
  char *oldValues = base + hCount * cap * page.kKey * e;
  char *newValues = base + hCount * cap * newKKey * e;
  rows([&](int64_t r) {
    keepRow(oldValues + r * page.kValue * e, oldValuePos + r * oldValueRow,
            page.valueEncoding, page.kValue, newKValue,
            newValues + r * newKValue * e);
  });
  // 3, 4. the position sections; mask rows keep their size, so only their
  // section moves.
  char *newKeyPos = base + hCount * cap * (newKKey + newKValue) * e;
  rows([&](int64_t r) {
    std::memmove(newKeyPos + r * newKeyRow, oldKeyPos + r * oldKeyRow,
                 newKeyRow);
  });
  char *newValuePos = newKeyPos + hCount * cap * newKeyRow;
  rows([&](int64_t r) {
    std::memmove(newValuePos + r * newValueRow, oldValuePos + r * oldValueRow,
                 newValueRow);
  });
  page.kKey = newKKey;
  page.kValue = newKValue;
  size_t newBytes =
      pageBytes(cap, newKKey, newKValue, page.keyEncoding, page.valueEncoding);
  if (void *smaller = std::realloc(page.memory.get(), newBytes)) {
    (void)page.memory.release();
    page.memory.reset(static_cast<char *>(smaller));
    page.bytes = newBytes;
  }
}

Error Cache::rewinnow(int32_t kKey, int32_t kValue) {
  if (Error e = checkK(kKey, kValue, impl->config.headDim))
    return e;
  if (impl->device) {
    if (Error e = fromCuda(impl->device->rewinnow(kKey, kValue)))
      return e;
    return setK(kKey, kValue);
  }
  if (Error e = setK(kKey, kValue))
    return e;
  for (auto &entry : impl->sequences)
    for (Page &page : entry.second.pages)
      impl->shrinkPage(page, kKey, kValue);
#ifdef __GLIBC__
  // Small pages live in malloc's heap; hand its free tail to the system.
  malloc_trim(0);
#endif
  return Error::success();
}

int32_t Cache::kKey() const { return impl->currentKKey; }
int32_t Cache::kValue() const { return impl->currentKValue; }

int64_t Cache::breakEvenTokens() const {
  return computeBreakEvenTokens(impl->config.headDim, impl->currentKKey,
                                impl->currentKValue, impl->config.bufferTokens);
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

Error Cache::attention(ArrayRef<int32_t> seqs, const float *q, float scale,
                       float *out) const {
  return impl->attention(seqs, q, scale, out);
}

Error CacheImpl::attention(ArrayRef<int32_t> seqs, const float *q,
                           float scale, float *out) const {
  if (seqs.empty())
    return invalid("n_seqs = 0: attention needs at least one sequence");
  if (!seqs.data())
    return invalid("seqs is NULL");
  if (!q)
    return invalid("q is NULL");
  if (!out)
    return invalid("out is NULL");
  if (!std::isfinite(scale))
    return invalid("scale is not finite");
  const int64_t queryFloats =
      static_cast<int64_t>(seqs.size()) * heads() * config.groupSize * dim();
  if (int64_t bad = firstNonFinite(q, queryFloats, StorageType::F32); bad >= 0)
    return invalid(llvm::Twine("q[") + llvm::Twine(bad) + "] is not finite");
  for (size_t i = 0; i < seqs.size(); ++i) {
    int64_t tokens = tokensOf(seqs[i]);
    if (tokens < 0)
      return invalid(llvm::Twine("seqs[") + llvm::Twine(i) + "] = " +
                     llvm::Twine(seqs[i]) + " is not a sequence of this cache");
    if (tokens == 0)
      return invalid(llvm::Twine("seqs[") + llvm::Twine(i) +
                     "] = " + llvm::Twine(seqs[i]) + " holds no tokens");
  }
  // Overflowing logits would reach the kernels' exponentials as Inf or NaN,
  // which approximate math does not always carry to the output: refuse them
  // up front.
  const int64_t rowsPerSequence = heads() * config.groupSize;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const double keyNorm = maxKeyNormOf(seqs[i]);
    for (int64_t r = 0; r < rowsPerSequence; ++r) {
      double bound = std::max(1.0, std::fabs(double(scale))) *
                     rowNorm(q + (i * rowsPerSequence + r) * dim(), dim()) *
                     keyNorm;
      if (bound > kMaxLogitBound) {
        char text[32];
        std::snprintf(text, sizeof(text), "%.3g", bound);
        return invalid(llvm::Twine("seqs[") + llvm::Twine(i) +
                       "]: the logits could overflow f32 (|scale|·‖q‖·‖k‖ "
                       "reaches " +
                       text + ", above 2^124)");
      }
    }
  }

  if (device) {
    if (Error e = fromCuda(
            device->attention(seqs.data(), seqs.size(), q, scale, out)))
      return e;
  } else if (Error e = cpuAttention(seqs, q, scale, out)) {
    return e;
  }
  // Finite q, keys and scale can still give logits beyond f32's range.
  if (int64_t bad = firstNonFinite(out, queryFloats, StorageType::F32);
      bad >= 0)
    return invalid(llvm::Twine("out[") + llvm::Twine(bad) +
                   "] is not finite: the logits q·k·scale overflow f32");
  return Error::success();
}

/// The CPU kernels over every page and buffer of the (validated) batch.
Error CacheImpl::cpuAttention(ArrayRef<int32_t> seqs, const float *q,
                              float scale, float *out) const {
  std::vector<const Sequence *> batch;
  size_t blocks = 0;
  for (int32_t seq : seqs) {
    batch.push_back(&sequences.at(seq));
    blocks += batch.back()->pages.size();
  }
  const int64_t d = dim(), hCount = heads(), g = config.groupSize;
  std::vector<SparseBlock> sparse;
  sparse.reserve(blocks * hCount);
  std::vector<AttentionWork> work;
  work.reserve(batch.size() * hCount);
  for (size_t i = 0; i < batch.size(); ++i) {
    const Sequence &s = *batch[i];
    for (int64_t h = 0; h < hCount; ++h) {
      size_t first = sparse.size();
      for (const Page &p : s.pages)
        sparse.push_back({keyValues(p, h, 0), keyPositions(p, h, 0), p.kKey,
                          valueValues(p, h, 0), valuePositions(p, h, 0),
                          p.kValue, p.used, p.valueEncoding, p.keyEncoding});
      AttentionWork w;
      w.query = q + (i * hCount + h) * g * d;
      w.keyRotation = keyRotation(h);
      w.valueRotation = valueRotation(h);
      w.sparse = ArrayRef<SparseBlock>(sparse.data() + first,
                                       sparse.size() - first);
      w.buffer = {bufferKeys(s.buffer, h, s.buffer.start),
                  bufferValues(s.buffer, h, s.buffer.start), s.buffer.count};
      w.out = out + (i * hCount + h) * g * d;
      work.push_back(w);
    }
  }
  if (Error e = kernels->attention(work, scale, config.outputRotated))
    return internal(std::move(e), "attention");
  return Error::success();
}

//===----------------------------------------------------------------------===//
// Sequences and accounting
//===----------------------------------------------------------------------===//

static Error unknownSequence(int32_t seq) {
  return invalid(llvm::Twine("seq = ") + llvm::Twine(seq) +
                 " is not a sequence of this cache");
}

Error Cache::release(int32_t seq) {
  if (!impl->holds(seq))
    return unknownSequence(seq);
  if (impl->device)
    impl->device->release(seq);
  else
    impl->sequences.erase(seq);
  return Error::success();
}

int64_t Cache::tokens(int32_t seq) const { return impl->tokensOf(seq); }

size_t Cache::bytes() const {
  if (impl->device)
    return impl->device->bytes();
  size_t total = 0;
  for (const auto &entry : impl->sequences)
    total += entry.second.bytes();
  return total;
}

int64_t Cache::sequenceCount() const { return impl->liveSequences(); }

Expected<SequenceStats> Cache::stats(int32_t seq) const {
  if (!impl->holds(seq))
    return unknownSequence(seq);
  SequenceStats stats;
  stats.breakEvenTokens = breakEvenTokens();
  if (impl->device) {
    // The winnowed tokens of a GPU sequence are one store: one page.
    cuda::SequenceInfo info = impl->device->info(seq);
    stats.bufferTokens = info.bufferTokens;
    stats.sparseTokens = info.sparseTokens;
    stats.pages = info.sparseTokens > 0 ? 1 : 0;
    stats.bytes = info.bytes;
    stats.belowBreakEven =
        stats.bufferTokens + stats.sparseTokens < stats.breakEvenTokens;
    return stats;
  }
  const Sequence &s = impl->sequences.at(seq);
  stats.bufferTokens = s.buffer.count;
  stats.sparseTokens = s.sparseTokens;
  stats.pages = s.pages.size();
  stats.maskPages = std::count_if(
      s.pages.begin(), s.pages.end(), [](const Page &page) {
        return page.valueEncoding == SparseEncoding::Mask;
      });
  stats.keyMaskPages =
      std::count_if(s.pages.begin(), s.pages.end(), [](const Page &page) {
        return page.keyEncoding == SparseEncoding::Mask;
      });
  stats.bytes = s.bytes();
  stats.belowBreakEven =
      stats.bufferTokens + stats.sparseTokens < stats.breakEvenTokens;
  return stats;
}

/// Expands one stored row (k values and their positions) into its dense row.
static void scatterRow(const char *values, const uint8_t *positions, int32_t k,
                       SparseEncoding encoding, int64_t dim,
                       StorageType storage, float *out) {
  if (encoding == SparseEncoding::Mask) {
    // The k values in ascending dimension order, one per set bit.
    for (int64_t i = 0, j = 0; i < dim && j < k; ++i)
      if (positions[i / 8] & (1u << (i % 8)))
        out[i] = loadElement(values, j++, storage);
    return;
  }
  for (int32_t j = 0; j < k; ++j)
    out[positions[j]] = loadElement(values, j, storage);
}

Expected<DecompressedSequence> Cache::decompress(int32_t seq) const {
  if (!impl->holds(seq))
    return unknownSequence(seq);
  DecompressedSequence out;
  if (impl->device) {
    cuda::SequenceRows rows;
    if (Error e = fromCuda(impl->device->decompress(seq, rows)))
      return std::move(e);
    out.tokens = rows.tokens;
    out.keys = std::move(rows.keys);
    out.values = std::move(rows.values);
    out.keyK = std::move(rows.keyK);
    out.valueK = std::move(rows.valueK);
    out.inBuffer = std::move(rows.inBuffer);
    return out;
  }
  const CacheImpl &c = *impl;
  const Sequence &s = c.sequences.at(seq);
  const int64_t d = c.dim(), hCount = c.heads();
  const StorageType st = c.config.storage;
  out.tokens = s.sparseTokens + s.buffer.count;
  out.keys.assign(out.tokens * hCount * d, 0.0f);
  out.values.assign(out.tokens * hCount * d, 0.0f);
  int64_t token = 0;
  for (const Page &p : s.pages) {
    for (int64_t t = 0; t < p.used; ++t, ++token) {
      out.keyK.push_back(p.kKey);
      out.valueK.push_back(p.kValue);
      out.inBuffer.push_back(false);
      for (int64_t h = 0; h < hCount; ++h) {
        float *key = out.keys.data() + (token * hCount + h) * d;
        float *value = out.values.data() + (token * hCount + h) * d;
        scatterRow(c.keyValues(p, h, t), c.keyPositions(p, h, t), p.kKey,
                   p.keyEncoding, d, st, key);
        scatterRow(c.valueValues(p, h, t), c.valuePositions(p, h, t), p.kValue,
                   p.valueEncoding, d, st, value);
      }
    }
  }
  for (int64_t t = 0; t < s.buffer.count; ++t, ++token) {
    out.keyK.push_back(d);
    out.valueK.push_back(d);
    out.inBuffer.push_back(true);
    for (int64_t h = 0; h < hCount; ++h) {
      loadRows(c.bufferKeys(s.buffer, h, s.buffer.start + t),
               out.keys.data() + (token * hCount + h) * d, d, st);
      loadRows(c.bufferValues(s.buffer, h, s.buffer.start + t),
               out.values.data() + (token * hCount + h) * d, d, st);
    }
  }
  return out;
}
