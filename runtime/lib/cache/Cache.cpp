//===- Cache.cpp - the SWAN KV cache of one attention layer ---------------===//
//
// swan::Cache checks every call here, once for both devices, so that both
// reject the same arguments with the same messages; then one token store
// does the work: HostStore (CPU memory, JIT-compiled kernels) or
// cuda::DeviceStore (GPU memory, generated GPU kernels), chosen at creation.
//
//===----------------------------------------------------------------------===//

#include "swan/Cache.h"

#include "HostStore.h"
#include "swan/Runtime/CUDA/DeviceStore.h"
#include "swan/Runtime/CacheHost.h"
#include "swan/Runtime/CostModel.h"

#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

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

/// A store's failure as a cache error; driver and kernel faults are
/// internal errors.
Error fromStatus(const Status &status) {
  switch (status.code()) {
  case StatusCode::Ok:
    return Error::success();
  case StatusCode::Unsupported:
    return fail(CacheErrorCode::Unsupported, status.message());
  case StatusCode::InvalidArgument:
    return invalid(status.message());
  case StatusCode::OutOfMemory:
    return fail(CacheErrorCode::OutOfMemory, status.message());
  case StatusCode::DriverError:
  case StatusCode::Internal:
    break;
  }
  return fail(CacheErrorCode::Internal, status.message());
}

/// Logits are bounded by |scale|·‖q‖·‖k‖ (Cauchy-Schwarz, every partial sum
/// included); below this bound, with room for rounding, none overflows f32.
constexpr double kMaxLogitBound = 0x1p124;

} // namespace

namespace swan {

class CacheImpl {
public:
  CacheImpl(const CacheConfig &config, std::unique_ptr<TokenStore> store)
      : config(config), store(std::move(store)), currentKKey(config.kKey),
        currentKValue(config.kValue) {}

  int64_t dim() const { return config.headDim; }
  int64_t heads() const { return config.numKvHeads; }

  Error append(int32_t seq, int64_t n, const float *keys, const float *values);
  Error attention(ArrayRef<int32_t> seqs, const float *q, float scale,
                  float *out) const;

  CacheConfig config;
  std::unique_ptr<TokenStore> store;
  int32_t currentKKey, currentKValue;
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
    return invalid(
        llvm::Twine(name) + " holds " + llvm::Twine(rotation.size()) +
        " floats, expected H*D*D = " + llvm::Twine(heads * dim * dim));
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
  if (c.headDim < 1 || c.headDim > kMaxHeadDim)
    return invalid(llvm::Twine("head_dim = ") + llvm::Twine(c.headDim) +
                   " is outside [1, " + llvm::Twine(kMaxHeadDim) +
                   "] (indices are bytes)");
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
  if (c.winnowed != WinnowedStorage::AsStorage &&
      c.winnowed != WinnowedStorage::Int8)
    return invalid("winnowed_storage is neither SWAN_WINNOWED_AS_DTYPE nor "
                   "SWAN_WINNOWED_INT8");
  return checkK(c.kKey, c.kValue, c.headDim);
}

/// The CPU kernels, JIT-compiled once per (D, G, storage, winnowed
/// storage).
static Expected<std::shared_ptr<const KernelSet>>
cpuKernels(const CacheConfig &c) {
  auto kernels =
      KernelSet::get({c.headDim, c.groupSize, c.storage, c.winnowed});
  if (!kernels)
    return fail(CacheErrorCode::Unsupported,
                llvm::Twine("no CPU kernels for head_dim = ") +
                    llvm::Twine(c.headDim) +
                    ", group_size = " + llvm::Twine(c.groupSize) + ": " +
                    llvm::toString(kernels.takeError()));
  return kernels;
}

/// The CUDA store: the driver, the kernels embedded for (D, G, storage) and
/// the rotations in device memory.
static Expected<std::unique_ptr<TokenStore>>
cudaStore(const CacheConfig &c, ArrayRef<float> rotK, ArrayRef<float> rotV) {
  if (c.winnowed == WinnowedStorage::Int8)
    return fail(CacheErrorCode::Unsupported,
                "device = SWAN_DEVICE_CUDA has no kernels for "
                "winnowed_storage = SWAN_WINNOWED_INT8 yet (the CPU has)");
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
  std::unique_ptr<cuda::DeviceStore> store;
  if (Status s =
          cuda::DeviceStore::create(shape, rotK.data(), rotV.data(), store);
      !s.isOk())
    return fromStatus(
        Status::error(s.code(), "device = SWAN_DEVICE_CUDA: " + s.message()));
  return std::unique_ptr<TokenStore>(std::move(store));
}

Expected<Cache> Cache::create(const CacheConfig &config, ArrayRef<float> rotK,
                              ArrayRef<float> rotV) {
  if (Error e = checkConfig(config))
    return std::move(e);
  if (Error e =
          checkRotations(rotK, "rot_k", config.numKvHeads, config.headDim))
    return std::move(e);
  if (Error e =
          checkRotations(rotV, "rot_v", config.numKvHeads, config.headDim))
    return std::move(e);
  std::unique_ptr<TokenStore> store;
  switch (config.device) {
  case Device::CPU: {
    auto kernels = cpuKernels(config);
    if (!kernels)
      return kernels.takeError();
    store = std::make_unique<HostStore>(config, std::move(*kernels),
                                        rotK.data(), rotV.data());
    break;
  }
  case Device::CUDA: {
    auto device = cudaStore(config, rotK, rotV);
    if (!device)
      return device.takeError();
    store = std::move(*device);
    break;
  }
  }
  if (!store)
    return invalid("device is neither SWAN_DEVICE_CPU nor SWAN_DEVICE_CUDA");
  return Cache(std::make_unique<CacheImpl>(config, std::move(store)));
}

Cache::Cache(std::unique_ptr<CacheImpl> impl) : impl(std::move(impl)) {}
Cache::Cache(Cache &&) noexcept = default;
Cache &Cache::operator=(Cache &&) noexcept = default;
Cache::~Cache() = default;

const CacheConfig &Cache::config() const { return impl->config; }

//===----------------------------------------------------------------------===//
// Append, k and re-winnowing
//===----------------------------------------------------------------------===//

Error Cache::append(int32_t seq, int64_t tokens, const float *keys,
                    const float *values) {
  return impl->append(seq, tokens, keys, values);
}

Error CacheImpl::append(int32_t seq, int64_t n, const float *keys,
                        const float *values) {
  if (seq < 0)
    return invalid(llvm::Twine("seq = ") + llvm::Twine(seq) + " is negative");
  if (n < 0)
    return invalid(llvm::Twine("n_tokens = ") + llvm::Twine(n) +
                   " is negative");
  if (n > 0 && !keys)
    return invalid("keys is NULL");
  if (n > 0 && !values)
    return invalid("values is NULL");
  if (!store->contains(seq) && store->sequenceCount() >= config.maxSequences)
    return invalid(llvm::Twine("seq = ") + llvm::Twine(seq) +
                   " is new, but the cache already holds max_sequences = " +
                   llvm::Twine(config.maxSequences) + " sequences");
  return fromStatus(
      store->append(seq, n, keys, values, currentKKey, currentKValue));
}

Error Cache::setK(int32_t kKey, int32_t kValue) {
  if (Error e = checkK(kKey, kValue, impl->config.headDim))
    return e;
  impl->currentKKey = kKey;
  impl->currentKValue = kValue;
  return Error::success();
}

Error Cache::rewinnow(int32_t kKey, int32_t kValue) {
  if (Error e = checkK(kKey, kValue, impl->config.headDim))
    return e;
  if (Error e = fromStatus(impl->store->rewinnow(kKey, kValue)))
    return e;
  return setK(kKey, kValue);
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

Error CacheImpl::attention(ArrayRef<int32_t> seqs, const float *q, float scale,
                           float *out) const {
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
    int64_t tokens = store->tokens(seqs[i]);
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
    const double keyNorm = store->maxKeyNorm(seqs[i]);
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

  if (Error e =
          fromStatus(store->attention(seqs.data(), seqs.size(), q, scale, out)))
    return e;
  // Finite q, keys and scale can still give logits beyond f32's range.
  if (int64_t bad = firstNonFinite(out, queryFloats, StorageType::F32);
      bad >= 0)
    return invalid(llvm::Twine("out[") + llvm::Twine(bad) +
                   "] is not finite: the logits q·k·scale overflow f32");
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
  if (!impl->store->contains(seq))
    return unknownSequence(seq);
  impl->store->release(seq);
  return Error::success();
}

int64_t Cache::tokens(int32_t seq) const { return impl->store->tokens(seq); }

size_t Cache::bytes() const { return impl->store->bytes(); }

int64_t Cache::sequenceCount() const { return impl->store->sequenceCount(); }

Expected<SequenceStats> Cache::stats(int32_t seq) const {
  if (!impl->store->contains(seq))
    return unknownSequence(seq);
  SequenceStats stats;
  static_cast<StoredSequence &>(stats) = impl->store->sequence(seq);
  stats.breakEvenTokens = breakEvenTokens();
  stats.belowBreakEven =
      stats.bufferTokens + stats.sparseTokens < stats.breakEvenTokens;
  return stats;
}

Expected<DecompressedSequence> Cache::decompress(int32_t seq) const {
  if (!impl->store->contains(seq))
    return unknownSequence(seq);
  DecompressedSequence out;
  if (Error e = fromStatus(impl->store->decompress(seq, out)))
    return std::move(e);
  return out;
}
