func.func @f(%m: tensor<3x4xf32>, %l: tensor<3x4xf32>, %a: tensor<2x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op block counts of max and accumulator disagree (3 vs 2)}}
  %o = swan.merge_attention %m, %l, %a : tensor<3x4xf32>, tensor<2x4x16xf32> -> tensor<4x16xf32>
  return
}
