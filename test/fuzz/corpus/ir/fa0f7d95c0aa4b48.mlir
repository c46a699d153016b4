// A run-time k is not known to be D.
func.func @winnow_dynamic_k(%x: tensor<?x64xf32>, %k: index) -> (tensor<?x?xf32>, tensor<?x?xi8>) {
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf32>, tensor<?x?xi8>
}
