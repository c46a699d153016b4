//===- Quality.cpp - compression quality at equal memory ------------------===//

#include "swan/Runtime/Eval/Quality.h"
#include "swan/Runtime/Eval/Reference.h"

#include <algorithm>
#include <cmath>

using namespace swan;
using namespace swan::quality;

namespace {

llvm::Error qualityError(const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "quality: " + why);
}

/// Symmetric absmax quantisation of `dim` values to `bits`, dequantised;
/// the scale itself is stored in fp16, so it is rounded the way storage
/// would.
void quantise(const double *row, int64_t dim, int bits, double *out) {
  const double levels = (1 << (bits - 1)) - 1; // 127, 31, 15 or 7
  double absmax = 0.0;
  for (int64_t j = 0; j < dim; ++j)
    absmax = std::max(absmax, std::fabs(row[j]));
  if (absmax == 0.0) {
    std::fill(out, out + dim, 0.0);
    return;
  }
  // fp16 keeps 11 significant bits.
  int exponent;
  double mantissa = std::frexp(absmax / levels, &exponent);
  double scale =
      std::ldexp(std::nearbyint(mantissa * 2048.0) / 2048.0, exponent);
  for (int64_t j = 0; j < dim; ++j) {
    double q = std::nearbyint(row[j] / scale);
    out[j] = std::clamp(q, -levels - 1, levels) * scale;
  }
}

/// SWAN-Q8's storage of kept values (reference::quantiseInt8), dequantised
/// in place.
void quantiseKept(std::vector<double> &kept) {
  std::vector<int8_t> q(kept.size());
  const double scale = reference::quantiseInt8(kept, q.data());
  for (size_t j = 0; j < kept.size(); ++j)
    kept[j] = q[j] * scale;
}

/// Every token of one KV head as `setting` stores it, [tokens][dim].
std::vector<double> compress(const Setting &setting,
                             const std::vector<double> &rows, int64_t tokens,
                             int64_t dim) {
  std::vector<double> out(tokens * dim, 0.0);
  for (int64_t t = 0; t < tokens; ++t)
    reconstruct(setting, rows.data() + t * dim, dim, out.data() + t * dim);
  return out;
}

std::vector<int64_t> topIndices(const double *weights, int64_t n, int64_t k) {
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i)
    order[i] = i;
  k = std::min(k, n);
  std::partial_sort(
      order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
        return weights[a] > weights[b] || (weights[a] == weights[b] && a < b);
      });
  order.resize(k);
  return order;
}

} // namespace

void quality::reconstruct(const Setting &setting, const double *row,
                          int64_t dim, double *out) {
  switch (setting.method) {
  case Method::Swan:
  case Method::SwanMask:
  case Method::SwanNoBuffer:
  case Method::TopKNoRotation: {
    std::vector<double> dense =
        reference::scatter(reference::winnow(row, dim, setting.parameter), dim);
    std::copy(dense.begin(), dense.end(), out);
    return;
  }
  case Method::SwanQ8:
  case Method::SwanQ8Mask:
  case Method::SwanQ8NoRotation: {
    reference::Winnowed kept = reference::winnow(row, dim, setting.parameter);
    quantiseKept(kept.values);
    std::vector<double> dense = reference::scatter(kept, dim);
    std::copy(dense.begin(), dense.end(), out);
    return;
  }
  case Method::LowRank: {
    const int64_t rank = std::min(setting.parameter, dim);
    std::copy(row, row + rank, out);
    std::fill(out + rank, out + dim, 0.0);
    return;
  }
  case Method::SlidingWindow:
    std::copy(row, row + dim, out);
    return;
  case Method::Int8:
  case Method::Int6:
  case Method::Int5:
  case Method::Int4:
    quantise(row, dim, static_cast<int>(setting.parameter), out);
    return;
  case Method::Int4Grouped:
    for (int64_t g = 0; g < dim; g += setting.parameter) {
      const int64_t n = std::min(setting.parameter, dim - g);
      quantise(row + g, n, 4, out + g);
    }
    return;
  }
}

llvm::ArrayRef<Method> quality::allMethods() {
  static const Method methods[] = {Method::Swan,
                                   Method::SwanMask,
                                   Method::SwanQ8,
                                   Method::SwanQ8Mask,
                                   Method::SwanNoBuffer,
                                   Method::TopKNoRotation,
                                   Method::SwanQ8NoRotation,
                                   Method::LowRank,
                                   Method::SlidingWindow,
                                   Method::Int8,
                                   Method::Int6,
                                   Method::Int5,
                                   Method::Int4,
                                   Method::Int4Grouped};
  return methods;
}

bool quality::isQuantised(Method m) {
  return m == Method::Int8 || m == Method::Int6 || m == Method::Int5 ||
         m == Method::Int4 || m == Method::Int4Grouped;
}

bool quality::rotates(Method m) {
  return m == Method::Swan || m == Method::SwanMask || m == Method::SwanQ8 ||
         m == Method::SwanQ8Mask || m == Method::SwanNoBuffer ||
         m == Method::LowRank;
}

bool quality::hasBuffer(Method m) {
  return m == Method::Swan || m == Method::SwanMask || m == Method::SwanQ8 ||
         m == Method::SwanQ8Mask || m == Method::TopKNoRotation ||
         m == Method::SwanQ8NoRotation;
}

VisibleTokens quality::visibleTokens(const Setting &setting, int64_t t) {
  if (setting.method == Method::SlidingWindow) {
    const int64_t first = std::max<int64_t>(0, t + 1 - setting.parameter);
    return {first, first};
  }
  if (hasBuffer(setting.method))
    return {0, std::max<int64_t>(0, t + 1 - setting.buffer)};
  return {0, t + 1};
}

std::string quality::parameterText(const Setting &s) {
  if (isQuantised(s.method) && s.method != Method::Int4Grouped)
    return "-";
  return (parameterName(s.method) + "=" + llvm::Twine(s.parameter)).str();
}

std::vector<Setting> quality::quantisedSettings() {
  return {{Method::Int8, 8, 0},         {Method::Int6, 6, 0},
          {Method::Int5, 5, 0},         {Method::Int4, 4, 0},
          {Method::Int4Grouped, 32, 0}, {Method::Int4Grouped, 16, 0}};
}

llvm::StringRef quality::methodName(Method method) {
  switch (method) {
  case Method::Swan:
    return "swan";
  case Method::SwanMask:
    return "swan-mask";
  case Method::SwanQ8:
    return "swan-q8";
  case Method::SwanQ8Mask:
    return "swan-q8-mask";
  case Method::SwanQ8NoRotation:
    return "swan-q8-norotate";
  case Method::SwanNoBuffer:
    return "swan-nobuffer";
  case Method::TopKNoRotation:
    return "topk-norotate";
  case Method::LowRank:
    return "lowrank";
  case Method::SlidingWindow:
    return "window";
  case Method::Int8:
    return "int8";
  case Method::Int6:
    return "int6";
  case Method::Int5:
    return "int5";
  case Method::Int4:
    return "int4";
  case Method::Int4Grouped:
    return "int4-grouped";
  }
  return "?";
}

llvm::StringRef quality::parameterName(Method method) {
  switch (method) {
  case Method::LowRank:
    return "rank";
  case Method::SlidingWindow:
    return "window";
  case Method::Int8:
  case Method::Int6:
  case Method::Int5:
  case Method::Int4:
    return "bits";
  case Method::Int4Grouped:
    return "group";
  default:
    return "k";
  }
}

double quality::bytesPerToken(const Setting &s, int64_t tokens,
                              int64_t headDim) {
  const double d = static_cast<double>(headDim);
  const double n = static_cast<double>(std::max<int64_t>(tokens, 1));
  const double dense = 4.0 * d;
  auto buffered = [&](double winnowedToken) {
    double b = static_cast<double>(std::min(s.buffer, tokens));
    return (b * dense + (n - b) * winnowedToken) / n;
  };
  const double k = static_cast<double>(s.parameter);
  switch (s.method) {
  case Method::Swan:
  case Method::TopKNoRotation:
    return buffered(2 * 3.0 * k);
  case Method::SwanMask:
    return buffered(2 * (2.0 * k + d / 8.0));
  case Method::SwanQ8:
  case Method::SwanQ8NoRotation:
    return buffered(2 * (2.0 * k + kQ8ScaleBytes));
  case Method::SwanQ8Mask:
    return buffered(2 * (k + d / 8.0 + kQ8ScaleBytes));
  case Method::SwanNoBuffer:
    return 2 * 3.0 * k;
  case Method::LowRank:
    return 2 * 2.0 * k;
  case Method::SlidingWindow:
    return static_cast<double>(std::min(s.parameter, tokens)) * dense / n;
  case Method::Int8:
  case Method::Int6:
  case Method::Int5:
  case Method::Int4:
    return 2 * (std::ceil(k * d / 8.0) + 2.0);
  case Method::Int4Grouped:
    return 2 * (std::ceil(d / 2.0) + 2.0 * std::ceil(d / k));
  }
  return 0.0;
}

std::optional<Setting> quality::settingForBudget(Method method, double budget,
                                                 int64_t tokens,
                                                 int64_t headDim,
                                                 int64_t buffer) {
  Setting s;
  s.method = method;
  s.buffer = hasBuffer(method) ? buffer : 0;
  if (isQuantised(method)) {
    for (const Setting &q : quantisedSettings()) {
      // int4-grouped lists 32 before 16; the finer groups win if they fit.
      if (q.method == method &&
          bytesPerToken(q, tokens, headDim) <= budget + 1e-9)
        s = q;
    }
    if (s.parameter == 0)
      return std::nullopt;
    return s;
  }
  // Cost grows with the parameter: take the largest that fits.
  int64_t largest = method == Method::SlidingWindow ? tokens : headDim;
  for (int64_t p = largest; p >= 1; --p) {
    s.parameter = p;
    if (bytesPerToken(s, tokens, headDim) <= budget + 1e-9)
      return s;
  }
  return std::nullopt;
}

llvm::Expected<Evaluator> Evaluator::create(Input input,
                                            std::vector<int64_t> positions) {
  const int64_t n = input.tokens, heads = input.kvHeads, dim = input.headDim,
                g = input.queryGroup;
  if (n < 1 || heads < 1 || dim < 1 || g < 1)
    return qualityError("tokens, kv_heads, head_dim and group must be "
                        "positive");
  if (static_cast<int64_t>(input.keys.size()) != n * heads * dim ||
      static_cast<int64_t>(input.values.size()) != n * heads * dim)
    return qualityError("keys and values must hold [tokens][kv_heads]"
                        "[head_dim] elements");
  if (static_cast<int64_t>(input.queries.size()) != n * heads * g * dim)
    return qualityError("queries must hold [tokens][kv_heads * group]"
                        "[head_dim] elements");
  for (const Rotations *r : {&input.keyRotations, &input.valueRotations})
    if (r->kvHeads != heads || r->headDim != dim)
      return qualityError("rotations are for " + llvm::Twine(r->kvHeads) +
                          " KV heads of dimension " + llvm::Twine(r->headDim) +
                          ", the data has " + llvm::Twine(heads) + " of " +
                          llvm::Twine(dim));
  if (positions.empty())
    return qualityError("no decode positions");
  for (int64_t t : positions)
    if (t < 0 || t >= n)
      return qualityError("decode position " + llvm::Twine(t) +
                          " outside the " + llvm::Twine(n) + " tokens");

  Evaluator e;
  e.scale = input.scale > 0.0 ? input.scale : 1.0 / std::sqrt(double(dim));
  e.decodePositions = std::move(positions);
  for (int64_t h = 0; h < heads; ++h) {
    std::vector<double> k(n * dim), v(n * dim);
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < dim; ++j) {
        k[t * dim + j] = input.keys[(t * heads + h) * dim + j];
        v[t * dim + j] = input.values[(t * heads + h) * dim + j];
      }
    std::vector<double> rk(input.keyRotations.head(h),
                           input.keyRotations.head(h) + dim * dim);
    std::vector<double> rv(input.valueRotations.head(h),
                           input.valueRotations.head(h) + dim * dim);
    e.rotatedKeys.push_back(reference::rotate(k, n, dim, rk));
    e.rotatedValues.push_back(reference::rotate(v, n, dim, rv));
    e.keys.push_back(std::move(k));
    e.values.push_back(std::move(v));
    e.keyRotation.push_back(std::move(rk));
    e.valueRotation.push_back(std::move(rv));
  }
  for (int64_t t : e.decodePositions)
    for (int64_t h = 0; h < heads; ++h) {
      Exact x;
      x.queries.resize(g * dim);
      for (int64_t r = 0; r < g; ++r)
        for (int64_t j = 0; j < dim; ++j)
          x.queries[r * dim + j] =
              input.queries[(t * heads * g + h * g + r) * dim + j];
      x.rotatedQueries = reference::rotate(x.queries, g, dim, e.keyRotation[h]);
      x.output = reference::attention(x.queries, g, e.keys[h], e.values[h],
                                      t + 1, dim, e.scale);
      x.weights = reference::attentionWeights(x.queries, g, e.keys[h], t + 1,
                                              dim, e.scale);
      e.exact.push_back(std::move(x));
    }
  e.data = std::move(input);
  return e;
}

Metrics Evaluator::evaluate(const Setting &setting) const {
  const int64_t heads = data.kvHeads, dim = data.headDim, g = data.queryGroup;
  const int64_t last =
      *std::max_element(decodePositions.begin(), decodePositions.end());
  const bool rotated = rotates(setting.method);
  Metrics m;
  double errorSum = 0.0, top1Sum = 0.0, top8Sum = 0.0;
  for (int64_t h = 0; h < heads; ++h) {
    const std::vector<double> &keysH = rotated ? rotatedKeys[h] : keys[h];
    const std::vector<double> &valuesH = rotated ? rotatedValues[h] : values[h];
    std::vector<double> ck = compress(setting, keysH, last + 1, dim);
    std::vector<double> cv = compress(setting, valuesH, last + 1, dim);
    // Reused for every position: the reference reads only the first rows.
    std::vector<double> cacheK((last + 1) * dim), cacheV((last + 1) * dim);
    for (size_t p = 0; p < decodePositions.size(); ++p) {
      const int64_t t = decodePositions[p];
      const Exact &x = exact[p * heads + h];
      // Cache rows [first, t] as the method holds them at position t.
      const auto [first, denseFrom] = visibleTokens(setting, t);
      const int64_t rows = t + 1 - first;
      for (int64_t i = first; i <= t; ++i) {
        const bool dense = i >= denseFrom;
        const bool exactK = dense || !setting.compressKeys;
        const bool exactV = dense || !setting.compressValues;
        const double *srcK = (exactK ? keysH.data() : ck.data()) + i * dim;
        const double *srcV = (exactV ? valuesH.data() : cv.data()) + i * dim;
        std::copy(srcK, srcK + dim, cacheK.begin() + (i - first) * dim);
        std::copy(srcV, srcV + dim, cacheV.begin() + (i - first) * dim);
      }
      const std::vector<double> &q = rotated ? x.rotatedQueries : x.queries;
      std::vector<double> out =
          reference::attention(q, g, cacheK, cacheV, rows, dim, scale);
      if (rotated)
        out = reference::rotateBack(out, g, dim, valueRotation[h]);
      std::vector<double> w =
          reference::attentionWeights(q, g, cacheK, rows, dim, scale);

      for (int64_t r = 0; r < g; ++r) {
        double diff = 0.0, norm = 0.0;
        for (int64_t j = 0; j < dim; ++j) {
          double e = x.output[r * dim + j];
          diff += (out[r * dim + j] - e) * (out[r * dim + j] - e);
          norm += e * e;
        }
        errorSum += norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
        // Weights over all t + 1 tokens; tokens the method dropped get 0.
        std::vector<double> full(t + 1, 0.0);
        std::copy(w.begin() + r * rows, w.begin() + (r + 1) * rows,
                  full.begin() + first);
        std::vector<int64_t> exactTop =
            topIndices(x.weights.data() + r * (t + 1), t + 1, 8);
        std::vector<int64_t> approxTop = topIndices(full.data(), t + 1, 8);
        top1Sum += exactTop[0] == approxTop[0] ? 1.0 : 0.0;
        int64_t common = 0;
        for (int64_t i : exactTop)
          common += std::count(approxTop.begin(), approxTop.end(), i);
        top8Sum += static_cast<double>(common) / exactTop.size();
        ++m.queries;
      }
    }
  }
  m.relativeError = errorSum / m.queries;
  m.top1 = top1Sum / m.queries;
  m.top8 = top8Sum / m.queries;
  return m;
}
