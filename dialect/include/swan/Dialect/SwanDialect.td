//===- SwanDialect.td - the swan dialect -------------------*- tablegen -*-===//

#ifndef SWAN_DIALECT_SWANDIALECT_TD
#define SWAN_DIALECT_SWANDIALECT_TD

include "mlir/IR/OpBase.td"

def Swan_Dialect : Dialect {
  let name = "swan";
  let summary = "Decode attention over a rotated, winnowed KV cache.";
  let description = [{
    The `swan` dialect describes SWAN attention: keys and values are rotated
    by offline orthogonal matrices, each rotated vector keeps only its `k`
    components of largest magnitude (winnowing), and decode attention runs on
    that sparse cache directly, never reconstructing a dense one.

    Vectors are rows and a rotation is `x' = x · R`. The number of kept
    components `k`, sequence lengths and batch sizes are run-time values, so
    one compiled kernel serves every `k`. A winnowed vector is stored as `k`
    values and `k` indices, ascending per row.
  }];
  let cppNamespace = "::swan";
  let dependentDialects = ["::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

class Swan_Op<string mnemonic, list<Trait> traits = []>
    : Op<Swan_Dialect, mnemonic, traits>;

#endif // SWAN_DIALECT_SWANDIALECT_TD
