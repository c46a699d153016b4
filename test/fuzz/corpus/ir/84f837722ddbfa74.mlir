func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op shapes of result values and indices disagree (4 vs 2)}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x2xi8>
  return
}
