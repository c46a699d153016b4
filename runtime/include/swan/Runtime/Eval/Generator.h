//===- Generator.h - seeded LLM-like K/V caches and queries ----*- C++ -*-===//
//
// No model weights can be downloaded where swan is developed, so tests, the
// demo and the quality report run on K/V data generated with the structure
// real decoder caches show (docs/DESIGN.md §7):
//
//   keys    pre-RoPE: a power-law spectrum (std of the j-th principal
//           direction ∝ (1+j)^-keyDecay, low effective rank) in a random
//           orthonormal basis, plus a few large outlier channels with a
//           consistent sign placed in low-frequency RoPE pairs; then RoPE
//           (half-split, GPT-NeoX/Llama convention) by absolute position.
//   values  a flatter power-law spectrum in another random basis, no RoPE,
//           no outliers.
//   queries for the decode step at position t (attending tokens 0..t): a
//           key-like noise direction giving logits of std `queryNoiseLogit`,
//           plus directions that raise the logit of an attention sink
//           (token 0), of the most recent token and of one random earlier
//           token per query head by the given amounts, so that attention is
//           peaked the way a trained model's is.
//
// The "model" (bases, spectra, outlier channels) depends only on modelSeed,
// the layer and the KV head; the tokens depend on sequenceSeed as well. So a
// calibration on one sequence applies to another sequence of the same model,
// as with a real model. Every figure computed on this data must say it is
// generated data.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_EVAL_GENERATOR_H
#define SWAN_RUNTIME_EVAL_GENERATOR_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace swan {

struct KVGeneratorConfig {
  int64_t tokens = 1024;
  int64_t kvHeads = 1;
  int64_t headDim = 128;  ///< Even: RoPE rotates pairs.
  int64_t queryGroup = 1; ///< G query heads per KV head (GQA).
  int64_t layer = 0;
  int64_t firstPosition = 0; ///< RoPE position of token 0.
  uint64_t modelSeed = 1;    ///< Bases, spectra, outlier channels.
  uint64_t sequenceSeed = 1; ///< The tokens and queries.

  double keyDecay = 1.0;     ///< Power-law exponent of the key spectrum.
  double valueDecay = 0.4;   ///< Flatter: values spread their energy.
  int64_t keyOutliers = 4;   ///< Outlier channels per KV head.
  double outlierScale = 6.0; ///< Outlier magnitude in units of the rms.
  double ropeBase = 10000.0;

  bool withQueries = true;
  double queryNoiseLogit = 1.0; ///< Std of the untargeted logits.
  double sinkLogit = 5.0;       ///< Logit added to token 0.
  double recentLogit = 4.0;     ///< Logit added to token t.
  double retrievalLogit = 7.0;  ///< Logit added to one random token ≤ t.
};

/// One layer of generated data. Keys are post-RoPE, as a cache holds them.
struct GeneratedKV {
  int64_t tokens = 0, kvHeads = 0, headDim = 0, queryGroup = 0;
  std::vector<float> keys;   ///< [tokens][kvHeads][headDim]
  std::vector<float> values; ///< [tokens][kvHeads][headDim]
  /// [tokens][kvHeads * queryGroup][headDim]: row t is the decode query at
  /// position t; query head h·G + g belongs to KV head h. Empty unless
  /// withQueries.
  std::vector<float> queries;
};

/// Generates one layer; fails on a meaningless configuration (non-positive
/// sizes, odd head_dim, more outliers than channels).
llvm::Expected<GeneratedKV> generateKV(const KVGeneratorConfig &config);

} // namespace swan

#endif // SWAN_RUNTIME_EVAL_GENERATOR_H
