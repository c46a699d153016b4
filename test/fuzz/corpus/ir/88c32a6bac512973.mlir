// A result type with a dynamic kept count gets a cast of the input.
func.func @winnow_keeping_everything_dynamic_result(%x: tensor<4x8xf16>) -> (tensor<4x?xf16>, tensor<4x?xi16>) {
  %k = arith.constant 8 : index
  %v, %i = swan.winnow %x keep %k : tensor<4x8xf16> -> tensor<4x?xf16>, tensor<4x?xi16>
  return %v, %i : tensor<4x?xf16>, tensor<4x?xi16>
}
