func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x16xf32>, %r: tensor<16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op rotation must have rank 2, got rank 1}}
  %o = swan.merge_attention %m, %l, %a rotate_back %r : tensor<?x4xf32>, tensor<?x4x16xf32>, tensor<16xf32> -> tensor<4x16xf32>
  return
}
