func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4xf16>, %sl: tensor<1xi32>, %bl: tensor<3xi32>) {
  %o = "swan.decode_attention"(%q, %s, %rk, %rv, %kv, %ki, %vv, %vi, %bk, %bv, %sl, %bl) <{group_size = 4 : i64}> : (tensor<1x8x16xf32>, f32, tensor<2x16x16xf32>, tensor<16xf32>, tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>, tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>, tensor<1x2x4x16xf16>, tensor<1x2x4xf16>, tensor<1xi32>, tensor<3xi32>) -> tensor<1x8x16xf32>
  return
}
