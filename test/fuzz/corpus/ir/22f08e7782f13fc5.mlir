func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result keeps 9 components, more than the head dimension 8}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x9xf32>, tensor<?x9xi8>
  return
}
