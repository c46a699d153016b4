func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result #1 must be ranked tensor of signless integer values}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x?xf32>, tensor<?x?xf32>
  return
}
