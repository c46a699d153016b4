func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<3x?xf16>, %ki: tensor<3x?xi8>, %vv: tensor<5x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op token counts of keys and values disagree (3 vs 5)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<3x?xf16>, indices %ki : tensor<3x?xi8>) values(%vv : tensor<5x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}
