//===- CostModel.h - when SWAN attention pays off in arithmetic -*- C++ -*-===//
//
// The cost model of docs/DESIGN.md §6, in the one place the cache, the C API
// and the benchmark read it from.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_COSTMODEL_H
#define SWAN_RUNTIME_COSTMODEL_H

#include <cstdint>

namespace swan {

/// The compute break-even length of one decode step: a sequence of fewer
/// tokens costs SWAN attention more multiply-adds than dense attention.
///
/// Per query head, dense attention costs 2·L·D; SWAN costs D² to rotate the
/// query by R_K, D² to rotate the output back by R_Vᵀ, 2·b·D for the dense
/// buffer and (L − b)·(k_K + k_V) for the winnowed tokens. Equal costs give
/// L = D² / (D − k) + b with k = (k_K + k_V) / 2 (docs/DESIGN.md §6), which
/// this returns rounded up. Returns INT64_MAX ("never") when k ≥ D.
/// When the output stays rotated (R_V folded into W_O) one D² term drops and
/// the true break-even is lower: this figure is then an upper bound.
int64_t computeBreakEvenTokens(int32_t headDim, int32_t kKey, int32_t kValue,
                               int32_t bufferTokens);

} // namespace swan

#endif // SWAN_RUNTIME_COSTMODEL_H
