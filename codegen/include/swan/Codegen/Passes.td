//===- Passes.td - swan lowering passes --------------------*- tablegen -*-===//

#ifndef SWAN_CODEGEN_PASSES_TD
#define SWAN_CODEGEN_PASSES_TD

include "mlir/Pass/PassBase.td"

def SwanLowerToVector : Pass<"swan-lower-to-vector"> {
  let summary = "Lowers swan ops on tensors to scf loops and vector code";
  let description = [{
    Rewrites `swan.rotate`, `swan.winnow`, `swan.compress`,
    `swan.partial_attention` and `swan.merge_attention` into scf loops over
    rows and tokens whose bodies are explicit `vector` operations of
    `vector-width` f32 lanes (LLVM does not vectorise these dynamic-bound
    loops by itself). Inputs are read through read-only buffer views and
    results are written into `tensor.empty` destinations, so that one-shot
    bufferization with empty-tensor elimination writes them straight into
    the caller's buffers.

    Winnowed tokens are never expanded into memory: scores gather the
    rotated query at a token's indices, and values are gathered from,
    combined into and scattered back to the small `[G, D]` accumulator.
    Tokens are processed in tiles of `tile-size`: one softmax rescale of the
    accumulator per tile.

    `swan.decode_attention` is left alone: `swan-decompose-decode-attention`
    rewrites it into the ops above first.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::bufferization::BufferizationDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::tensor::TensorDialect",
    "::mlir::vector::VectorDialect"];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"0",
           "f32 lanes per vector; 0 picks the host's (16 with AVX-512)">,
    Option<"tileSize", "tile-size", "int64_t", /*default=*/"32",
           "tokens per tile of partial attention: one accumulator rescale "
           "per tile">,
  ];
}

def SwanApproximateMath : Pass<"swan-approximate-math"> {
  let summary = "Replaces math.exp on f32 by a vectorisable polynomial";
  let description = [{
    LLVM turns `math.exp` on a vector into one libm call per lane. This pass
    rewrites f32 `math.exp` (scalar and vector) into MLIR's polynomial
    approximation (range reduction plus a polynomial, within a few ulp),
    which stays in vector registers.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::vector::VectorDialect"];
}

#endif // SWAN_CODEGEN_PASSES_TD
