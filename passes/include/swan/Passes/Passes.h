//===- Passes.h - swan-level transformations ---------------------*- C++ -*-===//

#ifndef SWAN_PASSES_PASSES_H
#define SWAN_PASSES_PASSES_H

#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"
#include "swan/Dialect/SwanOps.h"

namespace swan {

#define GEN_PASS_DECL
#include "swan/Passes/Passes.h.inc"

/// Rewrites rotate-then-winnow chains into swan.compress.
void populateFuseRotateWinnowPatterns(mlir::RewritePatternSet &patterns);

#define GEN_PASS_REGISTRATION
#include "swan/Passes/Passes.h.inc"

} // namespace swan

#endif // SWAN_PASSES_PASSES_H
