// RUN: swan-opt %s --swan-lower-to-vector="vector-width=16 tile-size=8" -canonicalize -cse --split-input-file | FileCheck %s
// RUN: swan-opt %s --swan-lower-to-vector="vector-width=8" --split-input-file | FileCheck %s --check-prefix=W8
// RUN: not swan-opt %s --swan-lower-to-vector="vector-width=12" --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: swan-opt %s --swan-lower-to-vector="vector-width=16 expand-winnowed=true" -canonicalize -cse --split-input-file | FileCheck %s --check-prefix=EXPAND

// Winnowed keys and values: the scaled query and the accumulator are [D, G]
// stack scratch (transposed), so that each kept entry j of a token costs a
// G-wide row. Scores pack 16 / G entries into one 16-lane FMA: their query
// rows side by side times each value repeated G times (two packs per step,
// on two chains); values go acc[idx_j, :] += val_j · p. Indices are read as
// unsigned bytes. No token is ever expanded to D, and no gather or scatter
// is needed.

// CHECK-LABEL: func.func @partial_sparse
// CHECK-DAG: %[[QT:.*]] = memref.alloca() {alignment = 64 : i64} : memref<32x2xf32>
// CHECK-DAG: %[[ACC:.*]] = memref.alloca() {alignment = 64 : i64} : memref<32x2xf32>
// CHECK-DAG: %[[W:.*]] = memref.alloca() {alignment = 64 : i64} : memref<16xf32>
// CHECK-NOT: memref.alloc(
// CHECK: %[[TILES:.*]] = arith.ceildivui %{{.*}}, %c8 : index
// CHECK: %[[STATE:.*]]:2 = scf.for %[[T0:.*]] = %{{.*}} to %[[TILES]] step %c1 iter_args(%[[M:.*]] = %{{.*}}, %[[L:.*]] = %{{.*}}) -> (vector<2xf32>, vector<2xf32>)
// CHECK: scf.for
// CHECK: scf.for %[[J:.*]] = %{{.*}} step %c16 iter_args(%{{.*}}, %{{.*}}) -> (vector<16xf32>, vector<16xf32>)
// CHECK: %[[I8:.*]] = tensor.extract %{{.*}} : tensor<?x?xi8>
// CHECK: %[[I:.*]] = arith.index_castui %[[I8]] : i8 to index
// CHECK-NOT: arith.index_cast %
// CHECK: %[[QROW:.*]] = vector.load %[[QT]][%[[I]], %c0] : memref<32x2xf32>, vector<2xf32>
// CHECK: vector.shuffle %[[QROW]], %{{.*}} [0, 1, 2, 3] : vector<2xf32>, vector<2xf32>
// CHECK: %[[ROWS:.*]] = vector.shuffle %{{.*}}, %{{.*}} [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] : vector<8xf32>, vector<8xf32>
// CHECK: %[[V8:.*]] = vector.load %{{.*}}[%{{.*}}, %[[J]]] : memref<?x?xf16, strided<[?, 1], offset: ?>>, vector<8xf16>
// CHECK: %[[V16:.*]] = vector.shuffle %[[V8]], %[[V8]] [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
// CHECK: %[[V:.*]] = arith.extf %[[V16]] : vector<16xf16> to vector<16xf32>
// CHECK: vector.fma %[[V]], %[[ROWS]], %{{.*}} : vector<16xf32>
// CHECK: vector.extract_strided_slice %{{.*}} {offsets = [14], sizes = [2], strides = [1]} : vector<16xf32> to vector<2xf32>
// The remaining k mod 16 entries one at a time: the value broadcast in
// f16, then converted.
// CHECK: scf.for {{.*}} step %c1 iter_args
// CHECK: %[[R8:.*]] = tensor.extract %{{.*}} : tensor<?x?xi8>
// CHECK: arith.index_castui %[[R8]] : i8 to index
// CHECK: %[[S16:.*]] = tensor.extract %{{.*}} : tensor<?x?xf16>
// CHECK: %[[SB16:.*]] = vector.broadcast %[[S16]] : f16 to vector<2xf16>
// CHECK: %[[SB:.*]] = arith.extf %[[SB16]] : vector<2xf16> to vector<2xf32>
// CHECK: vector.fma %[[SB]]
// CHECK: vector.store %{{.*}}, %[[W]]
// One online-softmax step per tile: the tile's weights in one flat exp,
// one rescale of the accumulator.
// CHECK: %[[NEWMAX:.*]] = arith.maximumf %[[M]], %{{.*}} : vector<2xf32>
// CHECK: math.exp %{{.*}} : vector<2xf32>
// CHECK: vector.broadcast %[[NEWMAX]] : vector<2xf32> to vector<8x2xf32>
// CHECK: vector.shape_cast %{{.*}} : vector<8x2xf32> to vector<16xf32>
// CHECK: math.exp %{{.*}} : vector<16xf32>
// CHECK: vector.store %{{.*}}, %[[ACC]]
// Values, 16 / G entries per FMA: their accumulator rows side by side,
// the weights tiled, each row stored back; then the rest one by one.
// CHECK: %[[P:.*]] = vector.load %[[W]][%{{.*}}] : memref<16xf32>, vector<2xf32>
// CHECK: %[[PT:.*]] = vector.shuffle %[[P]], %[[P]] [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1]
// CHECK: scf.for {{.*}} step %c8 {
// CHECK: %[[VI:.*]] = arith.index_castui %{{.*}} : i8 to index
// CHECK: %[[ROW0:.*]] = vector.load %[[ACC]][%[[VI]], %c0] : memref<32x2xf32>, vector<2xf32>
// CHECK: %[[ROWS:.*]] = vector.shuffle %{{.*}}, %{{.*}} [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] : vector<8xf32>, vector<8xf32>
// CHECK: %[[NEW:.*]] = vector.fma %{{.*}}, %[[PT]], %[[ROWS]] : vector<16xf32>
// CHECK: %[[NEW0:.*]] = vector.extract_strided_slice %[[NEW]] {offsets = [0], sizes = [2], strides = [1]}
// CHECK: vector.store %[[NEW0]], %[[ACC]][%[[VI]], %c0] : memref<32x2xf32>, vector<2xf32>
// CHECK: scf.for {{.*}} step %c1 {
// CHECK: %[[OLD:.*]] = vector.load %[[ACC]]
// CHECK: %[[ONE:.*]] = vector.fma %{{.*}}, %[[P]], %[[OLD]] : vector<2xf32>
// CHECK: vector.store %[[ONE]], %[[ACC]]
// CHECK-NOT: vector.gather
// CHECK-NOT: vector.scatter
// Results go into tensor.empty destinations; the accumulator leaves
// transposed back to [G, D].
// CHECK: vector.transfer_write %[[STATE]]#0, %{{.*}} : vector<2xf32>, tensor<2xf32>
// CHECK: vector.transfer_write %[[STATE]]#1, %{{.*}} : vector<2xf32>, tensor<2xf32>
// CHECK: vector.transfer_write %{{.*}} : vector<32xf32>, tensor<2x32xf32>
// CHECK-NOT: swan.partial_attention

// W8-LABEL: func.func @partial_sparse
// W8-NOT: vector.gather

// With expand-winnowed, a token becomes D/16 dense chunks in registers:
// vp2intersect of each chunk's positions with 16 indices (padded with -1)
// gives the chunk's mask, and an expanding load of 32 f16 places the values.
// EXPAND-LABEL: func.func @partial_sparse
// EXPAND: %[[MASKS:.*]]:2 = scf.for {{.*}} step %c16 iter_args({{.*}}) -> (vector<16xi1>, vector<16xi1>)
// EXPAND: %[[K1:.*]], %{{.*}} = x86vector.avx512.vp2intersect %{{.*}}, %{{.*}} : vector<16xi32>
// EXPAND: arith.ori %{{.*}}, %[[K1]] : vector<16xi1>
// EXPAND: %[[M32:.*]] = vector.shuffle %[[MASKS]]#0, %[[MASKS]]#1 [0, 1, {{.*}}, 31] : vector<16xi1>, vector<16xi1>
// EXPAND: %[[H:.*]] = vector.expandload %{{.*}}[%{{.*}}, %c0], %[[M32]], %{{.*}} : memref<?x?xf16, strided<[?, 1], offset: ?>>, vector<32xi1>, vector<32xf16> into vector<32xf16>
// EXPAND: %[[F:.*]] = arith.extf %[[H]] : vector<32xf16> to vector<32xf32>
// EXPAND: vector.extract_strided_slice %[[F]] {offsets = [16], sizes = [16], strides = [1]}
// EXPAND: vector.fma
// EXPAND: x86vector.avx512.vp2intersect
// EXPAND: vector.expandload
// EXPAND-NOT: vector.gather
// EXPAND-NOT: vector.scatter
// EXPAND: return

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

// Winnowed keys with dense values: [G, D] state, the key's indices gather
// the scaled query, 16 kept entries at a time; the values need no gather.

// CHECK-LABEL: func.func @partial_mixed
// CHECK-DAG: %[[Q:.*]] = memref.alloca() {alignment = 64 : i64} : memref<2x32xf32>
// CHECK-DAG: %[[KI:.*]] = bufferization.to_buffer %{{.*}} read_only : tensor<?x?xi8> to memref<?x?xi8, strided<[?, 1], offset: ?>>
// CHECK: scf.for %{{.*}} step %c8 {
// CHECK: %[[SK:.*]]:2 = scf.for %[[J:.*]] = {{.*}} step %c16 iter_args({{.*}}) -> (vector<16xf32>, vector<16xf32>) {
// CHECK: %[[MASK:.*]] = vector.create_mask %{{.*}} : vector<16xi1>
// CHECK: %[[IDX8:.*]] = vector.maskedload %[[KI]][%{{.*}}, %[[J]]], %[[MASK]]
// CHECK: %[[IDX:.*]] = arith.extui %[[IDX8]] : vector<16xi8> to vector<16xi32>
// CHECK: %[[QG:.*]] = vector.gather %[[Q]][%c0, %c0] [%[[IDX]]], %[[MASK]]
// CHECK: vector.fma %[[QG]]
// CHECK: vector.gather %[[Q]][%c1, %c0] [%[[IDX]]], %[[MASK]]
// CHECK: vector.reduction <add>, %[[SK]]#0 : vector<16xf32> into f32
// CHECK: vector.reduction <maximumf>, %{{.*}} : vector<8xf32> into f32
// CHECK-NOT: vector.scatter
// CHECK: return

// W8-LABEL: func.func @partial_mixed
// W8: vector.gather {{.*}} : memref<2x32xf32>, vector<8xi32>, vector<8xi1>, vector<8xf32> into vector<8xf32>
func.func @partial_mixed(%q: tensor<2x32xf32>, %s: f32,
    %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %v: tensor<?x32xf16>)
    -> (tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>)
      values(%v : tensor<?x32xf16>)
      : tensor<2x32xf32> -> tensor<2xf32>, tensor<2x32xf32>
  return %m, %l, %a : tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>
}

// -----

// Dense keys with winnowed values: gather + fma + scatter into the [G, D]
// accumulator; a token's indices are distinct, so lanes never collide.

// CHECK-LABEL: func.func @partial_dense_keys
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<2x32xf32>
// CHECK: %[[ACC:.*]] = memref.alloca() {alignment = 64 : i64} : memref<2x32xf32>
// CHECK: scf.for %[[JV:.*]] = {{.*}} step %c16 {
// CHECK: %[[VIDX:.*]] = arith.extui %{{.*}} : vector<16xi8> to vector<16xi32>
// CHECK: %[[OLD:.*]] = vector.gather %[[ACC]][%c0, %c0] [%[[VIDX]]]
// CHECK: %[[NEW:.*]] = vector.fma %{{.*}}, %{{.*}}, %[[OLD]] : vector<16xf32>
// CHECK: vector.scatter %[[ACC]][%c0, %c0] [%[[VIDX]]], %{{.*}}, %[[NEW]]
// CHECK: vector.scatter %[[ACC]][%c1, %c0]
func.func @partial_dense_keys(%q: tensor<2x32xf32>, %s: f32,
    %k: tensor<?x32xf32>, %vv: tensor<?x?xf32>, %vi: tensor<?x?xi8>)
    -> (tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%k : tensor<?x32xf32>)
      values(%vv : tensor<?x?xf32>, indices %vi : tensor<?x?xi8>)
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

// Dense values chunk-major with 8-lane vectors: G = 4 x 2 chunks fill the
// 8 accumulator registers, so D = 64 takes four passes over the tile, one
// scf.for over the passes around one copy of the token loop.

// W8-LABEL: func.func @partial_dense_in_passes
// W8: scf.for %[[PASS:[^ ]+]] = %{{[^ ]+}} to %c8{{[^ ]*}} step %c2{{[^ ]*}} {
// W8: scf.for {{.*}} -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// W8: vector.load %{{[^[]+}}[%{{[^,]+}}, %{{[^]]+}}] : memref<?x64xf16, strided<[?, 1], offset: ?>>, vector<8xf16>
// W8-NOT: -> (vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>, vector<8xf32>)
// W8: return
func.func @partial_dense_in_passes(%q: tensor<4x64xf32>, %s: f32, %k: tensor<?x64xf16>,
    %v: tensor<?x64xf16>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4x64xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%k : tensor<?x64xf16>) values(%v : tensor<?x64xf16>)
      : tensor<4x64xf32> -> tensor<4xf32>, tensor<4x64xf32>
  return %m, %l, %a : tensor<4xf32>, tensor<4xf32>, tensor<4x64xf32>
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

// Rotate: rows four at a time, so that each row of R is loaded once per
// block (R does not fit in L1 at D = 128), then the remaining rows one by
// one; x_j is broadcast and multiplied by row j of R, f16 rows converted
// once. Chunks gather in a [4, D] scratch and each row is written whole.

// CHECK-LABEL: func.func @rotate
// CHECK: %[[OUT:.*]] = tensor.empty(%{{.*}}) : tensor<?x32xf16>
// CHECK: %[[ROWS:.*]] = memref.alloca() {alignment = 64 : i64} : memref<4x32xf32>
// CHECK: %[[BLOCKS:.*]] = scf.for %[[FIRST:.*]] = %c0 to %{{.*}} step %c4 iter_args(%{{.*}} = %[[OUT]]) -> (tensor<?x32xf16>)
// CHECK: %[[ACC4:.*]]:8 = scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>, vector<16xf32>)
// CHECK: %[[R0:.*]] = vector.load %{{.*}}[%{{.*}}, %c0] : memref<32x32xf32, strided<[?, 1], offset: ?>>, vector<16xf32>
// CHECK-COUNT-4: vector.fma %{{.*}}, %[[R0]], %{{.*}} : vector<16xf32>
// CHECK: scf.for %[[ROW:.*]] = {{.*}} iter_args(%[[T:.*]] = %[[BLOCKS]]) -> (tensor<?x32xf16>)
// CHECK: %[[ACC:.*]]:2 = scf.for {{.*}} -> (vector<16xf32>, vector<16xf32>)
// CHECK: arith.extf %{{.*}} : f16 to f32
// CHECK: vector.broadcast
// CHECK: vector.fma
// CHECK: vector.store %[[ACC]]#0, %[[ROWS]]
// CHECK: vector.store %[[ACC]]#1, %[[ROWS]]
// CHECK: %[[ROW32:.*]] = vector.load %[[ROWS]][%{{.*}}, %c0] : memref<4x32xf32>, vector<32xf32>
// CHECK: %[[H:.*]] = arith.truncf %[[ROW32]] : vector<32xf32> to vector<32xf16>
// CHECK: vector.transfer_write %[[H]], %[[T]][%{{.*}}, %c0] {in_bounds = [true]}
func.func @rotate(%x: tensor<?x32xf16>, %r: tensor<32x32xf32>) -> tensor<?x32xf16> {
  %y = swan.rotate %x by %r : tensor<?x32xf16>, tensor<32x32xf32> -> tensor<?x32xf16>
  return %y : tensor<?x32xf16>
}

// -----

// Compress: four rotated rows stay in a [4, D] scratch (a partial last
// block is rotated row by row), winnowed by one loop over them (one copy
// of the winnowing code). A bitwise search over the bits of |x| finds the
// k-th largest magnitude T (31 steps, each a popcount of compare masks), a
// second one over positions picks the first tied entries in index order;
// a loop over the set bits of the keep mask (64 positions per word) packs
// the kept entries in index order into scratch, which reaches the [n, k]
// results a piece at a time, the last piece masked.

// CHECK-LABEL: func.func @compress
// CHECK-SAME: %[[K:[^:]+]]: index)
// CHECK-DAG: %[[VALS:.*]] = tensor.empty(%{{.*}}, %[[K]]) : tensor<?x?xf16>
// CHECK-DAG: %[[IDXS:.*]] = tensor.empty(%{{.*}}, %[[K]]) : tensor<?x?xi8>
// CHECK-DAG: %[[ROWBUF:.*]] = memref.alloca() {alignment = 64 : i64} : memref<4x32xf32>
// CHECK-DAG: %[[KEPTV:.*]] = memref.alloca() {alignment = 64 : i64} : memref<48xf16>
// CHECK-DAG: %[[KEPTI:.*]] = memref.alloca() {alignment = 64 : i64} : memref<48xi8>
// CHECK: scf.for
// CHECK: %[[COUNT:.*]] = arith.minsi {{.*}} : index
// CHECK: %[[FULL:.*]] = arith.cmpi eq, %[[COUNT]], %c4 : index
// CHECK: scf.if %[[FULL]]
// CHECK: vector.store %{{.*}}, %[[ROWBUF]][%c0, %c0]
// CHECK: } else {
// CHECK: scf.for %{{.*}} = %c0 to %[[COUNT]] step %c1
// CHECK: scf.for %[[R:.*]] = %c0 to %[[COUNT]] step %c1
// CHECK: vector.load %[[ROWBUF]][%[[R]], %c0]
// CHECK: %[[ABS:.*]] = math.absf %{{.*}} : vector<16xf32>
// CHECK: %[[BITS:.*]] = arith.bitcast %[[ABS]] : vector<16xf32> to vector<16xi32>
// CHECK: %[[K32:.*]] = arith.index_cast %[[K]] : index to i32
// CHECK: %[[T:.*]] = scf.for %{{.*}} = %c0 to %c31 step %c1 iter_args(%{{.*}} = %{{.*}}) -> (i32)
// CHECK: arith.cmpi sge, %[[BITS]]
// CHECK: vector.bitcast %{{.*}} : vector<16xi1> to vector<1xi16>
// CHECK: math.ctpop %{{.*}} : i16
// CHECK: arith.cmpi sge, %{{.*}}, %[[K32]] : i32
// CHECK: %[[TV:.*]] = vector.broadcast %[[T]] : i32 to vector<16xi32>
// CHECK: %[[ABOVE:.*]] = arith.cmpi sgt, %[[BITS]], %[[TV]] : vector<16xi32>
// CHECK: arith.cmpi eq, %[[BITS]], %[[TV]] : vector<16xi32>
// CHECK: scf.for %{{.*}} = %c0 to %c5 step %c1 iter_args
// CHECK: %[[KEEP:.*]] = arith.ori %[[ABOVE]], %{{.*}} : vector<16xi1>
// CHECK: vector.bitcast %[[KEEP]] : vector<16xi1> to vector<1xi16>
// CHECK: %[[WORD:.*]] = arith.ori %{{.*}} : i64
// CHECK: %[[KEPT:.*]] = math.ctpop %[[WORD]] : i64
// CHECK: %[[STEPS:.*]] = arith.index_castui %[[KEPT]] : i64 to index
// CHECK: scf.for %[[J:.*]] = %c0 to %[[STEPS]] step %c1 iter_args(%[[LEFT:.*]] = %[[WORD]]) -> (i64)
// CHECK: %[[LOW:.*]] = math.cttz %[[LEFT]] : i64
// CHECK: memref.store %{{.*}}, %[[KEPTV]][%[[J]]] : memref<48xf16>
// CHECK: memref.store %{{.*}}, %[[KEPTI]][%[[J]]] : memref<48xi8>
// CHECK: vector.load %[[KEPTV]][%{{.*}}] : memref<48xf16>, vector<16xf16>
// CHECK: vector.transfer_write %{{.*}} {in_bounds = [true]} : vector<16xf16>, tensor<?x?xf16>
// CHECK: vector.transfer_write %{{.*}} : vector<16xf16>, tensor<?x?xf16>
// CHECK: vector.transfer_write %{{.*}} {in_bounds = [true]} : vector<16xi8>, tensor<?x?xi8>
// CHECK: vector.transfer_write %{{.*}} : vector<16xi8>, tensor<?x?xi8>
// CHECK-NOT: vector.compressstore
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
// CHECK: memref.alloca() {alignment = 64 : i64} : memref<272xi8>
// CHECK: arith.index_castui %{{.*}} : index to i8
func.func @winnow_256(%x: tensor<?x256xf32>, %k: index)
    -> (tensor<?x?xf32>, tensor<?x?xi8>) {
  %v, %i = swan.winnow %x keep %k : tensor<?x256xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf32>, tensor<?x?xi8>
}

// -----

// Winnow in the mask encoding: each 16-lane chunk's kept lanes are stored
// as two bytes of the row's mask; the values are packed as before, and no
// index is stored.

// CHECK-LABEL: func.func @winnow_mask
// CHECK-DAG: %[[KEPTV:.*]] = memref.alloca() {alignment = 64 : i64} : memref<48xf16>
// CHECK-DAG: %[[MASKS:.*]] = memref.alloca() {alignment = 64 : i64} : memref<4xi8>
// CHECK: %[[KEEP0:.*]] = arith.ori %{{.*}} : vector<16xi1>
// CHECK: %[[BYTES0:.*]] = vector.bitcast %[[KEEP0]] : vector<16xi1> to vector<2xi8>
// CHECK: vector.store %[[BYTES0]], %[[MASKS]][%c0] : memref<4xi8>, vector<2xi8>
// CHECK: vector.store %{{.*}}, %[[MASKS]][%c2] : memref<4xi8>, vector<2xi8>
// CHECK: math.cttz
// CHECK-NOT: memref.store {{.*}}xi8>
// CHECK: memref.store %{{.*}}, %[[KEPTV]][%{{.*}}] : memref<48xf16>
// CHECK-NOT: memref.store {{.*}}xi8>
// CHECK: vector.transfer_write %{{.*}} {in_bounds = [true]} : vector<4xi8>, tensor<?x4xi8>
// CHECK-NOT: memref<32xi8>
func.func @winnow_mask(%x: tensor<?x32xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x4xi8>) {
  %v, %m = swan.winnow %x keep %k encoding = mask : tensor<?x32xf32> -> tensor<?x?xf16>, tensor<?x4xi8>
  return %v, %m : tensor<?x?xf16>, tensor<?x4xi8>
}

// -----

// Values in the mask encoding: the accumulator is [G, D] scratch whose
// rows stay in registers (loop-carried) across the tile's tokens, as many
// 32-dimension chunks per pass as 16 registers hold (here all of D: one
// pass). Each chunk's values land in place with one expanding load at the
// offset the popcounts of the earlier chunks give, and p_g · v is one FMA
// per query head and chunk. Keys stay winnowed by indices. Every expanding
// load promises swan.readable_tail = 16 (it may read that far past its
// row): the block's last rows, which 16 bytes of rows do not follow, are
// copied into stack scratch with room after each row ([8, D + 8] f16) and
// form tiles of their own, whose loads read the copy (one memref selected
// per tile, one copy of the tile's code).

// CHECK-LABEL: func.func @partial_masked_values
// CHECK: %[[PADDED:.*]] = memref.alloca() {alignment = 64 : i64} : memref<8x72xf16>
// CHECK: memref.store %{{.*}}, %[[PADDED]]
// CHECK: %[[COPY:.*]] = memref.subview %[[PADDED]][0, 0] [8, %{{.*}}] [1, 1] : memref<8x72xf16> to memref<8x?xf16, strided<[72, 1]>>
// CHECK: %[[COPYD:.*]] = memref.cast %[[COPY]] : memref<8x?xf16, strided<[72, 1]>> to memref<?x?xf16, strided<[?, 1], offset: ?>>
// CHECK-DAG: %[[ACC:.*]] = memref.alloca() {alignment = 64 : i64} : memref<2x64xf32>
// CHECK: %[[INPLACE:.*]] = arith.ceildivui %{{.*}}, %c8 : index
// CHECK: scf.for %[[TILE:.*]] = %c0 to %{{.*}} step %c1 iter_args
// CHECK: %[[FROMCOPY:.*]] = arith.cmpi uge, %[[TILE]], %[[INPLACE]] : index
// CHECK: %[[ROWS:.*]] = arith.select %[[FROMCOPY]], %[[COPYD]], %{{.*}} : memref<?x?xf16, strided<[?, 1], offset: ?>>
// CHECK: vector.load %[[ACC]][%c0, %c0] : memref<2x64xf32>, vector<32xf32>
// CHECK: vector.load %[[ACC]][%c1, %c32] : memref<2x64xf32>, vector<32xf32>
// CHECK: scf.for {{.*}} iter_args(%[[A0:[^ ]+]] = %{{[^,]+}}, %[[A1:[^ ]+]] = %{{[^,]+}}, %[[A2:[^ ]+]] = %{{[^,]+}}, %[[A3:[^ ]+]] = %{{[^)]+}}) -> (vector<32xf32>, vector<32xf32>, vector<32xf32>, vector<32xf32>)
// CHECK: %[[BYTES:.*]] = vector.load %{{[^[]+}}[%{{[^,]+}}, %c0] : memref<?x8xi8, strided<[?, 1], offset: ?>>, vector<4xi8>
// CHECK: %[[MASK:.*]] = vector.bitcast %[[BYTES]] : vector<4xi8> to vector<32xi1>
// CHECK: %[[V0:.*]] = vector.expandload %[[ROWS]][%{{[^,]+}}, %c0], %[[MASK]], %{{[^ ]+}} {swan.readable_tail = 16 : i64} : memref<?x?xf16, strided<[?, 1], offset: ?>>, vector<32xi1>, vector<32xf16> into vector<32xf16>
// CHECK: %[[W0:.*]] = arith.extf %[[V0]] : vector<32xf16> to vector<32xf32>
// CHECK: %[[COUNT:.*]] = math.ctpop %{{.*}} : i32
// CHECK: %[[START:.*]] = arith.index_castui %[[COUNT]] : i32 to index
// CHECK: vector.load %{{[^[]+}}[%{{[^,]+}}, %c4] : memref<?x8xi8, strided<[?, 1], offset: ?>>, vector<4xi8>
// CHECK: %[[V1:.*]] = vector.expandload %{{[^[]+}}[%{{[^,]+}}, %[[START]]]
// CHECK: %[[W1:.*]] = arith.extf %[[V1]]
// CHECK: vector.fma %{{[^,]+}}, %[[W0]], %[[A0]] : vector<32xf32>
// CHECK: vector.fma %{{[^,]+}}, %[[W1]], %[[A1]] : vector<32xf32>
// CHECK: vector.fma %{{[^,]+}}, %[[W0]], %[[A2]] : vector<32xf32>
// CHECK: vector.fma %{{[^,]+}}, %[[W1]], %[[A3]] : vector<32xf32>
// CHECK-NOT: vector.expandload
// CHECK: vector.store %{{.*}}, %[[ACC]][%c1, %c32] : memref<2x64xf32>, vector<32xf32>
// CHECK-NOT: vector.gather
// CHECK-NOT: vector.scatter
// CHECK: return
func.func @partial_masked_values(%q: tensor<2x64xf32>, %s: f32,
    %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x?xf16>, %vm: tensor<?x8xi8>)
    -> (tensor<2xf32>, tensor<2xf32>, tensor<2x64xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>)
      values(%vv : tensor<?x?xf16>, indices %vm : tensor<?x8xi8>) value_encoding = mask
      : tensor<2x64xf32> -> tensor<2xf32>, tensor<2x64xf32>
  return %m, %l, %a : tensor<2xf32>, tensor<2xf32>, tensor<2x64xf32>
}

// -----

// With G = 8 one chunk fills the 16 registers: one pass per chunk, the
// passes a loop (one copy of a pass's code), and each token's next value
// offset kept in scratch between passes (zero before the first).

// CHECK-LABEL: func.func @partial_masked_values_in_passes
// CHECK-DAG: %[[STARTS:.*]] = memref.alloca() {alignment = 64 : i64} : memref<8xindex>
// CHECK: memref.store %c0, %[[STARTS]]
// CHECK: scf.for %[[CHUNK:.*]] = %c0 to %c2 step %c1 {
// CHECK: scf.for {{.*}} -> (vector<32xf32>, vector<32xf32>, vector<32xf32>, vector<32xf32>, vector<32xf32>, vector<32xf32>, vector<32xf32>, vector<32xf32>)
// CHECK: %[[START:.*]] = memref.load %[[STARTS]]
// CHECK: vector.expandload %{{[^[]+}}[%{{[^,]+}}, %[[START]]]
// CHECK: memref.store %{{.*}}, %[[STARTS]]
// CHECK-NOT: vector.expandload
// CHECK: return
func.func @partial_masked_values_in_passes(%q: tensor<8x64xf32>, %s: f32,
    %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x?xf16>, %vm: tensor<?x8xi8>)
    -> (tensor<8xf32>, tensor<8xf32>, tensor<8x64xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>)
      values(%vv : tensor<?x?xf16>, indices %vm : tensor<?x8xi8>) value_encoding = mask
      : tensor<8x64xf32> -> tensor<8xf32>, tensor<8x64xf32>
  return %m, %l, %a : tensor<8xf32>, tensor<8xf32>, tensor<8x64xf32>
}

// -----

// SWAN-Q8 compress: s = max|x| / 127 from the row's largest magnitude (its
// bits, as the searches read them), each kept entry round(x / s) to nearest
// even, clamped and narrowed to i8 (a zero row divides by nothing), and one
// scale per row inserted into the scales result.
// CHECK-LABEL: func.func @compress_q8
// CHECK: %[[BITS:.*]] = vector.reduction <maxsi>, %{{.*}} : vector<16xi32> into i32
// CHECK: %[[MAX:.*]] = arith.bitcast %[[BITS]] : i32 to f32
// CHECK: %[[S:.*]] = arith.divf %[[MAX]], %{{.*}} : f32
// CHECK: %[[ZERO:.*]] = arith.cmpf oeq, %[[S]], %{{.*}} : f32
// CHECK: %[[Q:.*]] = arith.divf %{{.*}}, %[[S]] : f32
// CHECK: %[[SAFE:.*]] = arith.select %[[ZERO]], %{{.*}}, %[[Q]] : f32
// CHECK: %[[R:.*]] = math.roundeven %[[SAFE]] : f32
// CHECK: %[[LOW:.*]] = arith.maximumf %[[R]], %{{.*}} : f32
// CHECK: %[[CLAMPED:.*]] = arith.minimumf %[[LOW]], %{{.*}} : f32
// CHECK: arith.fptosi %[[CLAMPED]] : f32 to i8
// CHECK: tensor.insert %[[S]] into %{{.*}} : tensor<?xf32>
func.func @compress_q8(%x: tensor<?x32xf32>, %r: tensor<32x32xf32>, %k: index)
    -> (tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>) {
  %v, %i, %s = swan.compress %x by %r keep %k
      : tensor<?x32xf32>, tensor<32x32xf32> -> tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>
  return %v, %i, %s : tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>
}

// -----

// SWAN-Q8 partial attention: int8 entries are widened in registers
// (sitofp), a key's scale multiplies its G scores before the softmax, and a
// value's scale the G weights that meet its entries (the sum keeps the
// unscaled weights). Only the [D, G] query and accumulator and the tile's
// weights live in scratch: no dequantised row is ever stored.
// CHECK-LABEL: func.func @partial_q8
// CHECK-SAME: %[[KS:[^:]+]]: tensor<?xf32>, %{{[^:]+}}: tensor<?x?xi8>, %{{[^:]+}}: tensor<?x?xi8>, %[[VS:[^:]+]]: tensor<?xf32>)
// CHECK-COUNT-3: memref.alloca() {alignment = 64 : i64} : memref<{{32x2|16}}xf32>
// CHECK-NOT: memref.alloca
// CHECK: arith.sitofp %{{.*}} : vector<2xi8> to vector<2xf32>
// CHECK: %[[KSCALE:.*]] = tensor.extract %[[KS]][%{{.*}}] : tensor<?xf32>
// CHECK: %[[KSPLAT:.*]] = vector.broadcast %[[KSCALE]] : f32 to vector<2xf32>
// CHECK: %[[SCORES:.*]] = arith.mulf %{{.*}}, %[[KSPLAT]] : vector<2xf32>
// CHECK: vector.store %[[SCORES]]
// CHECK: math.exp
// CHECK: %[[P:.*]] = vector.load %{{.*}}[%{{.*}}] : memref<16xf32>, vector<2xf32>
// CHECK: %[[VSCALE:.*]] = tensor.extract %[[VS]][%{{.*}}] : tensor<?xf32>
// CHECK: %[[VSPLAT:.*]] = vector.broadcast %[[VSCALE]] : f32 to vector<2xf32>
// CHECK: %[[W:.*]] = arith.mulf %[[P]], %[[VSPLAT]] : vector<2xf32>
// CHECK: vector.shuffle %[[W]], %[[W]]
// CHECK: arith.sitofp %{{.*}} : vector<16xi8> to vector<16xf32>
// CHECK: arith.addf %{{.*}}, %[[P]] : vector<2xf32>
// CHECK-NOT: memref.alloca() {{.*}} : memref<?x
func.func @partial_q8(%q: tensor<2x32xf32>, %s: f32,
    %kv: tensor<?x?xi8>, %ki: tensor<?x?xi8>, %ks: tensor<?xf32>,
    %vv: tensor<?x?xi8>, %vi: tensor<?x?xi8>, %vs: tensor<?xf32>)
    -> (tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%kv : tensor<?x?xi8>, indices %ki : tensor<?x?xi8>, scales %ks : tensor<?xf32>)
      values(%vv : tensor<?x?xi8>, indices %vi : tensor<?x?xi8>, scales %vs : tensor<?xf32>)
      : tensor<2x32xf32> -> tensor<2xf32>, tensor<2x32xf32>
  return %m, %l, %a : tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>
}

// -----

// Dense keys beside int8 winnowed values take the [G, D] kernel: each
// token's G weights are multiplied by its value scale before they meet the
// widened entries.
// CHECK-LABEL: func.func @partial_q8_values
// CHECK-SAME: %[[VS:[^:]+]]: tensor<?xf32>)
// CHECK: %[[VSCALE:.*]] = tensor.extract %[[VS]][%{{.*}}] : tensor<?xf32>
// CHECK: arith.mulf %{{.*}}, %[[VSCALE]] : f32
// CHECK: arith.sitofp %{{.*}} : vector<16xi8> to vector<16xf32>
func.func @partial_q8_values(%q: tensor<2x32xf32>, %s: f32, %kv: tensor<?x32xf16>,
    %vv: tensor<?x?xi8>, %vi: tensor<?x?xi8>, %vs: tensor<?xf32>)
    -> (tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%kv : tensor<?x32xf16>)
      values(%vv : tensor<?x?xi8>, indices %vi : tensor<?x?xi8>, scales %vs : tensor<?xf32>)
      : tensor<2x32xf32> -> tensor<2xf32>, tensor<2x32xf32>
  return %m, %l, %a : tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>
}

// -----

// int8 values in the mask encoding: the tile's weights are summed unscaled,
// then stored back times each token's value scale for the chunk-major
// value loop, which widens each expanded chunk of int8 in registers (32
// dimensions a chunk with 16 lanes, as for f16).
// CHECK-LABEL: func.func @partial_q8_masked_values
// CHECK-SAME: %[[VS:[^:]+]]: tensor<?xf32>)
// CHECK: %[[P:.*]] = vector.load %[[W:.*]][%[[AT:.*]]] : memref<16xf32>, vector<2xf32>
// CHECK: %[[VSCALE:.*]] = tensor.extract %[[VS]][%{{.*}}] : tensor<?xf32>
// CHECK: %[[VSPLAT:.*]] = vector.broadcast %[[VSCALE]] : f32 to vector<2xf32>
// CHECK: %[[SCALED:.*]] = arith.mulf %[[P]], %[[VSPLAT]] : vector<2xf32>
// CHECK: vector.store %[[SCALED]], %[[W]][%[[AT]]] : memref<16xf32>, vector<2xf32>
// CHECK: arith.addf %{{.*}}, %[[P]] : vector<2xf32>
// CHECK: vector.expandload {{.*}} into vector<32xi8>
// CHECK: arith.sitofp %{{.*}} : vector<32xi8> to vector<32xf32>
func.func @partial_q8_masked_values(%q: tensor<2x32xf32>, %s: f32,
    %kv: tensor<?x?xi8>, %ki: tensor<?x?xi8>, %ks: tensor<?xf32>,
    %vv: tensor<?x?xi8>, %vm: tensor<?x4xi8>, %vs: tensor<?xf32>)
    -> (tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>) {
  %m, %l, %a = swan.partial_attention %q, scale %s
      keys(%kv : tensor<?x?xi8>, indices %ki : tensor<?x?xi8>, scales %ks : tensor<?xf32>)
      values(%vv : tensor<?x?xi8>, indices %vm : tensor<?x4xi8>, scales %vs : tensor<?xf32>)
      value_encoding = mask : tensor<2x32xf32> -> tensor<2xf32>, tensor<2x32xf32>
  return %m, %l, %a : tensor<2xf32>, tensor<2xf32>, tensor<2x32xf32>
}
