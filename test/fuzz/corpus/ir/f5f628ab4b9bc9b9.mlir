// Fewer than D components: a real winnow stays.
func.func @winnow_keeping_fewer(%x: tensor<?x64xf32>) -> (tensor<?x63xf32>, tensor<?x63xi8>) {
  %k = arith.constant 63 : index
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x63xf32>, tensor<?x63xi8>
  return %v, %i : tensor<?x63xf32>, tensor<?x63xi8>
}
