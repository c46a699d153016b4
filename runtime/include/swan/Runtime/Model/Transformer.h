//===- Transformer.h - the Llama forward pass over a KV cache --*- C++ -*-===//
//
// The forward pass of a llama2.c checkpoint: RMSNorm, attention with RoPE
// (θ = 10000, interleaved pairs (2i, 2i+1) in each head), a SwiGLU FFN, a
// final RMSNorm and the classifier. The pass owns no KV cache: each layer's
// attention is handed to a LayerAttention, so that the same pass runs over
// a plain dense cache (the baseline), a swan::Cache per layer (what a
// serving engine would do), or a simulated compressed cache (swan-quality).
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_MODEL_TRANSFORMER_H
#define SWAN_RUNTIME_MODEL_TRANSFORMER_H

#include "swan/Runtime/Model/Checkpoint.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <random>
#include <vector>

namespace swan::model {

/// A model's KV cache and attention, one call per layer per forward pass.
class LayerAttention {
public:
  virtual ~LayerAttention();
  /// Tokens at positions [first, first + n) of `layer`: q [n][heads][D], and
  /// k, v [n][kvHeads][D], keys after RoPE. Stores k and v after the tokens
  /// already held (which must be exactly `first`) and writes
  /// out [n][heads][D], each token attending to every token up to itself.
  virtual llvm::Error attend(int32_t layer, int64_t first, int64_t n,
                             const float *q, const float *k, const float *v,
                             float *out) = 0;
};

class Transformer {
public:
  explicit Transformer(const Checkpoint &checkpoint) : weights(checkpoint) {}

  const ModelConfig &config() const { return weights.config(); }

  /// Runs `tokens` at positions [position, position + tokens.size()) and
  /// returns the logits [vocab] of the last one, or of every one
  /// ([tokens][vocab]) with `allLogits`. Fails on a token outside the
  /// vocabulary, positions beyond the model's context, or an attention error.
  llvm::Expected<std::vector<float>> forward(llvm::ArrayRef<int32_t> tokens,
                                             int64_t position,
                                             LayerAttention &attention,
                                             bool allLogits = false) const;

private:
  const Checkpoint &weights;
};

/// Dense causal attention in float: queries q [n][heads][D] at positions
/// [first, first + n) over keys and values [first + n][kvHeads][D].
void causalAttention(const float *q, int64_t first, int64_t n,
                     const float *keys, const float *values, int32_t heads,
                     int32_t kvHeads, int32_t headDim, float *out);

/// The token with the largest logit (the first on ties).
int32_t argmax(llvm::ArrayRef<float> logits);
/// A token drawn from softmax(logits / temperature); temperature > 0.
int32_t sample(llvm::ArrayRef<float> logits, float temperature,
               std::mt19937_64 &rng);
/// softmax(logits) in double.
std::vector<double> softmax(llvm::ArrayRef<float> logits);
/// KL(p ‖ q) = Σ p log(p / q) of two distributions over the same tokens.
double klDivergence(llvm::ArrayRef<double> p, llvm::ArrayRef<double> q);

} // namespace swan::model

#endif // SWAN_RUNTIME_MODEL_TRANSFORMER_H
