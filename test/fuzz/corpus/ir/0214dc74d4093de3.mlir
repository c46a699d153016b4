func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x3xf16>, %ki: tensor<?x5xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op shapes of key values and indices disagree (3 vs 5)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x3xf16>, indices %ki : tensor<?x5xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}
