// RUN: swan-opt %s | swan-opt | FileCheck %s
// RUN: swan-opt %s --mlir-print-op-generic | swan-opt | FileCheck %s

// CHECK-LABEL: func.func @rotate_then_winnow
// CHECK-SAME: (%[[X:.*]]: tensor<?x128xf32>, %[[R:.*]]: tensor<128x128xf32>, %[[K:.*]]: index)
func.func @rotate_then_winnow(%x: tensor<?x128xf32>, %r: tensor<128x128xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x?xi8>) {
  // CHECK: %[[Y:.*]] = swan.rotate %[[X]] by %[[R]] : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
  %y = swan.rotate %x by %r : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
  // CHECK: swan.winnow %[[Y]] keep %[[K]] : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  %v, %i = swan.winnow %y keep %k : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf16>, tensor<?x?xi8>
}

// Static shapes, a dynamic head dimension, and wider indices.
// CHECK-LABEL: func.func @winnow_shapes
func.func @winnow_shapes(%a: tensor<16x64xf32>, %b: tensor<?x?xbf16>, %c: tensor<2x512xf32>, %k: index) {
  // CHECK: swan.winnow %{{[^ ,)]+}} keep %{{[^ ,)]+}} : tensor<16x64xf32> -> tensor<16x8xf32>, tensor<16x8xi8>
  %0:2 = swan.winnow %a keep %k : tensor<16x64xf32> -> tensor<16x8xf32>, tensor<16x8xi8>
  // CHECK: swan.winnow %{{[^ ,)]+}} keep %{{[^ ,)]+}} : tensor<?x?xbf16> -> tensor<?x?xbf16>, tensor<?x?xi16>
  %1:2 = swan.winnow %b keep %k : tensor<?x?xbf16> -> tensor<?x?xbf16>, tensor<?x?xi16>
  // CHECK: swan.winnow %{{[^ ,)]+}} keep %{{[^ ,)]+}} : tensor<2x512xf32> -> tensor<2x?xf16>, tensor<2x?xi16>
  %2:2 = swan.winnow %c keep %k : tensor<2x512xf32> -> tensor<2x?xf16>, tensor<2x?xi16>
  return
}

// CHECK-LABEL: func.func @compress
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf16>, %[[R:.*]]: tensor<64x64xf32>, %[[K:.*]]: index)
func.func @compress(%x: tensor<?x64xf16>, %r: tensor<64x64xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x?xi8>) {
  // CHECK: swan.compress %[[X]] by %[[R]] keep %[[K]] : tensor<?x64xf16>, tensor<64x64xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  %v, %i = swan.compress %x by %r keep %k : tensor<?x64xf16>, tensor<64x64xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf16>, tensor<?x?xi8>
}

// The mask encoding: occupancy bits instead of indices; `indices`, the
// default, is not printed.
// CHECK-LABEL: func.func @mask_encoding
func.func @mask_encoding(%x: tensor<?x128xf32>, %r: tensor<128x128xf32>, %k: index,
    %q: tensor<4x128xf32>, %s: f32, %ki: tensor<?x?xi8>) {
  // CHECK: swan.winnow %{{[^ ,)]+}} keep %{{[^ ,)]+}} encoding = mask : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x16xi8>
  %v, %m = swan.winnow %x keep %k encoding = mask : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x16xi8>
  // CHECK: swan.winnow %{{[^ ,)]+}} keep %{{[^ ,)]+}} : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  %v2, %i2 = swan.winnow %x keep %k encoding = indices : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  // CHECK: swan.compress %{{[^ ,)]+}} by %{{[^ ,)]+}} keep %{{[^ ,)]+}} encoding = mask : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x?xf16>, tensor<?x16xi8>
  %cv, %cm = swan.compress %x by %r keep %k encoding = mask : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x?xf16>, tensor<?x16xi8>
  // CHECK: values(%{{[^ ,)]+}} : tensor<?x?xf16>, indices %{{[^ ,)]+}} : tensor<?x16xi8>) value_encoding = mask : tensor<4x128xf32>
  %pm, %pl, %pa = swan.partial_attention %q, scale %s
      keys(%v2 : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>)
      values(%cv : tensor<?x?xf16>, indices %cm : tensor<?x16xi8>) value_encoding = mask
      : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  // CHECK: values(%{{[^ ,)]+}} : tensor<?x?xf16>, indices %{{[^ ,)]+}} : tensor<?x16xi8>) key_encoding = mask value_encoding = mask : tensor<4x128xf32>
  %km, %kl, %ka = swan.partial_attention %q, scale %s
      keys(%cv : tensor<?x?xf16>, indices %cm : tensor<?x16xi8>)
      values(%cv : tensor<?x?xf16>, indices %cm : tensor<?x16xi8>) key_encoding = mask value_encoding = mask
      : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  return
}

// CHECK-LABEL: func.func @decode_attention
// CHECK-SAME: (%[[Q:[^:]*]]: tensor<2x32x128xf32>, %[[S:[^:]*]]: f32, %[[RK:[^:]*]]: tensor<8x128x128xf32>, %[[RV:[^:]*]]: tensor<8x128x128xf32>
func.func @decode_attention(%q: tensor<2x32x128xf32>, %s: f32,
    %rk: tensor<8x128x128xf32>, %rv: tensor<8x128x128xf32>,
    %kv: tensor<2x8x?x?xf16>, %ki: tensor<2x8x?x?xi8>,
    %vv: tensor<2x8x?x?xf16>, %vi: tensor<2x8x?x?xi8>,
    %bk: tensor<2x8x128x128xf16>, %bv: tensor<2x8x128x128xf16>,
    %sl: tensor<2xi32>, %bl: tensor<2xi32>) -> (tensor<2x32x128xf32>, tensor<2x32x128xf32>) {
  // CHECK: swan.decode_attention %[[Q]], scale %[[S]] rotations(%[[RK]], %[[RV]] : tensor<8x128x128xf32>)
  // CHECK-SAME: sparse_keys(%{{[^ ,)]+}}, %{{[^ ,)]+}} : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
  // CHECK-SAME: sparse_values(%{{[^ ,)]+}}, %{{[^ ,)]+}} : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
  // CHECK-SAME: buffer(%{{[^ ,)]+}}, %{{[^ ,)]+}} : tensor<2x8x128x128xf16>) lengths(%{{[^ ,)]+}}, %{{[^ ,)]+}} : tensor<2xi32>)
  // CHECK-SAME: group_size = 4 : tensor<2x32x128xf32> -> tensor<2x32x128xf32>
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<8x128x128xf32>)
      sparse_keys(%kv, %ki : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
      sparse_values(%vv, %vi : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
      buffer(%bk, %bv : tensor<2x8x128x128xf16>) lengths(%sl, %bl : tensor<2xi32>)
      group_size = 4 : tensor<2x32x128xf32> -> tensor<2x32x128xf32>
  // CHECK: group_size = 4 rotated_output : tensor<2x32x128xf32> -> tensor<2x32x128xf32>
  %r = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<8x128x128xf32>)
      sparse_keys(%kv, %ki : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
      sparse_values(%vv, %vi : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
      buffer(%bk, %bv : tensor<2x8x128x128xf16>) lengths(%sl, %bl : tensor<2xi32>)
      group_size = 4 rotated_output : tensor<2x32x128xf32> -> tensor<2x32x128xf32>
  // CHECK: group_size = 4 value_encoding = mask : tensor<2x32x128xf32> -> tensor<2x32x128xf32>
  %vm = tensor.empty() : tensor<2x8x7x16xi8>
  %vmd = tensor.cast %vm : tensor<2x8x7x16xi8> to tensor<2x8x?x16xi8>
  %e = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<8x128x128xf32>)
      sparse_keys(%kv, %ki : tensor<2x8x?x?xf16>, tensor<2x8x?x?xi8>)
      sparse_values(%vv, %vmd : tensor<2x8x?x?xf16>, tensor<2x8x?x16xi8>)
      buffer(%bk, %bv : tensor<2x8x128x128xf16>) lengths(%sl, %bl : tensor<2xi32>)
      group_size = 4 value_encoding = mask : tensor<2x32x128xf32> -> tensor<2x32x128xf32>
  return %o, %r : tensor<2x32x128xf32>, tensor<2x32x128xf32>
}

// Sparse keys with dense values, and a dense block (the buffer).
// CHECK-LABEL: func.func @partial_attention
func.func @partial_attention(%q: tensor<4x128xf32>, %s: f32,
    %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %dk: tensor<?x128xf16>, %dv: tensor<?x128xf16>)
    -> (tensor<4xf32>, tensor<4xf32>, tensor<4x128xf32>) {
  // CHECK: swan.partial_attention %{{[^ ,)]+}}, scale %{{[^ ,)]+}} keys(%{{[^ ,)]+}} : tensor<?x?xf16>, indices %{{[^ ,)]+}} : tensor<?x?xi8>) values(%{{[^ ,)]+}} : tensor<?x128xf16>) : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>)
      values(%dv : tensor<?x128xf16>) : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  // CHECK: swan.partial_attention %{{[^ ,)]+}}, scale %{{[^ ,)]+}} keys(%{{[^ ,)]+}} : tensor<?x128xf16>) values(%{{[^ ,)]+}} : tensor<?x128xf16>) : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  %m2, %l2, %a2 = swan.partial_attention %q, scale %s
      keys(%dk : tensor<?x128xf16>) values(%dv : tensor<?x128xf16>)
      : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  return %m, %l2, %a : tensor<4xf32>, tensor<4xf32>, tensor<4x128xf32>
}

// CHECK-LABEL: func.func @merge_attention
func.func @merge_attention(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x128xf32>,
    %rv: tensor<128x128xf32>) -> (tensor<4x128xf32>, tensor<4x128xf16>) {
  // CHECK: swan.merge_attention %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}} rotate_back %{{[^ ,)]+}} : tensor<?x4xf32>, tensor<?x4x128xf32>, tensor<128x128xf32> -> tensor<4x128xf32>
  %o = swan.merge_attention %m, %l, %a rotate_back %rv
      : tensor<?x4xf32>, tensor<?x4x128xf32>, tensor<128x128xf32> -> tensor<4x128xf32>
  // CHECK: swan.merge_attention %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}} : tensor<?x4xf32>, tensor<?x4x128xf32> -> tensor<4x128xf16>
  %r = swan.merge_attention %m, %l, %a : tensor<?x4xf32>, tensor<?x4x128xf32> -> tensor<4x128xf16>
  return %o, %r : tensor<4x128xf32>, tensor<4x128xf16>
}

// SWAN-Q8: int8 winnowed values with one f32 scale per row.
// CHECK-LABEL: func.func @int8_winnowed
func.func @int8_winnowed(%x: tensor<?x128xf32>, %r: tensor<128x128xf32>, %k: index,
    %q: tensor<4x128xf32>, %s: f32, %bq: tensor<1x8x128xf32>,
    %rk: tensor<2x128x128xf32>, %kv: tensor<1x2x?x?xi8>, %ki: tensor<1x2x?x?xi8>,
    %ks: tensor<1x2x?xf32>, %bk: tensor<1x2x?x128xf16>, %sl: tensor<1xi32>) {
  // CHECK: swan.winnow %{{.*}} keep %{{.*}} : tensor<?x128xf32> -> tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>
  %v, %i, %sc = swan.winnow %x keep %k : tensor<?x128xf32> -> tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>
  // CHECK: swan.compress %{{.*}} by %{{.*}} keep %{{.*}} encoding = mask : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x?xi8>, tensor<?x16xi8>, tensor<?xf32>
  %cv, %cm, %cs = swan.compress %x by %r keep %k encoding = mask : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x?xi8>, tensor<?x16xi8>, tensor<?xf32>
  // CHECK: swan.partial_attention %{{.*}}, scale %{{.*}} keys(%{{.*}} : tensor<?x?xi8>, indices %{{.*}} : tensor<?x?xi8>, scales %{{.*}} : tensor<?xf32>) values(%{{.*}} : tensor<?x?xi8>, indices %{{.*}} : tensor<?x16xi8>, scales %{{.*}} : tensor<?xf32>) value_encoding = mask
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%v : tensor<?x?xi8>, indices %i : tensor<?x?xi8>, scales %sc : tensor<?xf32>)
      values(%cv : tensor<?x?xi8>, indices %cm : tensor<?x16xi8>, scales %cs : tensor<?xf32>)
      value_encoding = mask : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  // CHECK: sparse_keys(%{{.*}}, %{{.*}} : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>, scales %{{.*}} : tensor<1x2x?xf32>) sparse_values(%{{.*}}, %{{.*}} : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>, scales %{{.*}} : tensor<1x2x?xf32>)
  %o = swan.decode_attention %bq, scale %s rotations(%rk, %rk : tensor<2x128x128xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>, scales %ks : tensor<1x2x?xf32>)
      sparse_values(%kv, %ki : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>, scales %ks : tensor<1x2x?xf32>)
      buffer(%bk, %bk : tensor<1x2x?x128xf16>) lengths(%sl, %sl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x128xf32> -> tensor<1x8x128xf32>
  return
}
