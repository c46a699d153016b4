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

    Winnowed tokens are never expanded into memory. When keys and values
    are both winnowed, the scaled rotated query and the accumulator live
    transposed in stack scratch (`[D, G]`), and each kept entry j of a token
    costs one G-wide row: `s += val_j · q'[idx_j, :]` for its score and
    `acc[idx_j, :] += val_j · p` for its value (no gathers or scatters,
    which are slow on current x86 cores). A block mixing winnowed and dense
    tokens keeps a `[G, D]` state and gathers from the query / gathers,
    combines and scatters into the accumulator. Indices are read as
    unsigned. Tokens are processed in tiles of `tile-size`: one softmax
    rescale of the accumulator per tile.

    `swan.decode_attention` is left alone: `swan-decompose-decode-attention`
    rewrites it into the ops above first.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect", "::mlir::bufferization::BufferizationDialect",
    "::mlir::math::MathDialect", "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect", "::mlir::tensor::TensorDialect",
    "::mlir::vector::VectorDialect", "::mlir::x86vector::X86VectorDialect"];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"0",
           "f32 lanes per vector; 0 picks the host's (16 with AVX-512)">,
    Option<"tileSize", "tile-size", "int64_t", /*default=*/"32",
           "tokens per tile of partial attention: one accumulator rescale "
           "per tile">,
    Option<"expandWinnowed", "expand-winnowed", "bool", /*default=*/"false",
           "expand each winnowed token into registers (x86vector "
           "vp2intersect + expanding loads; AVX-512 VP2INTERSECT and VBMI2 "
           "hosts) instead of the transposed row-per-entry scheme; slower "
           "on znver5, kept for hosts and encodings where it pays">,
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

def SwanLegalizeNarrowExpandLoad : Pass<"swan-legalize-narrow-expandload"> {
  let summary = "Expanding loads as the host's fastest instructions";
  let description = [{
    Rewrites `vector.expandload` from a memref (the mask-encoded rows of
    the attention kernels) into code the host runs fast, chosen by
    `expand-with`:

    - `vpexpand`: a load of 16-bit floats becomes an
      `llvm.intr.masked.expandload` of their `i16` bits at the element's
      address, and a bitcast. LLVM scalarises the expanding load on `f16` /
      `bf16` into one branch per lane on x86 without AVX512-FP16, but
      lowers it on `i16` to one `vpexpandw` (AVX-512 VBMI2). Other element
      types are left to LLVM (`vexpandps` on `f32`).
    - `pshufb`: for x86 without AVX-512, where LLVM scalarises every
      expanding load. Each 16 bytes of the result (8 lanes of 16 bits, 4 of
      32) is one 16-byte load of the row at that part's first value and one
      SSSE3 byte shuffle whose control is the row of a constant table
      (`memref.global`, 4 KiB for 16-bit lanes) picked by the part's mask
      bits. A window may reach up to 16 bytes past the row's last value. A
      load marked `swan.readable_tail` (an i64 of at least 16: that many
      bytes past its rows are readable, as the attention kernels promise for
      every mask-encoded row) is rewritten as it is; any other checks at
      run time that another row of at least a window's length follows, and
      otherwise gathers each window element by element inside the row.
    - `host` (the default): `vpexpand` where the host has AVX-512 VBMI2 or
      is not x86, `pshufb` on the other x86 hosts.

    It runs after bufferization (the LLVM ops have no memory-effect model,
    which buffer deallocation needs) and before the conversion to LLVM.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::vector::VectorDialect"];
  let options = [
    Option<"expandWith", "expand-with", "std::string", /*default=*/"\"host\"",
           "how expanding loads become machine code: host, vpexpand (AVX-512 "
           "VBMI2) or pshufb (SSSE3 byte shuffles from a table)">,
  ];
}

#endif // SWAN_CODEGEN_PASSES_TD
