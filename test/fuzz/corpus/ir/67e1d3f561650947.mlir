func.func @f(%m: tensor<4xf32>, %l: tensor<4xf32>, %a: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op max must have rank 2, got rank 1}}
  %o = swan.merge_attention %m, %l, %a : tensor<4xf32>, tensor<?x4x16xf32> -> tensor<4x16xf32>
  return
}
