func.func @f(%x: tensor<?x8xf32>) {
  %k = arith.constant 3 : index
  // expected-error @+1 {{'swan.winnow' op constant k and the results' kept count disagree (3 vs 4)}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x4xi8>
  return
}
