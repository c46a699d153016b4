//===- PartialAttention.h - what both partial kernels share -----*- C++ -*-===//
//
// swan.partial_attention has two kernels, each with its own pattern: the
// transposed one for winnowed keys and values
// (WinnowedPartialAttentionToVector.cpp) and the [G, D] one for every other
// block (DensePartialAttentionToVector.cpp). Both check an op here, so that
// exactly one of them lowers it. Private to codegen/lib/cpu.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_CPU_PARTIALATTENTION_H
#define SWAN_CODEGEN_CPU_PARTIALATTENTION_H

#include "KernelBuilder.h"
#include "swan/Codegen/Passes.h"
#include "swan/Dialect/SwanOps.h"

namespace swan {

/// Lanes per vector for `op`, or a match failure when its shapes or
/// encodings cannot be lowered with `options`.
mlir::FailureOr<int64_t>
partialAttentionLanes(PartialAttentionOp op,
                      const VectorLoweringOptions &options,
                      mlir::PatternRewriter &rewriter);

/// Whether `op` takes the transposed kernel: keys and values both winnowed,
/// unless expand-winnowed expands them into registers (the [G, D] kernel).
bool takesWinnowedKernel(PartialAttentionOp op, int64_t lanes,
                         const VectorLoweringOptions &options);

/// The results of partial attention as tensors: `max` and `sum` as G-wide
/// vectors, the accumulator row by row from a [G, D] scratch.
llvm::SmallVector<mlir::Value> partialResults(KernelBuilder &kb,
                                              PartialAttentionOp op,
                                              mlir::Value max, mlir::Value sum,
                                              mlir::Value accumulator,
                                              int64_t groups, int64_t headDim);

/// Vector registers the chunk-major value loops keep accumulators in: half
/// of the host's (32 with AVX-512, 16 with AVX2), the rest hold the token's
/// chunks and weights (16 accumulators on AVX2 spill on every token).
int64_t accumulatorRegisters(int64_t lanes);

/// Runs `pass(c0, n)` over the passes of a chunk-major loop: `chunks` in
/// passes of `perPass`, the whole passes in one scf.for (one copy of a
/// pass's code for LLVM to compile: G = 4, D = 128 takes eight passes on
/// AVX2), then the rest, if any.
void forPasses(KernelBuilder &kb, int64_t chunks, int64_t perPass,
               llvm::function_ref<void(mlir::Value c0, int64_t n)> pass);

} // namespace swan

#endif // SWAN_CODEGEN_CPU_PARTIALATTENTION_H
