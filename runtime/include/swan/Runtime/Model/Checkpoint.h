//===- Checkpoint.h - llama2.c checkpoints, validated ----------*- C++ -*-===//
//
// A Llama-architecture model in llama2.c's file format (stories15M/42M/110M,
// and Llama models exported to it): 7 int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means the
// classifier is stored after the weights instead of shared with the token
// embedding), then float32 arrays, matrices row-major [out][in]:
//   embedding [vocab][dim], rms_att [L][dim], wq [L][dim][dim],
//   wk [L][kv_dim][dim], wv [L][kv_dim][dim], wo [L][dim][dim],
//   rms_ffn [L][dim], w1 [L][hidden][dim], w2 [L][dim][hidden],
//   w3 [L][hidden][dim], rms_final [dim], a legacy RoPE table
//   [seq_len][head_dim] (skipped), then the classifier [vocab][dim] if any.
//
// Nothing in the file is trusted: the header must describe a consistent
// model, the file must be exactly as long as the header says, and every
// weight must be finite; otherwise loading fails with a message naming the
// file and the fault.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_MODEL_CHECKPOINT_H
#define SWAN_RUNTIME_MODEL_CHECKPOINT_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>

namespace swan::model {

struct ModelConfig {
  int32_t dim = 0;    ///< model width
  int32_t hidden = 0; ///< SwiGLU width
  int32_t layers = 0;
  int32_t heads = 0;   ///< query heads
  int32_t kvHeads = 0; ///< key/value heads (GQA when fewer than heads)
  int32_t vocab = 0;
  int32_t seqLen = 0; ///< the context the model was trained for
  bool sharedClassifier = true;

  int32_t headDim() const { return dim / heads; }
  int32_t kvDim() const { return kvHeads * headDim(); }
  /// Query heads per KV head.
  int32_t group() const { return heads / kvHeads; }
};

/// One layer's weights, pointing into the checkpoint.
struct LayerWeights {
  const float *rmsAtt, *wq, *wk, *wv, *wo, *rmsFfn, *w1, *w2, *w3;
};

class Checkpoint {
public:
  /// Maps and validates a checkpoint file.
  static llvm::Expected<Checkpoint> load(llvm::StringRef path);
  /// Validates a checkpoint held in memory; errors name it by the buffer's
  /// identifier.
  static llvm::Expected<Checkpoint>
  fromBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer);

  const ModelConfig &config() const { return cfg; }
  const float *embedding() const { return embeddingTable; }
  LayerWeights layer(int32_t index) const;
  const float *rmsFinal() const { return finalNorm; }
  /// [vocab][dim]: the embedding when shared.
  const float *classifier() const { return classifierMatrix; }

private:
  Checkpoint() = default;

  std::unique_ptr<llvm::MemoryBuffer> file;
  ModelConfig cfg;
  const float *embeddingTable = nullptr, *finalNorm = nullptr,
              *classifierMatrix = nullptr;
  // Per-layer arrays, [layers][...] each.
  const float *rmsAtt = nullptr, *wq = nullptr, *wk = nullptr, *wv = nullptr,
              *wo = nullptr, *rmsFfn = nullptr, *w1 = nullptr, *w2 = nullptr,
              *w3 = nullptr;
};

} // namespace swan::model

#endif // SWAN_RUNTIME_MODEL_CHECKPOINT_H
