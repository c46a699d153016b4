//===- WeightFolding.cpp - fold R_V into the value/output projections -----===//

#include "swan/WeightFolding.h"

#include "swan/Cache.h"

#include <vector>

using namespace swan;

static llvm::Error invalidShape(const llvm::Twine &message) {
  return llvm::make_error<CacheError>(CacheErrorCode::InvalidArgument,
                                      message.str());
}

llvm::Error swan::foldValueRotation(const FoldingShape &shape,
                                    const float *rotV, float *wV, float *wO) {
  if (shape.numKvHeads < 1)
    return invalidShape("num_kv_heads must be at least 1");
  if (shape.groupSize < 1)
    return invalidShape("group_size must be at least 1");
  if (shape.headDim < 1)
    return invalidShape("head_dim must be at least 1");
  if (shape.modelDim < 1)
    return invalidShape("model_dim must be at least 1");
  if (!rotV)
    return invalidShape("rot_v is NULL");
  if (!wV)
    return invalidShape("w_v is NULL");
  if (!wO)
    return invalidShape("w_o is NULL");

  const int64_t d = shape.headDim, h = shape.numKvHeads, g = shape.groupSize,
                m = shape.modelDim;
  // Accumulate in double: the folded weights should differ from exact
  // products by one float rounding, not by D of them.
  std::vector<double> row(d);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t head = 0; head < h; ++head) {
      float *segment = wV + r * h * d + head * d;
      const float *rot = rotV + head * d * d;
      std::fill(row.begin(), row.end(), 0.0);
      for (int64_t i = 0; i < d; ++i)
        for (int64_t j = 0; j < d; ++j)
          row[j] += double(segment[i]) * rot[i * d + j];
      for (int64_t j = 0; j < d; ++j)
        segment[j] = static_cast<float>(row[j]);
    }

  std::vector<double> block(d * m);
  for (int64_t query = 0; query < h * g; ++query) {
    float *rows = wO + query * d * m;
    const float *rot = rotV + (query / g) * d * d;
    std::fill(block.begin(), block.end(), 0.0);
    for (int64_t l = 0; l < d; ++l)
      for (int64_t i = 0; i < d; ++i) {
        double r = rot[l * d + i]; // (Rᵀ)[i][l]
        for (int64_t c = 0; c < m; ++c)
          block[i * m + c] += r * rows[l * m + c];
      }
    for (int64_t i = 0; i < d * m; ++i)
      rows[i] = static_cast<float>(block[i]);
  }
  return llvm::Error::success();
}
