// Storing in a narrower type still converts every value: the winnow stays.
func.func @winnow_keeping_everything_narrowing(%x: tensor<?x64xf32>) -> (tensor<?x64xf16>, tensor<?x64xi8>) {
  %k = arith.constant 64 : index
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x64xf16>, tensor<?x64xi8>
  return %v, %i : tensor<?x64xf16>, tensor<?x64xi8>
}
