// RUN: swan-opt %s --swan-decompose-decode-attention=num-splits=2 --split-input-file | FileCheck %s
// RUN: swan-opt %s --swan-decompose-decode-attention --split-input-file | FileCheck %s --check-prefix=ONE

// Per (sequence, KV head): rotate the head's G query rows by R_K[h], two
// partials over the sparse tokens (sliced, never copied), one over the
// buffer, one merge rotated back by R_V[h].

// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[Q:[^:]+]]: tensor<1x32x128xf32>, %[[S:[^:]+]]: f32, %[[RK:[^:]+]]: tensor<8x128x128xf32>, %[[RV:[^:]+]]: tensor<8x128x128xf32>, %[[KV:[^:]+]]: tensor<1x8x?x?xf16>, %[[KI:[^:]+]]: tensor<1x8x?x?xi8>, %[[VV:[^:]+]]: tensor<1x8x?x?xf16>, %[[VI:[^:]+]]: tensor<1x8x?x?xi8>, %[[BK:[^:]+]]: tensor<1x8x128x128xf16>, %[[BV:[^:]+]]: tensor<1x8x128x128xf16>, %[[SL:[^:]+]]: tensor<1xi32>, %[[BL:[^:]+]]: tensor<1xi32>)
// CHECK: %[[OUT:.*]] = tensor.empty() : tensor<1x32x128xf32>
// CHECK: %[[RES:.*]] = scf.forall (%[[B:.*]], %[[H:.*]]) in (1, 8) shared_outs(%[[O:.*]] = %[[OUT]])
// CHECK: %[[ROW:.*]] = arith.muli %[[H]], %{{.*}} : index
// CHECK: %[[QH:.*]] = tensor.extract_slice %[[Q]][%[[B]], %[[ROW]], 0] [1, 4, 128] [1, 1, 1] : tensor<1x32x128xf32> to tensor<4x128xf32>
// CHECK: %[[RKH:.*]] = tensor.extract_slice %[[RK]][%[[H]], 0, 0] [1, 128, 128] [1, 1, 1] : tensor<8x128x128xf32> to tensor<128x128xf32>
// CHECK: %[[QR:.*]] = swan.rotate %[[QH]] by %[[RKH]]
// CHECK: %[[LEN32:.*]] = tensor.extract %[[SL]][%[[B]]] : tensor<1xi32>
// CHECK: %[[LEN:.*]] = arith.index_cast %[[LEN32]] : i32 to index
// CHECK: %[[BLOCK:.*]] = arith.ceildivui %[[LEN]], %{{.*}} : index
// CHECK: tensor.extract_slice %[[KV]][%[[B]], %[[H]], %{{.*}}, 0] [1, 1, %{{.*}}, %{{.*}}] [1, 1, 1, 1] : tensor<1x8x?x?xf16> to tensor<?x?xf16>
// CHECK: %[[M0:[^,]+]], %[[L0:[^,]+]], %[[A0:[^ ]+]] = swan.partial_attention %[[QR]], scale %[[S]] keys(%{{.*}} : tensor<?x?xf16>, indices %{{.*}} : tensor<?x?xi8>) values(%{{.*}} : tensor<?x?xf16>, indices %{{.*}} : tensor<?x?xi8>)
// CHECK: %[[M1:[^,]+]], %[[L1:[^,]+]], %[[A1:[^ ]+]] = swan.partial_attention %[[QR]], scale %[[S]] keys(%{{.*}} : tensor<?x?xf16>, indices
// CHECK: %[[BLEN32:.*]] = tensor.extract %[[BL]][%[[B]]] : tensor<1xi32>
// CHECK: %[[BLEN:.*]] = arith.index_cast %[[BLEN32]]
// CHECK: %[[BKH:.*]] = tensor.extract_slice %[[BK]][%[[B]], %[[H]], 0, 0] [1, 1, %[[BLEN]], 128] [1, 1, 1, 1] : tensor<1x8x128x128xf16> to tensor<?x128xf16>
// CHECK: %[[BVH:.*]] = tensor.extract_slice %[[BV]][%[[B]], %[[H]], 0, 0] [1, 1, %[[BLEN]], 128]
// CHECK: %[[M2:[^,]+]], %[[L2:[^,]+]], %[[A2:[^ ]+]] = swan.partial_attention %[[QR]], scale %[[S]] keys(%[[BKH]] : tensor<?x128xf16>) values(%[[BVH]] : tensor<?x128xf16>)
// CHECK-DAG: tensor.insert_slice %[[M0]] into %{{.*}}[0, 0] [1, 4] [1, 1] : tensor<4xf32> into tensor<3x4xf32>
// CHECK-DAG: tensor.insert_slice %[[M2]] into %{{.*}}[2, 0] [1, 4] [1, 1] : tensor<4xf32> into tensor<3x4xf32>
// CHECK-DAG: tensor.insert_slice %[[A1]] into %{{.*}}[1, 0, 0] [1, 4, 128] [1, 1, 1] : tensor<4x128xf32> into tensor<3x4x128xf32>
// CHECK: %[[RVH:.*]] = tensor.extract_slice %[[RV]][%[[H]], 0, 0] [1, 128, 128]
// CHECK: %[[MERGED:.*]] = swan.merge_attention %{{.*}}, %{{.*}}, %{{.*}} rotate_back %[[RVH]] : tensor<3x4xf32>, tensor<3x4x128xf32>, tensor<128x128xf32> -> tensor<4x128xf32>
// CHECK: scf.forall.in_parallel
// CHECK-NEXT: tensor.parallel_insert_slice %[[MERGED]] into %[[O]][%[[B]], %[[ROW]], 0] [1, 4, 128] [1, 1, 1]
// CHECK: return %[[RES]]
// CHECK-NOT: swan.decode_attention

// ONE-LABEL: func.func @decode
// ONE-COUNT-2: swan.partial_attention
// ONE-NOT: swan.partial_attention
// ONE: swan.merge_attention {{.*}} : tensor<2x4xf32>, tensor<2x4x128xf32>, tensor<128x128xf32> -> tensor<4x128xf32>
func.func @decode(%q: tensor<1x32x128xf32>, %s: f32,
    %rk: tensor<8x128x128xf32>, %rv: tensor<8x128x128xf32>,
    %kv: tensor<1x8x?x?xf16>, %ki: tensor<1x8x?x?xi8>,
    %vv: tensor<1x8x?x?xf16>, %vi: tensor<1x8x?x?xi8>,
    %bk: tensor<1x8x128x128xf16>, %bv: tensor<1x8x128x128xf16>,
    %sl: tensor<1xi32>, %bl: tensor<1xi32>) -> tensor<1x32x128xf32> {
  %o = swan.decode_attention %q, scale %s
      rotations(%rk, %rv : tensor<8x128x128xf32>)
      sparse_keys(%kv, %ki : tensor<1x8x?x?xf16>, tensor<1x8x?x?xi8>)
      sparse_values(%vv, %vi : tensor<1x8x?x?xf16>, tensor<1x8x?x?xi8>)
      buffer(%bk, %bv : tensor<1x8x128x128xf16>)
      lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x32x128xf32> -> tensor<1x32x128xf32>
  return %o : tensor<1x32x128xf32>
}

// -----

// rotated_output: no rotation back. Dynamic batch, index lengths.

// CHECK-LABEL: func.func @decode_rotated
// CHECK: tensor.dim %{{.*}}, %{{.*}} : tensor<?x8x64xf32>
// CHECK: scf.forall (%{{.*}}, %{{.*}}) in (%{{.*}}, 2)
// CHECK-NOT: arith.index_cast
// CHECK: swan.merge_attention %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}} : tensor<3x4xf32>, tensor<3x4x64xf32> -> tensor<4x64xf32>

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

// -----

// Keys and values in the mask encoding: each sparse block slices whole mask
// rows (8 bytes at D = 64) and keeps the encodings; the buffer block is
// dense.

// CHECK-LABEL: func.func @decode_masked_values
// CHECK: tensor.extract_slice %{{[^ ]+}}[%{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}}, 0] [1, 1, %{{[^ ]+}}, 8] [1, 1, 1, 1] : tensor<1x2x?x8xi8> to tensor<?x8xi8>
// CHECK: swan.partial_attention {{.*}} keys(%{{[^ ]+}} : tensor<?x?xf32>, indices %{{[^ ]+}} : tensor<?x8xi8>) values({{.*}} key_encoding = mask value_encoding = mask
// CHECK: swan.partial_attention {{.*}} values(%{{[^ ]+}} : tensor<?x?xf32>, indices %{{[^ ]+}} : tensor<?x8xi8>) key_encoding = mask value_encoding = mask
// CHECK: swan.partial_attention {{.*}} values(%{{[^ ]+}} : tensor<?x64xf32>) : tensor<4x64xf32>
func.func @decode_masked_values(%q: tensor<1x8x64xf32>, %s: f32,
    %rk: tensor<2x64x64xf32>, %rv: tensor<2x64x64xf32>,
    %kv: tensor<1x2x?x?xf32>, %ki: tensor<1x2x?x8xi8>,
    %vv: tensor<1x2x?x?xf32>, %vm: tensor<1x2x?x8xi8>,
    %bk: tensor<1x2x16x64xf32>, %bv: tensor<1x2x16x64xf32>,
    %sl: tensor<1xindex>, %bl: tensor<1xindex>) -> tensor<1x8x64xf32> {
  %o = swan.decode_attention %q, scale %s
      rotations(%rk, %rv : tensor<2x64x64xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf32>, tensor<1x2x?x8xi8>)
      sparse_values(%vv, %vm : tensor<1x2x?x?xf32>, tensor<1x2x?x8xi8>)
      buffer(%bk, %bv : tensor<1x2x16x64xf32>)
      lengths(%sl, %bl : tensor<1xindex>)
      group_size = 4 key_encoding = mask value_encoding = mask : tensor<1x8x64xf32> -> tensor<1x8x64xf32>
  return %o : tensor<1x8x64xf32>
}

// -----

// SWAN-Q8: each sparse block's partial takes the slice of its tokens'
// scales, [b, h, start:start+length]; the buffer's partial has none.
// ONE-LABEL: func.func @int8_sparse
// ONE-SAME: %[[KS:[^:]+]]: tensor<1x2x?xf32>, %[[VS:[^:]+]]: tensor<1x2x?xf32>
// ONE-DAG: %[[KSL:.*]] = tensor.extract_slice %[[KS]][%{{.*}}, %{{.*}}, %{{.*}}] [1, 1, %{{.*}}] [1, 1, 1] : tensor<1x2x?xf32> to tensor<?xf32>
// ONE-DAG: %[[VSL:.*]] = tensor.extract_slice %[[VS]][%{{.*}}, %{{.*}}, %{{.*}}] [1, 1, %{{.*}}] [1, 1, 1] : tensor<1x2x?xf32> to tensor<?xf32>
// ONE: swan.partial_attention {{.*}} keys(%{{.*}} : tensor<?x?xi8>, indices %{{.*}} : tensor<?x?xi8>, scales %[[KSL]] : tensor<?xf32>) values(%{{.*}} : tensor<?x?xi8>, indices %{{.*}} : tensor<?x?xi8>, scales %[[VSL]] : tensor<?xf32>)
// ONE: swan.partial_attention {{.*}} keys(%{{.*}} : tensor<?x64xf16>) values(%{{.*}} : tensor<?x64xf16>)
func.func @int8_sparse(%q: tensor<1x8x64xf32>, %s: f32, %rk: tensor<2x64x64xf32>,
    %kv: tensor<1x2x?x?xi8>, %ki: tensor<1x2x?x?xi8>, %ks: tensor<1x2x?xf32>, %vs: tensor<1x2x?xf32>,
    %bk: tensor<1x2x?x64xf16>, %sl: tensor<1xi32>) -> tensor<1x8x64xf32> {
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rk : tensor<2x64x64xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>, scales %ks : tensor<1x2x?xf32>)
      sparse_values(%kv, %ki : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>, scales %vs : tensor<1x2x?xf32>)
      buffer(%bk, %bk : tensor<1x2x?x64xf16>) lengths(%sl, %sl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x64xf32> -> tensor<1x8x64xf32>
  return %o : tensor<1x8x64xf32>
}
