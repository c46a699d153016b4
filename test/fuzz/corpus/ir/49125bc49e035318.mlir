func.func @f(%x: tensor<?x8xf32>, %r: tensor<1x8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op rotation must have rank 2, got rank 3}}
  %y = swan.rotate %x by %r : tensor<?x8xf32>, tensor<1x8x8xf32> -> tensor<?x8xf32>
  return
}
