func.func @f(%x: tensor<?x8xi32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op operand #0 must be ranked tensor of floating-point values}}
  %y = swan.rotate %x by %r : tensor<?x8xi32>, tensor<8x8xf32> -> tensor<?x8xi32>
  return
}
