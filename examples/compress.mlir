// A decode step's winnowing: rotate new keys by R_K, keep their k largest
// components. `swan-fuse-rotate-winnow` turns the pair into swan.compress,
// and `swan-lower-to-llvm` compiles it for the CPU.
func.func @winnow_new_keys(%keys: tensor<?x128xf32>, %r_k: tensor<128x128xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x?xi8>) {
  %rotated = swan.rotate %keys by %r_k
      : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
  %values, %indices = swan.winnow %rotated keep %k
      : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return %values, %indices : tensor<?x?xf16>, tensor<?x?xi8>
}
