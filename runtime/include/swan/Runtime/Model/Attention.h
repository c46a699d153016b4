//===- Attention.h - the model's KV caches: dense and SWAN -----*- C++ -*-===//
//
// Two LayerAttention implementations over which the same Transformer runs:
//   DenseAttention  every key and value in float32, plain causal attention:
//                   the baseline, and the source of calibration samples.
//   CacheAttention  one swan::Cache per layer, used as a serving engine
//                   would: a prompt attends densely (causal attention over
//                   its own keys and values) and is then appended in bulk,
//                   which the cache compresses with its prefill kernel; each
//                   later token is appended, then attends through the cache.
// Both hold one sequence.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_MODEL_ATTENTION_H
#define SWAN_RUNTIME_MODEL_ATTENTION_H

#include "swan/Cache.h"
#include "swan/Runtime/Model/Transformer.h"

#include <vector>

namespace swan::model {

class DenseAttention : public LayerAttention {
public:
  explicit DenseAttention(const ModelConfig &config);
  llvm::Error attend(int32_t layer, int64_t first, int64_t n, const float *q,
                     const float *k, const float *v, float *out) override;

  int64_t tokens() const { return held; }
  /// A layer's keys or values, [tokens()][kvHeads][D].
  llvm::ArrayRef<float> keys(int32_t layer) const;
  llvm::ArrayRef<float> values(int32_t layer) const;
  /// Bytes the same tokens take in a dense fp16 cache.
  size_t fp16Bytes() const;
  /// Forgets every token.
  void clear();

private:
  ModelConfig cfg;
  int64_t held = 0;
  std::vector<std::vector<float>> layerKeys, layerValues;
};

class CacheAttention : public LayerAttention {
public:
  /// One cache per layer with `base`'s settings (k, buffer, storage, ...);
  /// its shape fields are taken from the model. rotK, rotV: per layer,
  /// [kvHeads][D][D].
  static llvm::Expected<CacheAttention>
  create(const ModelConfig &config, CacheConfig base,
         llvm::ArrayRef<std::vector<float>> rotK,
         llvm::ArrayRef<std::vector<float>> rotV);

  llvm::Error attend(int32_t layer, int64_t first, int64_t n, const float *q,
                     const float *k, const float *v, float *out) override;

  /// Every layer's cache: set_k, rewinnow, bytes.
  llvm::Error setK(int32_t kKey, int32_t kValue);
  llvm::Error rewinnow(int32_t kKey, int32_t kValue);
  size_t bytes() const;
  const Cache &cache(int32_t layer) const { return caches[layer]; }
  /// The sequence every cache holds.
  static constexpr int32_t kSequence = 0;

private:
  CacheAttention(ModelConfig config, std::vector<Cache> caches)
      : cfg(config), caches(std::move(caches)) {}

  ModelConfig cfg;
  std::vector<Cache> caches;
};

} // namespace swan::model

#endif // SWAN_RUNTIME_MODEL_ATTENTION_H
