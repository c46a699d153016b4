// RUN: swan-opt %s --swan-lower-to-vector="vector-width=16 tile-size=8" -canonicalize -cse --split-input-file | FileCheck %s
// RUN: swan-opt %s --swan-lower-to-vector="vector-width=8" --split-input-file | FileCheck %s --check-prefix=W8
// RUN: not swan-opt %s --swan-lower-to-vector="vector-width=12" --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

// Inputs are read-only views of the caller's buffers; the scaled query and
// the accumulator are [G, D] stack scratch; a winnowed key is scored by
// gathering the query at its indices; a winnowed value is added into the
// accumulator by gather + fma + scatter: no token is ever expanded to D.

// CHECK-LABEL: func.func @partial_sparse
// CHECK-DAG: %[[KV:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<?x?xf16> to memref<?x?xf16, strided<[?, 1], offset: ?>>
// CHECK-DAG: %[[KI:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<?x?xi8> to memref<?x?xi8, strided<[?, 1], offset: ?>>
// CHECK-DAG: %[[VI:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<?x?xi8> to memref<?x?xi8, strided<[?, 1], offset: ?>>
// CHECK-DAG: %[[Q:.*]] = memref.alloca() {alignment = 64 : i64} : memref<2x32xf32>
// CHECK-DAG: %[[ACC:.*]] = memref.alloca() {alignment = 64 : i64} : memref<2x32xf32>
// CHECK-DAG: %[[SCORES:.*]] = memref.alloca() {alignment = 64 : i64} : memref<2x8xf32>
// CHECK-NOT: memref.alloc(
// CHECK: scf.for %[[T0:.*]] = %{{.*}} to %{{.*}} step %c8 {
// Scores of one token: gathers from the rotated query at the key's indices,
// read as unsigned bytes.
// CHECK: scf.for
// CHECK: %[[SK:.*]]:2 = scf.for %[[J:.*]] = {{.*}} step %c16 iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>) {
// CHECK: %[[MASK:.*]] = vector.create_mask %{{.*}} : vector<16xi1>
// CHECK: %[[IDX8:.*]] = vector.maskedload %[[KI]][%{{.*}}, %[[J]]], %[[MASK]]
// CHECK: %[[IDX:.*]] = arith.extui %[[IDX8]] : vector<16xi8> to vector<16xi32>
// CHECK-NOT: arith.extsi
// CHECK: %[[KVALS16:.*]] = vector.maskedload %[[KV]][%{{.*}}, %[[J]]], %[[MASK]]
// CHECK: %[[KVALS:.*]] = arith.extf %[[KVALS16]] : vector<16xf16> to vector<16xf32>
// CHECK: %[[QG:.*]] = vector.gather %[[Q]][%c0, %c0] [%[[IDX]]], %[[MASK]]
// CHECK: vector.fma %[[QG]], %[[KVALS]]
// CHECK: vector.gather %[[Q]][%c1, %c0] [%[[IDX]]], %[[MASK]]
// CHECK: vector.reduction <add>, %[[SK]]#0 : vector<16xf32> into f32
// One online-softmax step per tile and query head.
// CHECK: vector.reduction <maximumf>, %{{.*}} : vector<8xf32> into f32
// CHECK: math.exp %{{.*}} : f32
// CHECK: math.exp %{{.*}} : vector<8xf32>
// CHECK: arith.mulf %{{.*}}, %{{.*}} : vector<16xf32>
// CHECK: vector.store %{{.*}}, %[[ACC]][%c0, %c0]
// Values: gather, fma, scatter on the accumulator, 16 kept entries at a time.
// CHECK: scf.for %[[JV:.*]] = {{.*}} step %c16 {
// CHECK: %[[VIDX8:.*]] = vector.maskedload %[[VI]][%{{.*}}, %[[JV]]]
// CHECK: %[[VIDX:.*]] = arith.extui %[[VIDX8]] : vector<16xi8> to vector<16xi32>
// CHECK: %[[OLD:.*]] = vector.gather %[[ACC]][%c0, %c0] [%[[VIDX]]]
// CHECK: %[[NEW:.*]] = vector.fma %{{.*}}, %{{.*}}, %[[OLD]] : vector<16xf32>
// CHECK: vector.scatter %[[ACC]][%c0, %c0] [%[[VIDX]]], %{{.*}}, %[[NEW]]
// CHECK: vector.scatter %[[ACC]][%c1, %c0]
// Results go into tensor.empty destinations.
// CHECK: tensor.empty() : tensor<2xf32>
// CHECK: vector.transfer_write %{{.*}} : vector<2xf32>, tensor<2xf32>
// CHECK: vector.transfer_write %{{.*}} : vector<32xf32>, tensor<2x32xf32>
// CHECK-NOT: swan.partial_attention

// W8-LABEL: func.func @partial_sparse
// W8: vector.gather {{.*}} : memref<2x32xf32>, vector<8xi32>, vector<8xi1>, vector<8xf32> into vector<8xf32>
// W8: vector.reduction <maximumf>, %{{.*}} : vector<32xf32> into f32

// BAD: error: cannot lower to vectors of 12 lanes
func.func @partial_sparse(%q: tensor<2x32xf32>, %s: f32,
    %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>,
    %vv: tensor<?x?xf16>, %vi: tensor<?x?xi8>)
    -> (tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>)
      values(%vv : tensor<?x?xf16>, indices %vi : tensor<?x?xi8>)
      : tensor<2x32xf32> -> tensor<2xf32>, tensor<2x32xf32>
  return %m, %l, %a : tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>
}

// -----

// Dense buffer tokens: D/16 contiguous loads per token, f32 accumulation.

// CHECK-LABEL: func.func @partial_dense
// CHECK: scf.for {{.*}} step %c8 {
// CHECK: %[[K0:.*]] = vector.load %{{.*}}[%{{.*}}, %c0] : memref<?x32xf16, strided<[?, 1], offset: ?>>, vector<16xf16>
// CHECK: arith.extf %[[K0]] : vector<16xf16> to vector<16xf32>
// CHECK: vector.fma
// CHECK: vector.load %{{.*}}[%{{.*}}, %c16] : memref<?x32xf16, strided<[?, 1], offset: ?>>, vector<16xf16>
// CHECK-NOT: vector.gather
// CHECK-NOT: vector.scatter
// CHECK: return
func.func @partial_dense(%q: tensor<2x32xf32>, %s: f32, %k: tensor<?x32xf16>,
    %v: tensor<?x32xf16>) -> (tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%k : tensor<?x32xf16>) values(%v : tensor<?x32xf16>)
      : tensor<2x32xf32> -> tensor<2xf32>, tensor<2x32xf32>
  return %m, %l, %a : tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>
}

// -----

// Merge: blocks with sum = 0 (or max = -inf) are skipped; R_Vᵀ is applied
// to the G x D result only.

// CHECK-LABEL: func.func @merge
// CHECK: scf.for %[[G:.*]] = %c0 to %c2 step %c1 iter_args
// CHECK: arith.cmpf ogt
// CHECK: arith.maximumf
// CHECK: scf.if %[[LIVE:.*]] {
// CHECK: vector.fma
// CHECK: arith.divf
// CHECK: scf.for %[[I:.*]] = %c0 to %c32 step %c1 {
// CHECK: vector.load %{{.*}}[%[[I]], %c0] : memref<32x32xf32, strided<[?, 1], offset: ?>>, vector<16xf32>
// CHECK: vector.reduction <add>
// CHECK: vector.transfer_write %{{.*}}, %{{.*}}[%[[G]], %c0] {in_bounds = [true]} : vector<16xf32>, tensor<2x32xf32>
func.func @merge(%m: tensor<?x2xf32>, %l: tensor<?x2xf32>,
    %a: tensor<?x2x32xf32>, %r: tensor<32x32xf32>) -> tensor<2x32xf32> {
  %o = swan.merge_attention %m, %l, %a rotate_back %r
      : tensor<?x2xf32>, tensor<?x2x32xf32>, tensor<32x32xf32> -> tensor<2x32xf32>
  return %o : tensor<2x32xf32>
}

// -----

// Rotate: one row at a time, D/16 accumulators, broadcast x_j times row j
// of R; f16 rows are converted once.

// CHECK-LABEL: func.func @rotate
// CHECK: %[[OUT:.*]] = tensor.empty(%{{.*}}) : tensor<?x32xf16>
// CHECK: scf.for %[[ROW:.*]] = {{.*}} iter_args(%[[T:.*]] = %[[OUT]]) -> (tensor<?x32xf16>)
// CHECK: %[[ACC:.*]]:2 = scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>)
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK: vector.broadcast
// CHECK: vector.fma
// CHECK: %[[H:.*]] = arith.truncf %[[ACC]]#0 : vector<16xf32> to vector<16xf16>
// CHECK: vector.transfer_write %[[H]], %[[T]][%[[ROW]], %c0] {in_bounds = [true]}
func.func @rotate(%x: tensor<?x32xf16>, %r: tensor<32x32xf32>) -> tensor<?x32xf16> {
  %y = swan.rotate %x by %r : tensor<?x32xf16>, tensor<32x32xf32> -> tensor<?x32xf16>
  return %y : tensor<?x32xf16>
}

// -----

// Compress: the rotated row stays in a [D] scratch; an exact rank count
// (larger magnitude, or equal at a lower index) selects the k kept entries,
// which vector.compressstore packs in index order. Only the first k lanes
// of each row reach the [n, k] results.

// CHECK-LABEL: func.func @compress
// CHECK-SAME: %[[K:[^:]+]]: index)
// CHECK-DAG: %[[VALS:.*]] = tensor.empty(%{{.*}}, %[[K]]) : tensor<?x?xf16>
// CHECK-DAG: %[[IDXS:.*]] = tensor.empty(%{{.*}}, %[[K]]) : tensor<?x?xi8>
// CHECK-DAG: %[[ROWBUF:.*]] = memref.alloca() {alignment = 64 : i64} : memref<32xf32>
// CHECK: scf.for
// CHECK: vector.store %{{.*}}, %[[ROWBUF]][%c0]
// CHECK: math.absf %{{.*}} : vector<16xf32>
// CHECK: %[[RANK:.*]]:2 = scf.for {{.*}} -> (vector<16xi32>, vector<16xi32>)
// CHECK: arith.cmpf ogt
// CHECK: arith.cmpf oeq
// CHECK: arith.cmpi ult
// CHECK: %[[K32:.*]] = arith.index_cast %[[K]] : index to i32
// CHECK: %[[KB:.*]] = vector.broadcast %[[K32]]
// CHECK: %[[KEEP:.*]] = arith.cmpi slt, %[[RANK]]#0, %[[KB]] : vector<16xi32>
// CHECK: vector.compressstore %{{.*}}[%c0], %[[KEEP]], %{{.*}} : memref<32xf16>, vector<16xi1>, vector<16xf16>
// CHECK: vector.compressstore %{{.*}}[%c0], %[[KEEP]], %{{.*}} : memref<32xi8>, vector<16xi1>, vector<16xi8>
// CHECK: vector.transfer_write %{{.*}} : vector<32xf16>, tensor<?x?xf16>
// CHECK: vector.transfer_write %{{.*}} : vector<32xi8>, tensor<?x?xi8>
func.func @compress(%x: tensor<?x32xf32>, %r: tensor<32x32xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x?xi8>) {
  %v, %i = swan.compress %x by %r keep %k
      : tensor<?x32xf32>, tensor<32x32xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf16>, tensor<?x?xi8>
}

// -----

// Winnow of a 256-wide row: i8 indices 128..255 come from unsigned
// truncation of the lane numbers.

// CHECK-LABEL: func.func @winnow_256
// CHECK: arith.constant dense<[240, 241, 242, 243, 244, 245, 246, 247, 248, 249, 250, 251, 252, 253, 254, 255]> : vector<16xi32>
// CHECK: vector.compressstore {{.*}} : memref<256xi8>, vector<16xi1>, vector<16xi8>
func.func @winnow_256(%x: tensor<?x256xf32>, %k: index)
    -> (tensor<?x?xf32>, tensor<?x?xi8>) {
  %v, %i = swan.winnow %x keep %k : tensor<?x256xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf32>, tensor<?x?xi8>
}
