// Keeping all D components keeps the row itself, at positions 0..D-1.
func.func @winnow_keeping_everything(%x: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xi8>) {
  %k = arith.constant 64 : index
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x64xf32>, tensor<?x64xi8>
  return %v, %i : tensor<?x64xf32>, tensor<?x64xi8>
}
