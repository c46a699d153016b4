func.func @f(%m: tensor<?x2xf32>, %l: tensor<?x2xf32>, %a: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op query heads of max and accumulator disagree (2 vs 4)}}
  %o = swan.merge_attention %m, %l, %a : tensor<?x2xf32>, tensor<?x4x16xf32> -> tensor<4x16xf32>
  return
}
