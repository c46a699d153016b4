func.func @f(%x: tensor<1x?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op input must have rank 2, got rank 3}}
  %v, %i = swan.winnow %x keep %k : tensor<1x?x8xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return
}
