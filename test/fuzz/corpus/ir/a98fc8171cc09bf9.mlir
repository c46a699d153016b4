// One case for every diagnostic of the swan verifiers.

func.func @f(%x: tensor<8xf32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op input must have rank 2, got rank 1}}
  %y = swan.rotate %x by %r : tensor<8xf32>, tensor<8x8xf32> -> tensor<8xf32>
  return
}
