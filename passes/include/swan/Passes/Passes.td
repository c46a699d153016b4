//===- Passes.td - swan-level transformations --------------*- tablegen -*-===//

#ifndef SWAN_PASSES_PASSES_TD
#define SWAN_PASSES_PASSES_TD

include "mlir/Pass/PassBase.td"

def SwanFuseRotateWinnow : Pass<"swan-fuse-rotate-winnow"> {
  let summary = "Fuses a rotation whose only use is a winnow into swan.compress";
  let description = [{
    `swan.winnow (swan.rotate %x by %r) keep %k` becomes
    `swan.compress %x by %r keep %k` when the winnow is the rotation's only
    user, so that the rotated rows are never stored.
  }];
  let dependentDialects = ["::swan::SwanDialect"];
}

def SwanDecomposeDecodeAttention : Pass<"swan-decompose-decode-attention"> {
  let summary = "Splits swan.decode_attention into flash-decoding pieces";
  let description = [{
    Rewrites every `swan.decode_attention` into, per sequence and KV head
    (an `scf.forall` over batch and heads):

    - `swan.rotate` of the head's G query rows by `R_K`;
    - `num-splits` `swan.partial_attention` ops over consecutive blocks of
      the sequence's sparse tokens (its length read from the lengths
      operand; `tensor.extract_slice` views, never copies), and one over
      the dense buffer;
    - one `swan.merge_attention` of those blocks, rotated back by `R_V`
      unless the op has `rotated_output`.

    Blocks of a short sequence may be empty: partial attention over zero
    tokens yields max = -inf and sum = 0, which the merge ignores.
  }];
  let dependentDialects = ["::swan::SwanDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::tensor::TensorDialect"];
  let options = [
    Option<"numSplits", "num-splits", "int64_t", /*default=*/"1",
           "blocks the sparse tokens of one sequence are split into (each "
           "a separate partial, so that they can run in parallel)">,
  ];
}

#endif // SWAN_PASSES_PASSES_TD
