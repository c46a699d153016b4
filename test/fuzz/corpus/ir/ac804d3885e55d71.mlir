func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op head dimensions of query and accumulator disagree (16 vs 8)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x8xf32>
  return
}
