func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op query heads of accumulator and result disagree (4 vs 2)}}
  %o = swan.merge_attention %m, %l, %a : tensor<?x4xf32>, tensor<?x4x16xf32> -> tensor<2x16xf32>
  return
}
