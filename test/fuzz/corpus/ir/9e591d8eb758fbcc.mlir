func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op accumulator must have rank 3, got rank 2}}
  %o = swan.merge_attention %m, %l, %a : tensor<?x4xf32>, tensor<?x4xf32> -> tensor<4x16xf32>
  return
}
