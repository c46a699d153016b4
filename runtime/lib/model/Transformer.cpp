//===- Transformer.cpp - the Llama forward pass over a KV cache -----------===//

#include "swan/Runtime/Model/Transformer.h"

#include "llvm/ADT/Twine.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>

using namespace swan;
using namespace swan::model;

namespace {

using Matrix =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// A weight matrix [out][in] of the checkpoint, read in place.
using WeightMap = Eigen::Map<const Matrix>;

llvm::Error modelError(const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "model: " + why);
}

/// Each row of x, normalised by its RMS and scaled by `gain` (eps 1e-5).
void rmsNorm(const Matrix &x, const float *gain, Matrix &out) {
  Eigen::Map<const Eigen::RowVectorXf> g(gain, x.cols());
  out.resize(x.rows(), x.cols());
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    float meanSquare = x.row(r).squaredNorm() / static_cast<float>(x.cols());
    out.row(r) = x.row(r).cwiseProduct(g) / std::sqrt(meanSquare + 1e-5f);
  }
}

/// RoPE: in each head, pair (2i, 2i+1) turns by pos · 10000^(-2i/D).
void rope(Matrix &x, int64_t first, int32_t headDim) {
  for (Eigen::Index r = 0; r < x.rows(); ++r) {
    const float pos = static_cast<float>(first + r);
    float *row = x.row(r).data();
    for (Eigen::Index c = 0; c < x.cols(); c += 2) {
      const int32_t i = static_cast<int32_t>(c % headDim);
      const float freq =
          1.0f / std::pow(10000.0f, static_cast<float>(i) / headDim);
      const float angle = pos * freq;
      const float cs = std::cos(angle), sn = std::sin(angle);
      const float a = row[c], b = row[c + 1];
      row[c] = a * cs - b * sn;
      row[c + 1] = a * sn + b * cs;
    }
  }
}

} // namespace

LayerAttention::~LayerAttention() = default;

llvm::Expected<std::vector<float>>
Transformer::forward(llvm::ArrayRef<int32_t> tokens, int64_t position,
                     LayerAttention &attention, bool allLogits) const {
  const ModelConfig &c = config();
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0)
    return modelError("no tokens to run");
  if (position < 0 || position + n > c.seqLen)
    return modelError("positions [" + llvm::Twine(position) + ", " +
                      llvm::Twine(position + n) +
                      ") exceed the model's context of " +
                      llvm::Twine(c.seqLen) + " tokens");
  Matrix x(n, c.dim);
  for (int64_t t = 0; t < n; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab)
      return modelError("token " + llvm::Twine(tokens[t]) +
                        " is outside the vocabulary of " +
                        llvm::Twine(c.vocab));
    x.row(t) = Eigen::Map<const Eigen::RowVectorXf>(
        weights.embedding() + int64_t(tokens[t]) * c.dim, c.dim);
  }

  Matrix xb, q, k, v, att(n, c.dim), h1, h3;
  for (int32_t l = 0; l < c.layers; ++l) {
    const LayerWeights w = weights.layer(l);
    rmsNorm(x, w.rmsAtt, xb);
    q.noalias() = xb * WeightMap(w.wq, c.dim, c.dim).transpose();
    k.noalias() = xb * WeightMap(w.wk, c.kvDim(), c.dim).transpose();
    v.noalias() = xb * WeightMap(w.wv, c.kvDim(), c.dim).transpose();
    rope(q, position, c.headDim());
    rope(k, position, c.headDim());
    if (llvm::Error e = attention.attend(l, position, n, q.data(), k.data(),
                                         v.data(), att.data()))
      return std::move(e);
    x.noalias() += att * WeightMap(w.wo, c.dim, c.dim).transpose();

    rmsNorm(x, w.rmsFfn, xb);
    h1.noalias() = xb * WeightMap(w.w1, c.hidden, c.dim).transpose();
    h3.noalias() = xb * WeightMap(w.w3, c.hidden, c.dim).transpose();
    // SwiGLU: silu(x W1) ⊙ (x W3).
    h1 = h1.unaryExpr([](float a) {
             return a / (1.0f + std::exp(-a));
           }).cwiseProduct(h3);
    x.noalias() += h1 * WeightMap(w.w2, c.dim, c.hidden).transpose();
  }

  const int64_t rows = allLogits ? n : 1;
  Matrix last = x.bottomRows(rows);
  rmsNorm(last, weights.rmsFinal(), xb);
  std::vector<float> logits(rows * c.vocab);
  Eigen::Map<Matrix>(logits.data(), rows, c.vocab).noalias() =
      xb * WeightMap(weights.classifier(), c.vocab, c.dim).transpose();
  return logits;
}

void swan::model::causalAttention(const float *q, int64_t first, int64_t n,
                                  const float *keys, const float *values,
                                  int32_t heads, int32_t kvHeads,
                                  int32_t headDim, float *out) {
  const int32_t group = heads / kvHeads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(headDim));
  std::vector<float> scores(first + n);
  for (int64_t t = 0; t < n; ++t)
    for (int32_t h = 0; h < heads; ++h) {
      const int32_t kvh = h / group;
      const float *qh = q + (t * heads + h) * headDim;
      const int64_t seen = first + t + 1;
      float maxScore = -INFINITY;
      for (int64_t j = 0; j < seen; ++j) {
        const float *kj = keys + (j * kvHeads + kvh) * headDim;
        float dot = 0.0f;
        for (int32_t d = 0; d < headDim; ++d)
          dot += qh[d] * kj[d];
        scores[j] = dot * scale;
        maxScore = std::max(maxScore, scores[j]);
      }
      float sum = 0.0f;
      for (int64_t j = 0; j < seen; ++j)
        sum += scores[j] = std::exp(scores[j] - maxScore);
      float *o = out + (t * heads + h) * headDim;
      std::fill(o, o + headDim, 0.0f);
      for (int64_t j = 0; j < seen; ++j) {
        const float *vj = values + (j * kvHeads + kvh) * headDim;
        const float p = scores[j] / sum;
        for (int32_t d = 0; d < headDim; ++d)
          o[d] += p * vj[d];
      }
    }
}

int32_t swan::model::argmax(llvm::ArrayRef<float> logits) {
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) -
                              logits.begin());
}

std::vector<double> swan::model::softmax(llvm::ArrayRef<float> logits) {
  std::vector<double> p(logits.size());
  const double top = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (size_t i = 0; i < p.size(); ++i)
    sum += p[i] = std::exp(double(logits[i]) - top);
  for (double &x : p)
    x /= sum;
  return p;
}

int32_t swan::model::sample(llvm::ArrayRef<float> logits, float temperature,
                            std::mt19937_64 &rng) {
  std::vector<float> scaled(logits.begin(), logits.end());
  for (float &x : scaled)
    x /= temperature;
  std::vector<double> p = softmax(scaled);
  // 53 random bits in [0, 1): the same stream on every platform.
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
  double cumulative = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    cumulative += p[i];
    if (u < cumulative)
      return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(p.size() - 1);
}

double swan::model::klDivergence(llvm::ArrayRef<double> p,
                                 llvm::ArrayRef<double> q) {
  double kl = 0.0;
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] > 0.0)
      kl += p[i] * std::log(p[i] / std::max(q[i], 1e-300));
  return kl;
}
