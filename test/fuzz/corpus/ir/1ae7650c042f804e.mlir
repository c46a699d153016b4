func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result must keep at least one component}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x0xf32>, tensor<?x0xi8>
  return
}
