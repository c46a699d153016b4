// Per (sequence, KV head): rotate the head's G query rows by R_K[h], two
// partials over the sparse tokens (sliced, never copied), one over the
// buffer, one merge rotated back by R_V[h].


// ONE-LABEL: func.func @decode
// ONE-COUNT-2: swan.partial_attention
// ONE-NOT: swan.partial_attention
// ONE: swan.merge_attention {{.*}} : tensor<2x4xf32>, tensor<2x4x128xf32>, tensor<128x128xf32> -> tensor<4x128xf32>
func.func @decode(%q: tensor<1x32x128xf32>, %s: f32,
    %rk: tensor<8x128x128xf32>, %rv: tensor<8x128x128xf32>,
    %kv: tensor<1x8x?x?xf16>, %ki: tensor<1x8x?x?xi8>,
    %vv: tensor<1x8x?x?xf16>, %vi: tensor<1x8x?x?xi8>,
    %bk: tensor<1x8x128x128xf16>, %bv: tensor<1x8x128x128xf16>,
    %sl: tensor<1xi32>, %bl: tensor<1xi32>) -> tensor<1x32x128xf32> {
  %o = swan.decode_attention %q, scale %s
      rotations(%rk, %rv : tensor<8x128x128xf32>)
      sparse_keys(%kv, %ki : tensor<1x8x?x?xf16>, tensor<1x8x?x?xi8>)
      sparse_values(%vv, %vi : tensor<1x8x?x?xf16>, tensor<1x8x?x?xi8>)
      buffer(%bk, %bv : tensor<1x8x128x128xf16>)
      lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x32x128xf32> -> tensor<1x32x128xf32>
  return %o : tensor<1x32x128xf32>
}
