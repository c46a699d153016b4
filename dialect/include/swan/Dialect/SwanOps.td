//===- SwanOps.td - swan operations ------------------------*- tablegen -*-===//

#ifndef SWAN_DIALECT_SWANOPS_TD
#define SWAN_DIALECT_SWANOPS_TD

include "swan/Dialect/SwanDialect.td"
include "mlir/IR/EnumAttr.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Swan_FloatTensor : RankedTensorOf<[AnyFloat]>;
def Swan_IndexTensor : RankedTensorOf<[AnySignlessInteger]>;
def Swan_LengthTensor : RankedTensorOf<[AnySignlessInteger, Index]>;
def Swan_F32Tensor : RankedTensorOf<[F32]>;
// Kept components of winnowed rows: floats, or int8 with one f32 scale per
// row (SWAN-Q8, docs/DESIGN.md §5).
def Swan_WinnowedTensor : RankedTensorOf<[AnyFloat, I8]>;

// How the positions of a winnowed row's kept components are stored. Both
// encodings keep the values in ascending dimension order; only the second
// tensor differs.
def Swan_Encoding : I32EnumAttr<"Encoding",
    "storage of the kept positions of winnowed rows", [
      I32EnumAttrCase<"indices", 0>,  // [n, k] positions, ascending
      I32EnumAttrCase<"mask", 1>      // [n, ceil(D/8)] i8 occupancy bits
    ]> {
  let cppNamespace = "::swan";
}
def Swan_EncodingAttr
    : DefaultValuedAttr<Swan_Encoding, "::swan::Encoding::indices">;

//===----------------------------------------------------------------------===//
// Building blocks: rotate, winnow and their fusion
//===----------------------------------------------------------------------===//

def Swan_RotateOp : Swan_Op<"rotate", [Pure]> {
  let summary = "Rotates row vectors by an orthogonal matrix: `x · R`.";
  let description = [{
    Multiplies every row of `input` (`[n, D]`) by `rotation` (`[D, D]`),
    which the caller guarantees orthogonal. The result has the shape and
    element type of the input; arithmetic is carried out in f32 at least.

    ```mlir
    %y = swan.rotate %x by %r
        : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
    ```
  }];
  let arguments = (ins Swan_FloatTensor:$input, Swan_FloatTensor:$rotation);
  let results = (outs Swan_FloatTensor:$result);
  let assemblyFormat = [{
    $input `by` $rotation attr-dict `:` type($input) `,` type($rotation)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def Swan_WinnowOp : Swan_Op<"winnow", [Pure]> {
  let summary = "Keeps each row's `k` components of largest magnitude.";
  let description = [{
    For every row of `input` (`[n, D]`), keeps the `k` entries of largest
    magnitude. Ties go to the lower index. The kept entries are returned as
    `values` (`[n, k]`, converted to the values' element type) and their
    positions as `indices` (`[n, k]`, ascending within each row). `k` is a
    run-time operand with `1 ≤ k ≤ D`; the index element type must be wide
    enough to hold `D - 1` as an unsigned number.

    With `encoding = mask` the second result is instead each row's
    occupancy mask, `[n, ceil(D/8)]` of `i8`: bit `d % 8` of byte `d / 8`
    is set when dimension `d` is kept. The values are the same in both
    encodings.

    With `i8` values (SWAN-Q8) a third result, `scales` (`[n]` of `f32`),
    holds each row's `s = max|x| / 127` over its kept entries (0 for an
    all-zero row) and the values are `round(x / s)` (to nearest, ties to
    even), so that every stored entry is within `s / 2` of the entry it
    replaced. Rows are winnowed as with float values.

    ```mlir
    %vals, %idx = swan.winnow %x keep %k
        : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
    %vals2, %mask = swan.winnow %x keep %k encoding = mask
        : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x16xi8>
    %q, %idx3, %scales = swan.winnow %x keep %k
        : tensor<?x128xf32> -> tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>
    ```
  }];
  let arguments = (ins Swan_FloatTensor:$input, Index:$k,
                       Swan_EncodingAttr:$encoding);
  let results = (outs Swan_WinnowedTensor:$values, Swan_IndexTensor:$indices,
                      Optional<Swan_F32Tensor>:$scales);
  let assemblyFormat = [{
    $input `keep` $k (`encoding` `=` $encoding^)? attr-dict `:` type($input)
    `->` type($values) `,` type($indices) (`,` type($scales)^)?
  }];
  let hasVerifier = 1;
  let hasCanonicalizer = 1;
}

def Swan_CompressOp : Swan_Op<"compress", [Pure]> {
  let summary = "Rotates then winnows, in one pass over the input.";
  let description = [{
    `swan.compress %x by %r keep %k` equals `swan.winnow` applied to
    `swan.rotate %x by %r`, without the rotated rows ever being stored: the
    operation the cache runs on every token that leaves its dense buffer.
    `swan-fuse-rotate-winnow` produces it. `encoding`, `i8` values and
    their `scales` are the winnow's.

    ```mlir
    %vals, %idx = swan.compress %x by %r keep %k
        : tensor<?x128xf32>, tensor<128x128xf32>
        -> tensor<?x?xf16>, tensor<?x?xi8>
    ```
  }];
  let arguments = (ins Swan_FloatTensor:$input, Swan_FloatTensor:$rotation,
                       Index:$k, Swan_EncodingAttr:$encoding);
  let results = (outs Swan_WinnowedTensor:$values, Swan_IndexTensor:$indices,
                      Optional<Swan_F32Tensor>:$scales);
  let assemblyFormat = [{
    $input `by` $rotation `keep` $k (`encoding` `=` $encoding^)? attr-dict
    `:` type($input) `,` type($rotation) `->` type($values) `,`
    type($indices) (`,` type($scales)^)?
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Decode attention and its flash-decoding pieces
//===----------------------------------------------------------------------===//

def Swan_DecodeAttentionOp : Swan_Op<"decode_attention", [Pure,
    AttrSizedOperandSegments,
    AllTypesMatch<["key_rotation", "value_rotation"]>,
    AllTypesMatch<["buffer_keys", "buffer_values"]>,
    AllTypesMatch<["sparse_lengths", "buffer_lengths"]>]> {
  let summary = "One decode step of attention over a SWAN cache.";
  let description = [{
    For a batch of `B` sequences with `H` KV heads and `G = group_size` query
    heads per KV head (query head `j` reads KV head `j / G`), computes

    ```
    q'   = q · R_K[h]
    s_i  = scale · Σ_j q'[idx_i[j]] · val_i[j]     (sparse token i)
    s_i  = scale · q' · k'_i                         (buffer token i)
    o'   = Σ_i softmax(s)_i · v'_i
    o    = o' · R_V[h]ᵀ                              (unless rotated_output)
    ```

    Operand shapes: `query` `[B, H·G, D]`; `key_rotation` and
    `value_rotation` `[H, D, D]`; sparse keys `[B, H, L, k_K]` values and
    indices, sparse values `[B, H, L, k_V]` values and indices (winnowed,
    rotated tokens); `buffer_keys` and `buffer_values` `[B, H, b, D]` (dense,
    rotated); `sparse_lengths` and `buffer_lengths` `[B]`, the number of
    valid tokens of each sequence in the sparse cache and in the buffer.
    Every sequence must hold at least one token. With `rotated_output` the
    result stays in the value rotation's basis (for a model whose output
    projection has absorbed `R_Vᵀ`). With `key_encoding = mask` or
    `value_encoding = mask` the sparse key or value indices are occupancy
    masks, `[B, H, L, ceil(D/8)]` of `i8` (see `swan.winnow`). Sparse keys
    or values of `i8` (SWAN-Q8) come with `scales` `[B, H, L]`: a key's
    scale multiplies its score, a value's its softmax weight.

    ```mlir
    %o = swan.decode_attention %q, scale %s
        rotations(%rk, %rv : tensor<8x128x128xf32>)
        sparse_keys(%kv, %ki : tensor<1x8x?x?xf16>, tensor<1x8x?x?xi8>)
        sparse_values(%vv, %vi : tensor<1x8x?x?xf16>, tensor<1x8x?x?xi8>)
        buffer(%bk, %bv : tensor<1x8x128x128xf16>)
        lengths(%sl, %bl : tensor<1xi32>)
        group_size = 4 : tensor<1x32x128xf32> -> tensor<1x32x128xf32>
    ```
  }];
  let arguments = (ins Swan_FloatTensor:$query, F32:$scale,
      Swan_FloatTensor:$key_rotation, Swan_FloatTensor:$value_rotation,
      Swan_WinnowedTensor:$sparse_key_values,
      Swan_IndexTensor:$sparse_key_indices,
      Optional<Swan_F32Tensor>:$sparse_key_scales,
      Swan_WinnowedTensor:$sparse_value_values,
      Swan_IndexTensor:$sparse_value_indices,
      Optional<Swan_F32Tensor>:$sparse_value_scales,
      Swan_FloatTensor:$buffer_keys, Swan_FloatTensor:$buffer_values,
      Swan_LengthTensor:$sparse_lengths, Swan_LengthTensor:$buffer_lengths,
      ConfinedAttr<I64Attr, [IntPositive]>:$group_size,
      UnitAttr:$rotated_output, Swan_EncodingAttr:$key_encoding,
      Swan_EncodingAttr:$value_encoding);
  let results = (outs Swan_FloatTensor:$result);
  let assemblyFormat = [{
    $query `,` `scale` $scale
    `rotations` `(` $key_rotation `,` $value_rotation `:` type($key_rotation) `)`
    `sparse_keys` `(` $sparse_key_values `,` $sparse_key_indices `:`
        type($sparse_key_values) `,` type($sparse_key_indices)
        (`,` `scales` $sparse_key_scales^ `:` type($sparse_key_scales))? `)`
    `sparse_values` `(` $sparse_value_values `,` $sparse_value_indices `:`
        type($sparse_value_values) `,` type($sparse_value_indices)
        (`,` `scales` $sparse_value_scales^ `:` type($sparse_value_scales))?
        `)`
    `buffer` `(` $buffer_keys `,` $buffer_values `:` type($buffer_keys) `)`
    `lengths` `(` $sparse_lengths `,` $buffer_lengths `:`
        type($sparse_lengths) `)`
    `group_size` `=` $group_size (`rotated_output` $rotated_output^)?
    (`key_encoding` `=` $key_encoding^)?
    (`value_encoding` `=` $value_encoding^)?
    attr-dict `:` type($query) `->` type($result)
  }];
  let hasVerifier = 1;
}

def Swan_PartialAttentionOp : Swan_Op<"partial_attention", [Pure,
    AttrSizedOperandSegments, AllTypesMatch<["max", "sum"]>]> {
  let summary = "Attention over one block of tokens, before normalisation.";
  let description = [{
    The flash-decoding piece of `swan.decode_attention`: the `G` rotated
    query heads of one KV head (`query`, `[G, D]`) against a block of `n`
    tokens. Keys and values are each either dense rotated rows (`[n, D]`)
    or winnowed rows (`[n, k]` values plus `[n, k]` indices; for winnowed
    keys or values, `key_encoding = mask` or `value_encoding = mask` takes
    `[n, ceil(D/8)]` occupancy masks instead of indices, as `swan.winnow`
    produces them). Winnowed keys or values of `i8` (SWAN-Q8) take their
    rows' `scales` (`[n]` of `f32`): a key's scale multiplies its score, a
    value's its weight in the accumulator, and no row is ever dequantised
    into memory. Returns, per
    query head, the largest score `max` (`-inf` for an empty block), the sum
    of `exp(s_i - max)` and the unnormalised accumulator
    `Σ_i exp(s_i - max) · v'_i` (`[G, D]`, still rotated).
    `swan.merge_attention` combines blocks.

    ```mlir
    %m, %l, %acc = swan.partial_attention %q, scale %s
        keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>)
        values(%vv : tensor<?x?xf16>, indices %vi : tensor<?x?xi8>)
        : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
    ```
  }];
  let arguments = (ins Swan_F32Tensor:$query, F32:$scale,
      Swan_WinnowedTensor:$key_values,
      Optional<Swan_IndexTensor>:$key_indices,
      Optional<Swan_F32Tensor>:$key_scales,
      Swan_WinnowedTensor:$value_values,
      Optional<Swan_IndexTensor>:$value_indices,
      Optional<Swan_F32Tensor>:$value_scales,
      Swan_EncodingAttr:$key_encoding, Swan_EncodingAttr:$value_encoding);
  let results = (outs Swan_F32Tensor:$max, Swan_F32Tensor:$sum,
                      Swan_F32Tensor:$accumulator);
  let assemblyFormat = [{
    $query `,` `scale` $scale
    `keys` `(` $key_values `:` type($key_values)
        (`,` `indices` $key_indices^ `:` type($key_indices))?
        (`,` `scales` $key_scales^ `:` type($key_scales))? `)`
    `values` `(` $value_values `:` type($value_values)
        (`,` `indices` $value_indices^ `:` type($value_indices))?
        (`,` `scales` $value_scales^ `:` type($value_scales))? `)`
    (`key_encoding` `=` $key_encoding^)?
    (`value_encoding` `=` $value_encoding^)?
    attr-dict `:` type($query) `->` type($max) `,` type($accumulator)
  }];
  let hasVerifier = 1;
}

def Swan_MergeAttentionOp : Swan_Op<"merge_attention", [Pure,
    AllTypesMatch<["max", "sum"]>]> {
  let summary = "Combines partial attention blocks into the output.";
  let description = [{
    Merges `S` results of `swan.partial_attention` (`max` and `sum` `[S, G]`,
    `accumulator` `[S, G, D]`) into the normalised output `[G, D]`:
    `o' = Σ_s exp(m_s - m) · acc_s / Σ_s exp(m_s - m) · l_s` with
    `m = max_s m_s`. With a `rotate_back` matrix `R` the result is `o' · Rᵀ`,
    otherwise it stays rotated.

    ```mlir
    %o = swan.merge_attention %m, %l, %acc rotate_back %rv
        : tensor<?x4xf32>, tensor<?x4x128xf32>, tensor<128x128xf32>
        -> tensor<4x128xf32>
    ```
  }];
  let arguments = (ins Swan_F32Tensor:$max, Swan_F32Tensor:$sum,
      Swan_F32Tensor:$accumulator,
      Optional<Swan_FloatTensor>:$value_rotation);
  let results = (outs Swan_FloatTensor:$result);
  let assemblyFormat = [{
    $max `,` $sum `,` $accumulator (`rotate_back` $value_rotation^)? attr-dict
    `:` type($max) `,` type($accumulator)
    (`,` type($value_rotation)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // SWAN_DIALECT_SWANOPS_TD
