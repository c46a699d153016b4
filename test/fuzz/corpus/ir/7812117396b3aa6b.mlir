func.func @f(%x: tensor<?x8xf32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op result element type must match the input's}}
  %y = swan.rotate %x by %r : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf16>
  return
}
