// The rotated rows are needed elsewhere: fusing would compute them twice.
func.func @keeps_shared_rotation(%x: tensor<?x64xf32>, %r: tensor<64x64xf32>, %k: index)
    -> (tensor<?x64xf32>, tensor<?x?xf32>, tensor<?x?xi8>) {
  %y = swan.rotate %x by %r : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
  %v, %i = swan.winnow %y keep %k : tensor<?x64xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return %y, %v, %i : tensor<?x64xf32>, tensor<?x?xf32>, tensor<?x?xi8>
}
