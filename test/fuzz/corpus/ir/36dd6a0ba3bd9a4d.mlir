func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x16xf32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op head dimensions of the rotation and the input disagree (8 vs 16)}}
  %o = swan.merge_attention %m, %l, %a rotate_back %r : tensor<?x4xf32>, tensor<?x4x16xf32>, tensor<8x8xf32> -> tensor<4x16xf32>
  return
}
