func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<2x2x?x?xf16>, %ki: tensor<2x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op batch sizes of query and sparse keys disagree (1 vs 2)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<2x2x?x?xf16>, tensor<2x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}
