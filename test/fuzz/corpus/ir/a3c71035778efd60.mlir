func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>) {
  // expected-error @+1 {{'swan.rotate' op rotation rows and columns disagree (8 vs 4)}}
  %y = swan.rotate %x by %r : tensor<?x4xf32>, tensor<8x4xf32> -> tensor<?x4xf32>
  return
}
