func.func @f(%x: tensor<?x512xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result indices of type 'i8' cannot address head dimension 512}}
  %v, %i = swan.winnow %x keep %k : tensor<?x512xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return
}
