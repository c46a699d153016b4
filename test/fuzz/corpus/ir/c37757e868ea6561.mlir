func.func @f(%x: tensor<?x8xf32>, %r: tensor<16x16xf32>, %k: index) {
  // expected-error @+1 {{'swan.compress' op head dimensions of the rotation and the input disagree (16 vs 8)}}
  %v, %i = swan.compress %x by %r keep %k : tensor<?x8xf32>, tensor<16x16xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return
}
