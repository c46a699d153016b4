func.func @f(%x: tensor<3x8xf32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op shapes of input and result disagree (3 vs 4)}}
  %y = swan.rotate %x by %r : tensor<3x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return
}
