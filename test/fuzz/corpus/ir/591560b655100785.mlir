// A winnow of anything but a rotation is left alone.
func.func @leaves_plain_winnow(%x: tensor<?x64xf32>, %k: index) -> (tensor<?x?xf32>, tensor<?x?xi8>) {
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf32>, tensor<?x?xi8>
}
