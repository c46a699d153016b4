//===- SwanToVectorPatterns.h - vector lowering, by op family ---*- C++ -*-===//
//
// swan-lower-to-vector lowers each family of swan ops in a file of its own;
// SwanToVector.cpp gathers them into the pass and into
// swan::populateSwanToVectorPatterns. Private to codegen/lib/cpu.
//
// Every kernel reads its inputs through read-only memref views of the input
// tensors and writes its results into tensor.empty destinations with
// vector.transfer_write, so that bufferization hands the caller's buffers
// straight to the loops. Head dimension D and group size G are static; token
// counts, kept counts k and block counts are run-time values.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_CPU_SWANTOVECTORPATTERNS_H
#define SWAN_CODEGEN_CPU_SWANTOVECTORPATTERNS_H

#include "swan/Codegen/Passes.h"

namespace swan {

/// Lanes per vector for head dimension `headDim`, or failure when the
/// vectors cannot tile it.
mlir::FailureOr<int64_t> lanesFor(int64_t headDim, int64_t vectorWidth);

/// swan.rotate, swan.winnow and swan.compress
/// (RotateWinnowCompressToVector.cpp).
void populateRotateWinnowCompressToVectorPatterns(
    mlir::RewritePatternSet &patterns, const VectorLoweringOptions &options);

/// swan.partial_attention over dense or mixed blocks, and over winnowed ones
/// with expand-winnowed (DensePartialAttentionToVector.cpp).
void populateDensePartialAttentionToVectorPatterns(
    mlir::RewritePatternSet &patterns, const VectorLoweringOptions &options);

/// swan.partial_attention over winnowed keys and values
/// (WinnowedPartialAttentionToVector.cpp).
void populateWinnowedPartialAttentionToVectorPatterns(
    mlir::RewritePatternSet &patterns, const VectorLoweringOptions &options);

/// swan.merge_attention (MergeAttentionToVector.cpp).
void populateMergeAttentionToVectorPatterns(
    mlir::RewritePatternSet &patterns, const VectorLoweringOptions &options);

} // namespace swan

#endif // SWAN_CODEGEN_CPU_SWANTOVECTORPATTERNS_H
