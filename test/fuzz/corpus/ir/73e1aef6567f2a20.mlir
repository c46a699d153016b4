func.func @f(%x: tensor<?x8xf32>, %r: tensor<4x4xf32>) {
  // expected-error @+1 {{'swan.rotate' op head dimensions of the rotation and the input disagree (4 vs 8)}}
  %y = swan.rotate %x by %r : tensor<?x8xf32>, tensor<4x4xf32> -> tensor<?x8xf32>
  return
}
