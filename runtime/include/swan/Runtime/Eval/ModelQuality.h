//===- ModelQuality.h - compression quality inside a real model -*- C++ -*-===//
//
// docs/QUALITY.md's end-to-end measure: a model reads stories it sampled
// itself (teacher-forced), once with its dense cache and once per method
// with every layer's cache as that method stores it, and the next-token
// distributions are compared. For the query at position t, a token j is
// seen exactly when j > t − buffer (the methods with a buffer), not at all
// when j ≤ t − window (the window), and otherwise as reconstruct()
// (Quality.h) left it, in the method's basis and rotated back. Keys and
// values are compressed once, when they are made, as a cache would.
//
// Metrics over every prediction of the next token from position
// `firstPosition` on: mean KL(dense ‖ method) in nats, the share of
// positions whose most likely token is the dense one's, and the mean change
// of the negative log-likelihood of the story's actual next token.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_EVAL_MODELQUALITY_H
#define SWAN_RUNTIME_EVAL_MODELQUALITY_H

#include "swan/Runtime/Eval/ModelCalibration.h"
#include "swan/Runtime/Eval/Quality.h"
#include "swan/Runtime/Model/Transformer.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace swan::quality {

struct ModelMetrics {
  double kl = 0.0;        ///< mean KL(dense ‖ method), nats
  double top1 = 0.0;      ///< share with the dense run's most likely token
  double nllChange = 0.0; ///< mean NLL(method) − NLL(dense), nats
  int64_t predictions = 0;
};

class ModelEvaluator {
public:
  /// `stories` start with BOS and fit the context; `rotations` are the
  /// model's (calibrated on other stories).
  static llvm::Expected<ModelEvaluator>
  create(const model::Transformer &transformer, ModelRotations rotations,
         std::vector<std::vector<int32_t>> stories, int64_t firstPosition);

  llvm::Expected<ModelMetrics> evaluate(const Setting &setting) const;
  /// Mean story length: the cache size the byte budgets are accounted at.
  int64_t meanTokens() const;
  int64_t predictions() const;

private:
  ModelEvaluator(const model::Transformer &transformer)
      : transformer(transformer) {}

  const model::Transformer &transformer;
  ModelRotations rotations;
  std::vector<std::vector<int32_t>> stories;
  int64_t firstPosition = 0;
  /// Per story, the dense run's log-probabilities [tokens][vocab].
  std::vector<std::vector<float>> denseLogProbs;
};

} // namespace swan::quality

#endif // SWAN_RUNTIME_EVAL_MODELQUALITY_H
