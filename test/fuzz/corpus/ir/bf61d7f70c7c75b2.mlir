func.func @f(%x: tensor<?x8xf32>, %r: tensor<8x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.compress' op result keeps 16 components, more than the head dimension 8}}
  %v, %i = swan.compress %x by %r keep %k : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x16xf16>, tensor<?x16xi8>
  return
}
