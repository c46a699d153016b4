//===- Passes.h - swan lowering passes --------------------------*- C++ -*-===//

#ifndef SWAN_CODEGEN_PASSES_H
#define SWAN_CODEGEN_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Pass/Pass.h"

namespace swan {

#define GEN_PASS_DECL
#include "swan/Codegen/Passes.h.inc"

/// How the swan ops become vector code.
struct VectorLoweringOptions {
  /// f32 lanes per vector; must divide the head dimension (or exceed it).
  int64_t vectorWidth = 16;
  /// Tokens per tile in partial attention.
  int64_t tileSize = 32;
  /// Expand winnowed tokens into registers with AVX-512 vp2intersect and
  /// expanding loads (needs VP2INTERSECT and VBMI2 at run time). Measured
  /// 2-4x slower than the transposed scheme on znver5 (docs/CODEGEN.md).
  bool expandWinnowed = false;
};

/// An i64 attribute on a `vector.expandload`: at least this many bytes past
/// the end of any row it reads are readable, so the load may be done in
/// windows that run past the row, and `swan-legalize-narrow-expandload`
/// needs no bounds check. The attention kernels set it on every load of a
/// mask-encoded row (a block's last rows are read from a padded copy).
inline constexpr llvm::StringLiteral kReadableTailAttrName =
    "swan.readable_tail";
/// The tail the kernels promise: one 16-byte shuffle window.
inline constexpr int64_t kReadableTailBytes = 16;

/// f32 lanes of the host's widest vector unit: 16 with AVX-512, 8 with AVX,
/// 4 otherwise.
int64_t hostVectorWidth();

/// Patterns rewriting every swan op except decode_attention into scf loops
/// and vector ops on tensors.
void populateSwanToVectorPatterns(mlir::RewritePatternSet &patterns,
                                  const VectorLoweringOptions &options);

#define GEN_PASS_REGISTRATION
#include "swan/Codegen/Passes.h.inc"

} // namespace swan

#endif // SWAN_CODEGEN_PASSES_H
