//===- Attention.cpp - the model's KV caches: dense and SWAN --------------===//

#include "swan/Runtime/Model/Attention.h"

#include "llvm/ADT/Twine.h"

#include <cmath>

using namespace swan;
using namespace swan::model;

namespace {

llvm::Error attentionError(const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "model attention: " + why);
}

llvm::Error checkLayer(const ModelConfig &c, int32_t layer) {
  if (layer < 0 || layer >= c.layers)
    return attentionError("layer " + llvm::Twine(layer) + " outside the " +
                          llvm::Twine(c.layers) + " layers");
  return llvm::Error::success();
}

} // namespace

DenseAttention::DenseAttention(const ModelConfig &config)
    : cfg(config), layerKeys(config.layers), layerValues(config.layers) {}

llvm::Error DenseAttention::attend(int32_t layer, int64_t first, int64_t n,
                                   const float *q, const float *k,
                                   const float *v, float *out) {
  if (llvm::Error e = checkLayer(cfg, layer))
    return e;
  // Layer 0 starts a pass; later layers see the same positions.
  const int64_t kvRow = cfg.kvDim();
  std::vector<float> &keys = layerKeys[layer], &values = layerValues[layer];
  if (first != held || static_cast<int64_t>(keys.size()) != held * kvRow)
    return attentionError("tokens from position " + llvm::Twine(first) +
                          ", but layer " + llvm::Twine(layer) + " holds " +
                          llvm::Twine(int64_t(keys.size()) / kvRow));
  keys.insert(keys.end(), k, k + n * kvRow);
  values.insert(values.end(), v, v + n * kvRow);
  causalAttention(q, first, n, keys.data(), values.data(), cfg.heads,
                  cfg.kvHeads, cfg.headDim(), out);
  if (layer == cfg.layers - 1)
    held += n;
  return llvm::Error::success();
}

llvm::ArrayRef<float> DenseAttention::keys(int32_t layer) const {
  return llvm::ArrayRef(layerKeys[layer]).take_front(held * cfg.kvDim());
}

llvm::ArrayRef<float> DenseAttention::values(int32_t layer) const {
  return llvm::ArrayRef(layerValues[layer]).take_front(held * cfg.kvDim());
}

void DenseAttention::clear() {
  held = 0;
  for (int32_t l = 0; l < cfg.layers; ++l) {
    layerKeys[l].clear();
    layerValues[l].clear();
  }
}

size_t DenseAttention::fp16Bytes() const {
  return size_t(held) * cfg.layers * 2 * cfg.kvDim() * 2;
}

llvm::Expected<CacheAttention>
CacheAttention::create(const ModelConfig &config, CacheConfig base,
                       llvm::ArrayRef<std::vector<float>> rotK,
                       llvm::ArrayRef<std::vector<float>> rotV) {
  if (static_cast<int32_t>(rotK.size()) != config.layers ||
      static_cast<int32_t>(rotV.size()) != config.layers)
    return attentionError("rotations for " + llvm::Twine(rotK.size()) +
                          " and " + llvm::Twine(rotV.size()) +
                          " layers, the model has " +
                          llvm::Twine(config.layers));
  base.headDim = config.headDim();
  base.numKvHeads = config.kvHeads;
  base.groupSize = config.group();
  std::vector<Cache> caches;
  for (int32_t l = 0; l < config.layers; ++l) {
    auto cache = Cache::create(base, rotK[l], rotV[l]);
    if (!cache)
      return attentionError("layer " + llvm::Twine(l) + ": " +
                            llvm::toString(cache.takeError()));
    caches.push_back(std::move(*cache));
  }
  return CacheAttention(config, std::move(caches));
}

llvm::Error CacheAttention::attend(int32_t layer, int64_t first, int64_t n,
                                   const float *q, const float *k,
                                   const float *v, float *out) {
  if (llvm::Error e = checkLayer(cfg, layer))
    return e;
  Cache &cache = caches[layer];
  const int64_t held = std::max<int64_t>(cache.tokens(kSequence), 0);
  if (first != held)
    return attentionError("tokens from position " + llvm::Twine(first) +
                          ", but layer " + llvm::Twine(layer) + " holds " +
                          llvm::Twine(held));
  const int64_t kvRow = cfg.kvDim(), qRow = int64_t(cfg.heads) * cfg.headDim();
  if (held == 0 && n > 1) {
    // A prompt: dense causal attention over its own keys and values, then
    // one bulk append.
    causalAttention(q, 0, n, k, v, cfg.heads, cfg.kvHeads, cfg.headDim(), out);
    return cache.append(kSequence, n, k, v);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(cfg.headDim()));
  for (int64_t t = 0; t < n; ++t) {
    if (llvm::Error e =
            cache.append(kSequence, 1, k + t * kvRow, v + t * kvRow))
      return e;
    if (llvm::Error e =
            cache.attention({kSequence}, q + t * qRow, scale, out + t * qRow))
      return e;
  }
  return llvm::Error::success();
}

llvm::Error CacheAttention::setK(int32_t kKey, int32_t kValue) {
  for (Cache &cache : caches)
    if (llvm::Error e = cache.setK(kKey, kValue))
      return e;
  return llvm::Error::success();
}

llvm::Error CacheAttention::rewinnow(int32_t kKey, int32_t kValue) {
  for (Cache &cache : caches)
    if (llvm::Error e = cache.rewinnow(kKey, kValue))
      return e;
  return llvm::Error::success();
}

size_t CacheAttention::bytes() const {
  size_t total = 0;
  for (const Cache &cache : caches)
    total += cache.bytes();
  return total;
}
