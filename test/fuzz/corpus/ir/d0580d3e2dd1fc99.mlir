func.func @f(%x: tensor<3x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op row counts of input and results disagree (3 vs 5)}}
  %v, %i = swan.winnow %x keep %k : tensor<3x8xf32> -> tensor<5x?xf32>, tensor<5x?xi8>
  return
}
