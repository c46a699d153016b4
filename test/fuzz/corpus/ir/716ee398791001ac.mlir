func.func @rotate_then_winnow(%x: tensor<?x128xf32>, %r: tensor<128x128xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x?xi8>) {
  %y = swan.rotate %x by %r : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
  %v, %i = swan.winnow %y keep %k : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf16>, tensor<?x?xi8>
}

// Static shapes, a dynamic head dimension, and wider indices.
func.func @winnow_shapes(%a: tensor<16x64xf32>, %b: tensor<?x?xbf16>, %c: tensor<2x512xf32>, %k: index) {
  %0:2 = swan.winnow %a keep %k : tensor<16x64xf32> -> tensor<16x8xf32>, tensor<16x8xi8>
  %1:2 = swan.winnow %b keep %k : tensor<?x?xbf16> -> tensor<?x?xbf16>, tensor<?x?xi16>
  %2:2 = swan.winnow %c keep %k : tensor<2x512xf32> -> tensor<2x?xf16>, tensor<2x?xi16>
  return
}

func.func @compress(%x: tensor<?x64xf16>, %r: tensor<64x64xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x?xi8>) {
  %v, %i = swan.compress %x by %r keep %k : tensor<?x64xf16>, tensor<64x64xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf16>, tensor<?x?xi8>
}

func.func @decode_attention(%q: tensor<2x32x128xf32>, %s: f32,
    %rk: tensor<8x128x128xf32>, %rv: tensor<8x128x128xf32>,
    %kv: tensor<2x8x?x?xf16>, %ki: tensor<2x8x?x?xi8>,
    %vv: tensor<2x8x?x?xf16>, %vi: tensor<2x8x?x?xi8>,
    %bk: tensor<2x8x128x128xf16>, %bv: tensor<2x8x128x128xf16>,
    %sl: tensor<2xi32>, %bl: tensor<2xi32>) -> (tensor<2x32x128xf32>, tensor<2x32x128xf32>) {
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<8x128x128xf32>)
      sparse_keys(%kv, %ki : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
      sparse_values(%vv, %vi : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
      buffer(%bk, %bv : tensor<2x8x128x128xf16>) lengths(%sl, %bl : tensor<2xi32>)
      group_size = 4 : tensor<2x32x128xf32> -> tensor<2x32x128xf32>
  %r = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<8x128x128xf32>)
      sparse_keys(%kv, %ki : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
      sparse_values(%vv, %vi : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
      buffer(%bk, %bv : tensor<2x8x128x128xf16>) lengths(%sl, %bl : tensor<2xi32>)
      group_size = 4 rotated_output : tensor<2x32x128xf32> -> tensor<2x32x128xf32>
  return %o, %r : tensor<2x32x128xf32>, tensor<2x32x128xf32>
}

// Sparse keys with dense values, and a dense block (the buffer).
func.func @partial_attention(%q: tensor<4x128xf32>, %s: f32,
    %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %dk: tensor<?x128xf16>, %dv: tensor<?x128xf16>)
    -> (tensor<4xf32>, tensor<4xf32>, tensor<4x128xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>)
      values(%dv : tensor<?x128xf16>) : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  %m2, %l2, %a2 = swan.partial_attention %q, scale %s
      keys(%dk : tensor<?x128xf16>) values(%dv : tensor<?x128xf16>)
      : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  return %m, %l2, %a : tensor<4xf32>, tensor<4xf32>, tensor<4x128xf32>
}

func.func @merge_attention(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x128xf32>,
    %rv: tensor<128x128xf32>) -> (tensor<4x128xf32>, tensor<4x128xf16>) {
  %o = swan.merge_attention %m, %l, %a rotate_back %rv
      : tensor<?x4xf32>, tensor<?x4x128xf32>, tensor<128x128xf32> -> tensor<4x128xf32>
  %r = swan.merge_attention %m, %l, %a : tensor<?x4xf32>, tensor<?x4x128xf32> -> tensor<4x128xf16>
  return %o, %r : tensor<4x128xf32>, tensor<4x128xf16>
}
