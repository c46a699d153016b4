func.func @f(%x: tensor<?x8xf32>) {
  %k = arith.constant 0 : index
  // expected-error @+1 {{'swan.winnow' op k = 0 is outside [1, head dimension]}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return
}
