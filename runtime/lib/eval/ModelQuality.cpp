//===- ModelQuality.cpp - compression quality inside a real model ---------===//

#include "swan/Runtime/Eval/ModelQuality.h"
#include "swan/Runtime/Eval/Reference.h"
#include "swan/Runtime/Model/Attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

using namespace swan;
using namespace swan::model;
using namespace swan::quality;

namespace {

llvm::Error qualityError(const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "model quality: " + why);
}

/// log softmax of each row of logits [rows][vocab], in place.
void logSoftmax(std::vector<float> &logits, int64_t vocab) {
  for (size_t r = 0; r * vocab < logits.size(); ++r) {
    float *row = logits.data() + r * vocab;
    const double top = *std::max_element(row, row + vocab);
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; ++i)
      sum += std::exp(double(row[i]) - top);
    const double logSum = top + std::log(sum);
    for (int64_t i = 0; i < vocab; ++i)
      row[i] = static_cast<float>(row[i] - logSum);
  }
}

/// A whole story's attention with each layer's keys and values as `setting`
/// stores them (ModelQuality.h). One forward pass from position 0.
class CompressedAttention : public LayerAttention {
public:
  CompressedAttention(const ModelConfig &c, const Setting &setting,
                      const ModelRotations &rotations)
      : cfg(c), setting(setting), rotations(rotations) {}

  llvm::Error attend(int32_t layer, int64_t first, int64_t n, const float *q,
                     const float *k, const float *v, float *out) override {
    if (first != 0)
      return qualityError("a story is evaluated in one pass from position 0");
    const int64_t H = cfg.kvHeads, D = cfg.headDim(), G = cfg.group();
    std::vector<float> ck =
        compressed(k, n, rotations.keys[layer], setting.compressKeys);
    std::vector<float> cv =
        compressed(v, n, rotations.values[layer], setting.compressValues);
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    std::vector<float> scores(n);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < cfg.heads; ++h) {
        const int64_t kvh = h / G;
        const float *qh = q + (t * cfg.heads + h) * D;
        const auto [from, exactFrom] = visibleTokens(setting, t);
        float top = -INFINITY;
        for (int64_t j = from; j <= t; ++j) {
          const float *kj =
              (j >= exactFrom ? k : ck.data()) + (j * H + kvh) * D;
          float dot = 0.0f;
          for (int64_t d = 0; d < D; ++d)
            dot += qh[d] * kj[d];
          scores[j] = dot * scale;
          top = std::max(top, scores[j]);
        }
        float sum = 0.0f;
        for (int64_t j = from; j <= t; ++j)
          sum += scores[j] = std::exp(scores[j] - top);
        float *o = out + (t * cfg.heads + h) * D;
        std::fill(o, o + D, 0.0f);
        for (int64_t j = from; j <= t; ++j) {
          const float *vj =
              (j >= exactFrom ? v : cv.data()) + (j * H + kvh) * D;
          const float p = scores[j] / sum;
          for (int64_t d = 0; d < D; ++d)
            o[d] += p * vj[d];
        }
      }
    return llvm::Error::success();
  }

private:
  /// Rows [n][H][D] as the method stores them, back in the original basis.
  std::vector<float> compressed(const float *rows, int64_t n,
                                const std::vector<float> &rotation,
                                bool compress) const {
    const int64_t H = cfg.kvHeads, D = cfg.headDim();
    std::vector<float> out(rows, rows + n * H * D);
    if (!compress)
      return out;
    const bool rotated = rotates(setting.method);
    std::vector<double> row(D), stored(D);
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> r(rotation.begin() + h * D * D,
                            rotation.begin() + (h + 1) * D * D);
      for (int64_t t = 0; t < n; ++t) {
        const float *src = rows + (t * H + h) * D;
        row.assign(src, src + D);
        if (rotated)
          row = reference::rotate(row, 1, D, r);
        reconstruct(setting, row.data(), D, stored.data());
        if (rotated)
          stored = reference::rotateBack(stored, 1, D, r);
        std::copy(stored.begin(), stored.end(), out.begin() + (t * H + h) * D);
      }
    }
    return out;
  }

  ModelConfig cfg;
  Setting setting;
  const ModelRotations &rotations;
};

} // namespace

llvm::Expected<ModelEvaluator>
ModelEvaluator::create(const Transformer &transformer, ModelRotations rotations,
                       std::vector<std::vector<int32_t>> stories,
                       int64_t firstPosition) {
  const ModelConfig &c = transformer.config();
  if (stories.empty())
    return qualityError("no stories");
  if (static_cast<int32_t>(rotations.keys.size()) != c.layers ||
      static_cast<int32_t>(rotations.values.size()) != c.layers)
    return qualityError("rotations for " + llvm::Twine(rotations.keys.size()) +
                        " layers, the model has " + llvm::Twine(c.layers));
  if (firstPosition < 0)
    return qualityError("the first evaluated position must be >= 0");
  ModelEvaluator e(transformer);
  for (const std::vector<int32_t> &story : stories) {
    if (static_cast<int64_t>(story.size()) < firstPosition + 2)
      return qualityError("a story of " + llvm::Twine(story.size()) +
                          " tokens has no prediction from position " +
                          llvm::Twine(firstPosition));
    DenseAttention dense(c);
    auto logits = transformer.forward(story, 0, dense, /*allLogits=*/true);
    if (!logits)
      return logits.takeError();
    logSoftmax(*logits, c.vocab);
    e.denseLogProbs.push_back(std::move(*logits));
  }
  e.rotations = std::move(rotations);
  e.stories = std::move(stories);
  e.firstPosition = firstPosition;
  return e;
}

int64_t ModelEvaluator::meanTokens() const {
  int64_t total = 0;
  for (const std::vector<int32_t> &story : stories)
    total += story.size();
  return (total + stories.size() / 2) / stories.size();
}

int64_t ModelEvaluator::predictions() const {
  int64_t total = 0;
  for (const std::vector<int32_t> &story : stories)
    total += story.size() - 1 - firstPosition;
  return total;
}

llvm::Expected<ModelMetrics>
ModelEvaluator::evaluate(const Setting &setting) const {
  const ModelConfig &c = transformer.config();
  const int64_t vocab = c.vocab;
  // Stories are independent: one per worker at a time, summed in order.
  std::vector<ModelMetrics> perStory(stories.size());
  std::vector<llvm::Error> errors;
  for (size_t s = 0; s < stories.size(); ++s)
    errors.push_back(llvm::Error::success());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t s; (s = next++) < stories.size();) {
      const std::vector<int32_t> &story = stories[s];
      CompressedAttention attention(c, setting, rotations);
      auto logits =
          transformer.forward(story, 0, attention, /*allLogits=*/true);
      if (!logits) {
        errors[s] = logits.takeError();
        continue;
      }
      logSoftmax(*logits, vocab);
      ModelMetrics &m = perStory[s];
      for (int64_t t = firstPosition; t + 1 < int64_t(story.size()); ++t) {
        const float *p = denseLogProbs[s].data() + t * vocab;
        const float *q = logits->data() + t * vocab;
        double kl = 0.0;
        for (int64_t i = 0; i < vocab; ++i)
          kl += std::exp(double(p[i])) * (double(p[i]) - double(q[i]));
        m.kl += std::max(kl, 0.0);
        m.top1 += std::max_element(p, p + vocab) - p ==
                  std::max_element(q, q + vocab) - q;
        const int32_t token = story[t + 1];
        m.nllChange += double(p[token]) - double(q[token]);
        ++m.predictions;
      }
    }
  };
  const unsigned workers =
      std::max(1u, std::min<unsigned>(std::thread::hardware_concurrency(),
                                      static_cast<unsigned>(stories.size())));
  std::vector<std::thread> threads;
  for (unsigned w = 1; w < workers; ++w)
    threads.emplace_back(work);
  work();
  for (std::thread &t : threads)
    t.join();
  llvm::Error failure = llvm::Error::success();
  for (llvm::Error &e : errors)
    failure = llvm::joinErrors(std::move(failure), std::move(e));
  if (failure)
    return std::move(failure);

  ModelMetrics total;
  for (const ModelMetrics &m : perStory) {
    total.kl += m.kl;
    total.top1 += m.top1;
    total.nllChange += m.nllChange;
    total.predictions += m.predictions;
  }
  total.kl /= total.predictions;
  total.top1 /= total.predictions;
  total.nllChange /= total.predictions;
  return total;
}
