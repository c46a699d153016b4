//===- WeightFolding.h - fold R_V into the value/output projections -*- C++ -*-===//
//
// A model whose value projection already produces v·R_V and whose output
// projection undoes R_V lets the cache skip rotating values at append and
// rotating outputs back (values_prerotated, output_rotated).
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_WEIGHTFOLDING_H
#define SWAN_WEIGHTFOLDING_H

#include "llvm/Support/Error.h"

#include <cstdint>

namespace swan {

struct FoldingShape {
  int32_t numKvHeads;
  int32_t groupSize;
  int32_t headDim;
  int32_t modelDim;
};

/// In place: W_V ← W_V · R_V per KV head, with wV [modelDim][H*D] (v = x·W_V),
/// and per query head j the D rows of W_O that head j feeds ←
/// R_V[j / G]ᵀ · those rows, with wO [H*G*D][modelDim] (y = o·W_O).
/// rotV: [H][D][D]. Fails with a CacheError naming the bad argument.
llvm::Error foldValueRotation(const FoldingShape &shape, const float *rotV,
                              float *wV, float *wO);

} // namespace swan

#endif // SWAN_WEIGHTFOLDING_H
