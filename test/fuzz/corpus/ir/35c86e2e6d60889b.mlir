func.func @f(%q: tensor<16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op query must have rank 2, got rank 1}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}
