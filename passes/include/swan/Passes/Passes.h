//===- Passes.h - swan-level transformations ---------------------*- C++ -*-===//

#ifndef SWAN_PASSES_PASSES_H
#define SWAN_PASSES_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"
#include "swan/Dialect/SwanOps.h"

namespace swan {

#define GEN_PASS_DECL
#include "swan/Passes/Passes.h.inc"

/// Rewrites rotate-then-winnow chains into swan.compress.
void populateFuseRotateWinnowPatterns(mlir::RewritePatternSet &patterns);

/// Rewrites swan.decode_attention into rotate, partial_attention over
/// `numSplits` sparse blocks plus the buffer, and merge_attention.
void populateDecomposeDecodeAttentionPatterns(
    mlir::RewritePatternSet &patterns, int64_t numSplits);

#define GEN_PASS_REGISTRATION
#include "swan/Passes/Passes.h.inc"

} // namespace swan

#endif // SWAN_PASSES_PASSES_H
