//===- Reference.cpp - the float64 reference of SWAN attention ------------===//

#include "swan/Runtime/Eval/Reference.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

using namespace swan;

std::vector<double> reference::rotate(const std::vector<double> &x,
                                      int64_t rows, int64_t dim,
                                      const std::vector<double> &rotation) {
  std::vector<double> y(rows * dim, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < dim; ++i)
      for (int64_t j = 0; j < dim; ++j)
        y[r * dim + j] += x[r * dim + i] * rotation[i * dim + j];
  return y;
}

std::vector<double> reference::rotateBack(const std::vector<double> &x,
                                          int64_t rows, int64_t dim,
                                          const std::vector<double> &rotation) {
  std::vector<double> y(rows * dim, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < dim; ++j)
      for (int64_t i = 0; i < dim; ++i)
        y[r * dim + i] += x[r * dim + j] * rotation[i * dim + j];
  return y;
}

reference::Winnowed reference::winnow(const double *row, int64_t dim,
                                      int64_t k) {
  std::vector<int32_t> order(dim);
  std::iota(order.begin(), order.end(), 0);
  // Stable: equal magnitudes keep their index order, so ties go low.
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return std::fabs(row[a]) > std::fabs(row[b]);
  });
  order.resize(k);
  std::sort(order.begin(), order.end());
  Winnowed w;
  w.indices = order;
  for (int32_t i : order)
    w.values.push_back(row[i]);
  return w;
}

float reference::quantiseInt8(const std::vector<double> &kept, int8_t *q) {
  double largest = 0.0;
  for (double x : kept)
    largest = std::max(largest, std::fabs(x));
  const float scale = static_cast<float>(largest) / 127.0f;
  for (size_t j = 0; j < kept.size(); ++j)
    q[j] = scale == 0.0f ? 0
                         : static_cast<int8_t>(std::clamp(
                               std::nearbyint(kept[j] / scale), -127.0, 127.0));
  return scale;
}

std::vector<double> reference::scatter(const Winnowed &w, int64_t dim) {
  std::vector<double> row(dim, 0.0);
  for (size_t j = 0; j < w.indices.size(); ++j)
    row[w.indices[j]] = w.values[j];
  return row;
}

std::vector<double> reference::attentionWeights(const std::vector<double> &q,
                                                int64_t heads,
                                                const std::vector<double> &keys,
                                                int64_t tokens, int64_t dim,
                                                double scale) {
  std::vector<double> p(heads * tokens);
  for (int64_t h = 0; h < heads; ++h) {
    double max = -std::numeric_limits<double>::infinity();
    for (int64_t t = 0; t < tokens; ++t) {
      double s = 0.0;
      for (int64_t d = 0; d < dim; ++d)
        s += q[h * dim + d] * keys[t * dim + d];
      p[h * tokens + t] = scale * s;
      max = std::max(max, scale * s);
    }
    double sum = 0.0;
    for (int64_t t = 0; t < tokens; ++t)
      sum += p[h * tokens + t] = std::exp(p[h * tokens + t] - max);
    for (int64_t t = 0; t < tokens; ++t)
      p[h * tokens + t] /= sum;
  }
  return p;
}

std::vector<double> reference::attention(const std::vector<double> &q,
                                         int64_t heads,
                                         const std::vector<double> &keys,
                                         const std::vector<double> &values,
                                         int64_t tokens, int64_t dim,
                                         double scale) {
  std::vector<double> p = attentionWeights(q, heads, keys, tokens, dim, scale);
  std::vector<double> o(heads * dim, 0.0);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t d = 0; d < dim; ++d)
        o[h * dim + d] += p[h * tokens + t] * values[t * dim + d];
  return o;
}

std::vector<double> reference::randomOrthogonal(int64_t dim,
                                                std::mt19937_64 &rng) {
  std::normal_distribution<double> normal;
  std::vector<double> m(dim * dim);
  for (double &x : m)
    x = normal(rng);
  for (int64_t i = 0; i < dim; ++i) {
    double *row = &m[i * dim];
    // A second pass removes what rounding left of the earlier rows.
    for (int pass = 0; pass < 2; ++pass) {
      for (int64_t j = 0; j < i; ++j) {
        const double *other = &m[j * dim];
        double dot = 0.0;
        for (int64_t d = 0; d < dim; ++d)
          dot += row[d] * other[d];
        for (int64_t d = 0; d < dim; ++d)
          row[d] -= dot * other[d];
      }
      double norm = 0.0;
      for (int64_t d = 0; d < dim; ++d)
        norm += row[d] * row[d];
      norm = std::sqrt(norm);
      for (int64_t d = 0; d < dim; ++d)
        row[d] /= norm;
    }
  }
  return m;
}
