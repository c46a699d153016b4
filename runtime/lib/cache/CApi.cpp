//===- CApi.cpp - the C API of the SWAN KV cache over the C++ one ---------===//
//
// Each entry point checks the pointers C callers can get wrong, calls the C++
// cache, and turns its llvm::Error into a swan_status plus a thread-local
// message.
//
//===----------------------------------------------------------------------===//

#include "swan/swan.h"

#include "CacheHandle.h"
#include "swan/Cache.h"
#include "swan/WeightFolding.h"

#include <cstring>
#include <string>

using namespace swan;

namespace {

thread_local std::string lastError;

swan_status toStatus(CacheErrorCode code) {
  switch (code) {
  case CacheErrorCode::InvalidArgument:
    return SWAN_ERR_INVALID_ARGUMENT;
  case CacheErrorCode::OutOfMemory:
    return SWAN_ERR_OUT_OF_MEMORY;
  case CacheErrorCode::Unsupported:
    return SWAN_ERR_UNSUPPORTED;
  case CacheErrorCode::Internal:
    return SWAN_ERR_INTERNAL;
  }
  return SWAN_ERR_INTERNAL;
}

swan_status report(swan_status status, std::string message) {
  lastError = std::move(message);
  return status;
}

swan_status report(llvm::Error error) {
  swan_status status = SWAN_OK;
  std::string message;
  llvm::handleAllErrors(
      std::move(error),
      [&](const CacheError &e) {
        status = toStatus(e.getCode());
        message = e.getMessage();
      },
      [&](const llvm::ErrorInfoBase &e) {
        status = SWAN_ERR_INTERNAL;
        message = e.message();
      });
  if (status == SWAN_OK)
    return SWAN_OK;
  return report(status, std::move(message));
}

} // namespace

extern "C" {

swan_status swan_cache_create(const swan_cache_config *cfg, const float *rot_k,
                              const float *rot_v, swan_cache **out) {
  if (!out)
    return report(SWAN_ERR_INVALID_ARGUMENT, "out is NULL");
  if (!cfg)
    return report(SWAN_ERR_INVALID_ARGUMENT, "cfg is NULL");
  if (!rot_k)
    return report(SWAN_ERR_INVALID_ARGUMENT, "rot_k is NULL");
  if (!rot_v)
    return report(SWAN_ERR_INVALID_ARGUMENT, "rot_v is NULL");
  // A C caller may store any int in an enum field; C++ may not load one
  // outside the enumerators, so read the raw bits.
  static_assert(sizeof(swan_dtype) == sizeof(int32_t) &&
                    sizeof(swan_device) == sizeof(int32_t) &&
                    sizeof(swan_value_encoding) == sizeof(int32_t) &&
                    sizeof(swan_winnowed_storage) == sizeof(int32_t),
                "C enums are int-sized");
  int32_t dtype, device, valueEncoding, keyEncoding, winnowed;
  std::memcpy(&dtype, &cfg->dtype, sizeof(dtype));
  std::memcpy(&device, &cfg->device, sizeof(device));
  std::memcpy(&valueEncoding, &cfg->value_encoding, sizeof(valueEncoding));
  std::memcpy(&keyEncoding, &cfg->key_encoding, sizeof(keyEncoding));
  std::memcpy(&winnowed, &cfg->winnowed_storage, sizeof(winnowed));
  if (dtype != SWAN_DTYPE_F32 && dtype != SWAN_DTYPE_F16)
    return report(SWAN_ERR_INVALID_ARGUMENT,
                  "cfg->dtype = " + std::to_string(dtype) +
                      " is neither SWAN_DTYPE_F32 nor SWAN_DTYPE_F16");
  if (device != SWAN_DEVICE_CPU && device != SWAN_DEVICE_CUDA)
    return report(SWAN_ERR_INVALID_ARGUMENT,
                  "cfg->device = " + std::to_string(device) +
                      " is neither SWAN_DEVICE_CPU nor SWAN_DEVICE_CUDA");
  if ((cfg->values_prerotated != 0 && cfg->values_prerotated != 1))
    return report(SWAN_ERR_INVALID_ARGUMENT,
                  "cfg->values_prerotated must be 0 or 1");
  if ((cfg->output_rotated != 0 && cfg->output_rotated != 1))
    return report(SWAN_ERR_INVALID_ARGUMENT,
                  "cfg->output_rotated must be 0 or 1");
  if (valueEncoding != SWAN_ENCODING_AUTO &&
      valueEncoding != SWAN_ENCODING_INDICES &&
      valueEncoding != SWAN_ENCODING_MASK)
    return report(SWAN_ERR_INVALID_ARGUMENT,
                  "cfg->value_encoding = " + std::to_string(valueEncoding) +
                      " is none of SWAN_ENCODING_AUTO, SWAN_ENCODING_INDICES, "
                      "SWAN_ENCODING_MASK");
  if (keyEncoding != SWAN_ENCODING_AUTO &&
      keyEncoding != SWAN_ENCODING_INDICES && keyEncoding != SWAN_ENCODING_MASK)
    return report(SWAN_ERR_INVALID_ARGUMENT,
                  "cfg->key_encoding = " + std::to_string(keyEncoding) +
                      " is none of SWAN_ENCODING_AUTO, SWAN_ENCODING_INDICES, "
                      "SWAN_ENCODING_MASK");
  if (winnowed != SWAN_WINNOWED_AS_DTYPE && winnowed != SWAN_WINNOWED_INT8)
    return report(SWAN_ERR_INVALID_ARGUMENT,
                  "cfg->winnowed_storage = " + std::to_string(winnowed) +
                      " is neither SWAN_WINNOWED_AS_DTYPE nor "
                      "SWAN_WINNOWED_INT8");
  if (cfg->page_tokens < 0)
    return report(SWAN_ERR_INVALID_ARGUMENT,
                  "cfg->page_tokens = " + std::to_string(cfg->page_tokens) +
                      " is negative");

  CacheConfig config;
  config.headDim = cfg->head_dim;
  config.numKvHeads = cfg->num_kv_heads;
  config.groupSize = cfg->group_size;
  config.bufferTokens = cfg->buffer_tokens;
  config.maxSequences = cfg->max_sequences;
  config.kKey = cfg->k_key;
  config.kValue = cfg->k_value;
  config.storage =
      dtype == SWAN_DTYPE_F16 ? StorageType::F16 : StorageType::F32;
  config.device = device == SWAN_DEVICE_CUDA ? Device::CUDA : Device::CPU;
  config.valuesPrerotated = cfg->values_prerotated;
  config.outputRotated = cfg->output_rotated;
  if (cfg->page_tokens > 0)
    config.pageTokens = cfg->page_tokens;
  auto encoding = [](int32_t raw) {
    return raw == SWAN_ENCODING_INDICES ? ValueEncoding::Indices
           : raw == SWAN_ENCODING_MASK  ? ValueEncoding::Mask
                                        : ValueEncoding::Auto;
  };
  config.valueEncoding = encoding(valueEncoding);
  config.keyEncoding = encoding(keyEncoding);
  config.winnowed = winnowed == SWAN_WINNOWED_INT8 ? WinnowedStorage::Int8
                                                   : WinnowedStorage::AsStorage;

  // The rotations are only read once the sizes are known to be valid; until
  // then Cache::create reports the bad size.
  bool sized = cfg->head_dim >= 1 && cfg->head_dim <= swan::kMaxHeadDim &&
               cfg->num_kv_heads >= 1;
  size_t rotationFloats = sized ? static_cast<size_t>(cfg->num_kv_heads) *
                                      cfg->head_dim * cfg->head_dim
                                : 0;
  auto cache = Cache::create(config, llvm::ArrayRef(rot_k, rotationFloats),
                             llvm::ArrayRef(rot_v, rotationFloats));
  if (!cache)
    return report(cache.takeError());
  auto *handle = new (std::nothrow) swan_cache(std::move(*cache));
  if (!handle)
    return report(SWAN_ERR_OUT_OF_MEMORY, "cannot allocate the cache handle");
  *out = handle;
  return SWAN_OK;
}

swan_status swan_cache_append(swan_cache *c, int32_t seq, int32_t n_tokens,
                              const float *keys, const float *values) {
  if (!c)
    return report(SWAN_ERR_INVALID_ARGUMENT, "c is NULL");
  return report(c->cache.append(seq, n_tokens, keys, values));
}

swan_status swan_cache_set_k(swan_cache *c, int32_t k_key, int32_t k_value) {
  if (!c)
    return report(SWAN_ERR_INVALID_ARGUMENT, "c is NULL");
  return report(c->cache.setK(k_key, k_value));
}

swan_status swan_cache_rewinnow(swan_cache *c, int32_t k_key, int32_t k_value) {
  if (!c)
    return report(SWAN_ERR_INVALID_ARGUMENT, "c is NULL");
  return report(c->cache.rewinnow(k_key, k_value));
}

swan_status swan_cache_attention(swan_cache *c, int32_t n_seqs,
                                 const int32_t *seqs, const float *q,
                                 float scale, float *out) {
  if (!c)
    return report(SWAN_ERR_INVALID_ARGUMENT, "c is NULL");
  if (n_seqs < 1)
    return report(SWAN_ERR_INVALID_ARGUMENT,
                  "n_seqs = " + std::to_string(n_seqs) + " must be at least 1");
  if (!seqs)
    return report(SWAN_ERR_INVALID_ARGUMENT, "seqs is NULL");
  return report(
      c->cache.attention(llvm::ArrayRef(seqs, n_seqs), q, scale, out));
}

swan_status swan_cache_release(swan_cache *c, int32_t seq) {
  if (!c)
    return report(SWAN_ERR_INVALID_ARGUMENT, "c is NULL");
  return report(c->cache.release(seq));
}

int64_t swan_cache_tokens(const swan_cache *c, int32_t seq) {
  return c ? c->cache.tokens(seq) : -1;
}

size_t swan_cache_bytes(const swan_cache *c) {
  return c ? c->cache.bytes() : 0;
}

int64_t swan_cache_break_even_tokens(const swan_cache *c) {
  return c ? c->cache.breakEvenTokens() : -1;
}

const char *swan_last_error(void) { return lastError.c_str(); }

void swan_cache_destroy(swan_cache *c) { delete c; }

swan_status swan_fold_value_rotation(int32_t num_kv_heads, int32_t group_size,
                                     int32_t head_dim, int32_t model_dim,
                                     const float *rot_v, float *w_v,
                                     float *w_o) {
  return report(foldValueRotation(
      {num_kv_heads, group_size, head_dim, model_dim}, rot_v, w_v, w_o));
}

} // extern "C"
