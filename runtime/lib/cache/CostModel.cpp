//===- CostModel.cpp - when SWAN attention pays off in arithmetic ---------===//

#include "swan/Runtime/CostModel.h"

#include <limits>

int64_t swan::computeBreakEvenTokens(int32_t headDim, int32_t kKey,
                                     int32_t kValue, int32_t bufferTokens) {
  constexpr int64_t never = std::numeric_limits<int64_t>::max();
  // D² / (D − (k_K + k_V)/2) = 2·D² / (2·D − k_K − k_V), kept in integers so
  // that a half-integer mean k is exact. Every term fits in int64 for any
  // int32 input; only the final sum may need saturating.
  int64_t numerator = 2 * int64_t(headDim) * headDim;
  int64_t denominator = 2 * int64_t(headDim) - kKey - kValue;
  if (denominator <= 0)
    return never;
  int64_t quotient =
      numerator / denominator + (numerator % denominator != 0 ? 1 : 0);
  if (bufferTokens > 0 && quotient > never - bufferTokens)
    return never;
  return quotient + bufferTokens;
}
