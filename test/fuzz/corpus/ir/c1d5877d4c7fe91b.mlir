func.func @f(%x: tensor<?x8xf32>) {
  %k = arith.constant 9 : index
  // expected-error @+1 {{'swan.winnow' op k = 9 is outside [1, head dimension]}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return
}
