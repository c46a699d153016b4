// rotated_output: no rotation back. Dynamic batch, index lengths.


// ONE-LABEL: func.func @decode_rotated
// ONE: swan.merge_attention %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}} : tensor<2x4xf32>, tensor<2x4x64xf32> -> tensor<4x64xf32>
func.func @decode_rotated(%q: tensor<?x8x64xf32>, %s: f32,
    %rk: tensor<2x64x64xf32>, %rv: tensor<2x64x64xf32>,
    %kv: tensor<?x2x?x?xf32>, %ki: tensor<?x2x?x?xi8>,
    %vv: tensor<?x2x?x?xf32>, %vi: tensor<?x2x?x?xi8>,
    %bk: tensor<?x2x16x64xf32>, %bv: tensor<?x2x16x64xf32>,
    %sl: tensor<?xindex>, %bl: tensor<?xindex>) -> tensor<?x8x64xf32> {
  %o = swan.decode_attention %q, scale %s
      rotations(%rk, %rv : tensor<2x64x64xf32>)
      sparse_keys(%kv, %ki : tensor<?x2x?x?xf32>, tensor<?x2x?x?xi8>)
      sparse_values(%vv, %vi : tensor<?x2x?x?xf32>, tensor<?x2x?x?xi8>)
      buffer(%bk, %bv : tensor<?x2x16x64xf32>)
      lengths(%sl, %bl : tensor<?xindex>)
      group_size = 4 rotated_output : tensor<?x8x64xf32> -> tensor<?x8x64xf32>
  return %o : tensor<?x8x64xf32>
}
