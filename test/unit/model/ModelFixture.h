//===- ModelFixture.h - small llama2.c models written by the tests -*- C++
//-*-===//
//
// Random checkpoints and a tiny tokenizer in llama2.c's formats, and the
// Llama forward pass in float64 that the runner is checked against (its
// attention is swan::reference::attention, the one reference).
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TEST_UNIT_MODEL_MODELFIXTURE_H
#define SWAN_TEST_UNIT_MODEL_MODELFIXTURE_H

#include "swan/Runtime/Eval/ModelCalibration.h"
#include "swan/Runtime/Eval/Reference.h"
#include "swan/Runtime/Model/Checkpoint.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace swan::test {

inline model::ModelConfig tinyConfig(bool shared = true) {
  model::ModelConfig c;
  c.dim = 32;
  c.hidden = 48;
  c.layers = 2;
  c.heads = 4;
  c.kvHeads = 2;
  c.vocab = 40;
  c.seqLen = 24;
  c.sharedClassifier = shared;
  return c;
}

/// A checkpoint's tensors in file order, random.
struct SmallModel {
  model::ModelConfig config;
  std::vector<std::pair<std::string, std::vector<float>>> tensors;

  static SmallModel random(const model::ModelConfig &c, uint64_t seed) {
    SmallModel m;
    m.config = c;
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int64_t dim = c.dim, kv = c.kvDim(), hid = c.hidden, L = c.layers;
    auto add = [&](const char *name, int64_t count, float stddev, float mean) {
      std::vector<float> data(count);
      for (float &x : data)
        x = mean + stddev * normal(rng);
      m.tensors.push_back({name, std::move(data)});
    };
    add("token_embedding", c.vocab * dim, 1.0f, 0.0f);
    add("rms_att", L * dim, 0.1f, 1.0f);
    add("wq", L * dim * dim, 1.0f / std::sqrt(float(dim)), 0.0f);
    add("wk", L * kv * dim, 1.0f / std::sqrt(float(dim)), 0.0f);
    add("wv", L * kv * dim, 1.0f / std::sqrt(float(dim)), 0.0f);
    add("wo", L * dim * dim, 1.0f / std::sqrt(float(dim)), 0.0f);
    add("rms_ffn", L * dim, 0.1f, 1.0f);
    add("w1", L * hid * dim, 1.0f / std::sqrt(float(dim)), 0.0f);
    add("w2", L * dim * hid, 1.0f / std::sqrt(float(hid)), 0.0f);
    add("w3", L * hid * dim, 1.0f / std::sqrt(float(dim)), 0.0f);
    add("rms_final", dim, 0.1f, 1.0f);
    add("rope_table", int64_t(c.seqLen) * c.headDim(), 1.0f, 0.0f);
    if (!c.sharedClassifier)
      add("classifier", c.vocab * dim, 1.0f / std::sqrt(float(dim)), 0.0f);
    return m;
  }

  const std::vector<float> &tensor(const std::string &name) const {
    for (const auto &[n, data] : tensors)
      if (n == name)
        return data;
    static const std::vector<float> none;
    return none;
  }
  /// Floats before `name` in the file, after the header.
  size_t offset(const std::string &name) const {
    size_t at = 0;
    for (const auto &[n, data] : tensors) {
      if (n == name)
        return at;
      at += data.size();
    }
    return at;
  }

  std::string bytes() const {
    const model::ModelConfig &c = config;
    int32_t header[7] = {c.dim,     c.hidden,
                         c.layers,  c.heads,
                         c.kvHeads, c.sharedClassifier ? c.vocab : -c.vocab,
                         c.seqLen};
    std::string out(reinterpret_cast<const char *>(header), sizeof header);
    for (const auto &[n, data] : tensors)
      out.append(reinterpret_cast<const char *>(data.data()),
                 data.size() * sizeof(float));
    return out;
  }

  llvm::Expected<model::Checkpoint> load() const {
    return model::Checkpoint::fromBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(bytes(), "small-model.bin"));
  }

  /// Logits [tokens][vocab] of every position, all in float64.
  std::vector<double> referenceLogits(const std::vector<int32_t> &ids) const {
    const model::ModelConfig &c = config;
    const int64_t n = ids.size(), dim = c.dim, D = c.headDim(), hid = c.hidden,
                  kv = c.kvDim();
    auto w = [&](const char *name, int64_t at) {
      return double(tensor(name)[at]);
    };
    // y[r][o] = Σ_i x[r][i] · W[o][i] for W = tensor(name) at matrix `l`.
    auto linear = [&](const std::vector<double> &x, const char *name, int64_t l,
                      int64_t out, int64_t in) {
      std::vector<double> y(n * out, 0.0);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t o = 0; o < out; ++o)
          for (int64_t i = 0; i < in; ++i)
            y[r * out + o] += x[r * in + i] * w(name, (l * out + o) * in + i);
      return y;
    };
    auto norm = [&](const std::vector<double> &x, const char *name, int64_t l) {
      std::vector<double> y(x.size());
      for (int64_t r = 0; r < n; ++r) {
        double ms = 0.0;
        for (int64_t i = 0; i < dim; ++i)
          ms += x[r * dim + i] * x[r * dim + i];
        ms /= dim;
        for (int64_t i = 0; i < dim; ++i)
          y[r * dim + i] =
              x[r * dim + i] / std::sqrt(ms + 1e-5) * w(name, l * dim + i);
      }
      return y;
    };
    auto rope = [&](std::vector<double> &x, int64_t width) {
      for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < width; i += 2) {
          double angle = r * std::pow(10000.0, -double(i % D) / D);
          double a = x[r * width + i], b = x[r * width + i + 1];
          x[r * width + i] = a * std::cos(angle) - b * std::sin(angle);
          x[r * width + i + 1] = a * std::sin(angle) + b * std::cos(angle);
        }
    };
    std::vector<double> x(n * dim);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < dim; ++i)
        x[r * dim + i] = w("token_embedding", ids[r] * dim + i);
    for (int64_t l = 0; l < c.layers; ++l) {
      std::vector<double> xb = norm(x, "rms_att", l);
      std::vector<double> q = linear(xb, "wq", l, dim, dim);
      std::vector<double> k = linear(xb, "wk", l, kv, dim);
      std::vector<double> v = linear(xb, "wv", l, kv, dim);
      rope(q, dim);
      rope(k, kv);
      std::vector<double> att(n * dim);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t h = 0; h < c.heads; ++h) {
          const int64_t g = h / c.group();
          std::vector<double> qh(q.begin() + r * dim + h * D,
                                 q.begin() + r * dim + (h + 1) * D);
          std::vector<double> keys, values;
          for (int64_t j = 0; j <= r; ++j) {
            keys.insert(keys.end(), k.begin() + j * kv + g * D,
                        k.begin() + j * kv + (g + 1) * D);
            values.insert(values.end(), v.begin() + j * kv + g * D,
                          v.begin() + j * kv + (g + 1) * D);
          }
          std::vector<double> o = reference::attention(
              qh, 1, keys, values, r + 1, D, 1.0 / std::sqrt(double(D)));
          std::copy(o.begin(), o.end(), att.begin() + r * dim + h * D);
        }
      std::vector<double> proj = linear(att, "wo", l, dim, dim);
      for (size_t i = 0; i < x.size(); ++i)
        x[i] += proj[i];
      xb = norm(x, "rms_ffn", l);
      std::vector<double> h1 = linear(xb, "w1", l, hid, dim);
      std::vector<double> h3 = linear(xb, "w3", l, hid, dim);
      for (size_t i = 0; i < h1.size(); ++i)
        h1[i] = h1[i] / (1.0 + std::exp(-h1[i])) * h3[i];
      std::vector<double> down = linear(h1, "w2", l, dim, hid);
      for (size_t i = 0; i < x.size(); ++i)
        x[i] += down[i];
    }
    x = norm(x, "rms_final", 0);
    return linear(x, c.sharedClassifier ? "token_embedding" : "classifier", 0,
                  c.vocab, dim);
  }
};

/// Random orthogonal rotations for every layer of `c`: any serve tests that
/// check the cache against the reference, and calibrating would first have
/// the model sample whole stories.
inline ModelRotations randomModelRotations(const model::ModelConfig &c,
                                           std::mt19937_64 &rng) {
  ModelRotations r;
  for (int32_t l = 0; l < c.layers; ++l)
    for (auto *side : {&r.keys, &r.values}) {
      std::vector<float> layer;
      for (int32_t h = 0; h < c.kvHeads; ++h) {
        std::vector<double> m = reference::randomOrthogonal(c.headDim(), rng);
        layer.insert(layer.end(), m.begin(), m.end());
      }
      side->push_back(std::move(layer));
    }
  return r;
}

/// <unk>, <s>, </s>, the 256 byte tokens, then a few pieces with scores.
struct TinyTokenizer {
  std::vector<std::pair<std::string, float>> tokens;

  static TinyTokenizer make() {
    TinyTokenizer t;
    t.tokens = {{"<unk>", 0.0f}, {"\n<s>\n", 0.0f}, {"\n</s>\n", 0.0f}};
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      t.tokens.push_back({name, 0.0f});
    }
    for (auto piece : std::vector<std::pair<std::string, float>>{{" ", -1.0f},
                                                                 {"a", -2.0f},
                                                                 {"b", -3.0f},
                                                                 {" a", 1.0f},
                                                                 {"ab", 2.0f},
                                                                 {" ab", 3.0f}})
      t.tokens.push_back(piece);
    return t;
  }
  int32_t vocab() const { return static_cast<int32_t>(tokens.size()); }

  std::string bytes() const {
    std::string out;
    auto word = [&](const void *p) {
      out.append(static_cast<const char *>(p), 4);
    };
    int32_t maxLength = 8;
    word(&maxLength);
    for (const auto &[piece, score] : tokens) {
      word(&score);
      int32_t len = static_cast<int32_t>(piece.size());
      word(&len);
      out += piece;
    }
    return out;
  }
};

} // namespace swan::test

#endif // SWAN_TEST_UNIT_MODEL_MODELFIXTURE_H
