func.func @fuses_lone_rotation(%x: tensor<?x128xf32>, %r: tensor<128x128xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x?xi8>) {
  %y = swan.rotate %x by %r : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
  %v, %i = swan.winnow %y keep %k : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf16>, tensor<?x?xi8>
}
