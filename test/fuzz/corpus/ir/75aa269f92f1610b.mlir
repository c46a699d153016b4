func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op head dimensions of accumulator and result disagree (16 vs 8)}}
  %o = swan.merge_attention %m, %l, %a : tensor<?x4xf32>, tensor<?x4x16xf32> -> tensor<4x8xf32>
  return
}
