func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result indices must have rank 2, got rank 1}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x?xf32>, tensor<?xi8>
  return
}
