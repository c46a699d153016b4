// RUN: swan-opt %s --swan-legalize-narrow-expandload=expand-with=vpexpand --split-input-file | FileCheck %s
// RUN: swan-opt %s --swan-legalize-narrow-expandload=expand-with=pshufb --split-input-file | FileCheck %s --check-prefix=SHUF
// RUN: not swan-opt %s --swan-legalize-narrow-expandload=expand-with=avx9 --split-input-file 2>&1 | FileCheck %s --check-prefix=BAD

// BAD: expand-with must be host, vpexpand or pshufb, not 'avx9'

// An expanding load of f16 reads the element's bits: one i16 expandload at
// the element's address (base + (offset + i * stride0 + j) * 2), then a
// bitcast; LLVM lowers it to vpexpandw instead of 32 branches.

// CHECK-LABEL: func.func @f16_rows
// CHECK-SAME: (%[[M:[^:]+]]: memref<?x?xf16, strided<[?, 1], offset: ?>>, %[[I:[^:]+]]: index, %[[J:[^:]+]]: index, %[[MASK:[^:]+]]: vector<32xi1>)
// CHECK: %[[BASE:.*]], %[[OFF:.*]], %{{.*}}:2, %[[STRIDES:.*]]:2 = memref.extract_strided_metadata %[[M]]
// CHECK: %[[ROW:.*]] = arith.muli %[[I]], %[[STRIDES]]#0 : index
// CHECK: %[[A:.*]] = arith.addi %[[OFF]], %[[ROW]] : index
// CHECK: %[[EL:.*]] = arith.addi %[[A]], %[[J]] : index
// CHECK: %[[PTR:.*]] = memref.extract_aligned_pointer_as_index %[[M]]
// CHECK: %[[BYTES:.*]] = arith.muli %[[EL]], %c2 : index
// CHECK: %[[ADDR:.*]] = arith.addi %[[PTR]], %[[BYTES]] : index
// CHECK: %[[ADDR64:.*]] = arith.index_cast %[[ADDR]] : index to i64
// CHECK: %[[P:.*]] = llvm.inttoptr %[[ADDR64]] : i64 to !llvm.ptr
// CHECK: %[[BITS:.*]] = "llvm.intr.masked.expandload"(%[[P]], %[[MASK]], %{{.*}}) {{.*}} : (!llvm.ptr, vector<32xi1>, vector<32xi16>) -> vector<32xi16>
// CHECK: %[[V:.*]] = arith.bitcast %[[BITS]] : vector<32xi16> to vector<32xf16>
// CHECK: return %[[V]]
// CHECK-NOT: vector.expandload

// With byte shuffles: each 8 lanes is a 16-byte window read at the part's
// first value (the popcounts of the earlier parts on), shuffled by the
// table row of its mask byte. Windows may run past the row, so that path
// needs another row after this one (and rows of at least 8); otherwise
// each window is gathered element by element inside the row.
// SHUF: memref.global "private" constant @__swan_expand_shuffles_16 : memref<256x16xi8> = dense<"0x8080{{.*}}0C0D0E0F"> {alignment = 64 : i64}
// SHUF-LABEL: func.func @f16_rows
// SHUF-SAME: (%[[M:[^:]+]]: memref<?x?xf16, strided<[?, 1], offset: ?>>, %[[I:[^:]+]]: index, %[[J:[^:]+]]: index, %[[MASK:[^:]+]]: vector<32xi1>)
// SHUF-DAG: %[[ROW:.*]] = memref.dim %[[M]], %c1
// SHUF-DAG: %[[ROWS:.*]] = memref.dim %[[M]], %c0
// SHUF-DAG: %[[NEXT:.*]] = arith.addi %[[I]], %c1
// SHUF-DAG: %[[MORE:.*]] = arith.cmpi slt, %[[NEXT]], %[[ROWS]]
// SHUF-DAG: %[[LONG:.*]] = arith.cmpi sge, %[[ROW]], %c8
// SHUF: %[[SAFE:.*]] = arith.andi %[[MORE]], %[[LONG]]
// SHUF: scf.if %[[SAFE]] -> (vector<32xf16>) {
// SHUF: %[[WORD:.*]] = vector.bitcast %[[MASK]] : vector<32xi1> to vector<1xi32>
// SHUF: %[[W:.*]] = vector.extract %[[WORD]][0]
// SHUF: %[[TABLE:.*]] = memref.get_global @__swan_expand_shuffles_16
// SHUF: %[[BITS0:.*]] = arith.andi %[[W]], %c255_i32
// SHUF: %[[COUNT0:.*]] = math.ctpop %[[BITS0]] : i32
// SHUF: %[[C0:.*]] = arith.index_castui %[[COUNT0]] : i32 to index
// SHUF: %[[WIN:.*]] = llvm.load %{{.*}} {alignment = 1 : i64} : !llvm.ptr -> vector<16xi8>
// SHUF: %[[ROW0:.*]] = arith.index_castui %[[BITS0]] : i32 to index
// SHUF: %[[CTL:.*]] = vector.load %[[TABLE]][%[[ROW0]], %c0] : memref<256x16xi8>, vector<16xi8>
// SHUF: llvm.call_intrinsic "llvm.x86.ssse3.pshuf.b.128"(%[[WIN]], %[[CTL]])
// SHUF: %[[START1:.*]] = arith.addi %[[J]], %[[C0]] : index
// SHUF: arith.addi %{{.*}}, %[[START1]] : index
// SHUF-COUNT-3: llvm.call_intrinsic "llvm.x86.ssse3.pshuf.b.128"
// SHUF: } else {
// SHUF: %[[N:.*]] = arith.index_castui %{{.*}} : i32 to index
// SHUF: scf.for %[[E:.*]] = %c0 to %[[N]] step %c1 iter_args(%[[GATHERED:.*]] = %{{.*}}) -> (vector<8xf16>) {
// SHUF: %[[AT:.*]] = arith.addi %[[J]], %[[E]] : index
// SHUF: %[[X:.*]] = memref.load %[[M]][%[[I]], %[[AT]]]
// SHUF: vector.insert %[[X]], %[[GATHERED]] [%[[E]]] : f16 into vector<8xf16>
// SHUF-COUNT-4: llvm.call_intrinsic "llvm.x86.ssse3.pshuf.b.128"
// SHUF-NOT: expandload
func.func @f16_rows(%m: memref<?x?xf16, strided<[?, 1], offset: ?>>, %i: index,
    %j: index, %mask: vector<32xi1>) -> vector<32xf16> {
  %z = arith.constant dense<0.0> : vector<32xf16>
  %v = vector.expandload %m[%i, %j], %mask, %z
      : memref<?x?xf16, strided<[?, 1], offset: ?>>, vector<32xi1>, vector<32xf16> into vector<32xf16>
  return %v : vector<32xf16>
}

// -----

// bf16 likewise; f32 and integer loads are left alone. Byte shuffles take
// every 16- and 32-bit load: 4 lanes of f32 per window, from a 16-row table.
// SHUF-DAG: memref.global "private" constant @__swan_expand_shuffles_32 : memref<16x16xi8>
// SHUF-DAG: memref.global "private" constant @__swan_expand_shuffles_16 : memref<256x16xi8>
// SHUF-LABEL: func.func @others
// SHUF-COUNT-4: llvm.call_intrinsic "llvm.x86.ssse3.pshuf.b.128"
// SHUF: vector.bitcast %{{.*}} : vector<16xi8> to vector<4xf32>
// SHUF-COUNT-7: llvm.call_intrinsic "llvm.x86.ssse3.pshuf.b.128"
// SHUF: vector.bitcast %{{.*}} : vector<16xi8> to vector<8xi16>
// SHUF-NOT: expandload

// CHECK-LABEL: func.func @others
// CHECK: "llvm.intr.masked.expandload"({{.*}}) -> vector<16xi16>
// CHECK: arith.bitcast %{{.*}} : vector<16xi16> to vector<16xbf16>
// CHECK: vector.expandload %{{.*}} : memref<?xf32>, vector<16xi1>, vector<16xf32> into vector<16xf32>
// CHECK: vector.expandload %{{.*}} : memref<?xi16>, vector<16xi1>, vector<16xi16> into vector<16xi16>
func.func @others(%b: memref<?xbf16>, %f: memref<?xf32>, %n: memref<?xi16>,
    %i: index, %mask: vector<16xi1>)
    -> (vector<16xbf16>, vector<16xf32>, vector<16xi16>) {
  %zb = arith.constant dense<0.0> : vector<16xbf16>
  %zf = arith.constant dense<0.0> : vector<16xf32>
  %zn = arith.constant dense<0> : vector<16xi16>
  %vb = vector.expandload %b[%i], %mask, %zb : memref<?xbf16>, vector<16xi1>, vector<16xbf16> into vector<16xbf16>
  %vf = vector.expandload %f[%i], %mask, %zf : memref<?xf32>, vector<16xi1>, vector<16xf32> into vector<16xf32>
  %vn = vector.expandload %n[%i], %mask, %zn : memref<?xi16>, vector<16xi1>, vector<16xi16> into vector<16xi16>
  return %vb, %vf, %vn : vector<16xbf16>, vector<16xf32>, vector<16xi16>
}

// -----

// A load whose swan.readable_tail promises a window's worth of bytes past
// its row (the attention kernels mark every row but a block's last) needs
// no bounds check; with vpexpand the promise does not matter.

// SHUF-LABEL: func.func @readable_tail
// SHUF-NOT: scf.if
// SHUF-NOT: llvm.intr.masked.expandload
// SHUF-COUNT-2: llvm.call_intrinsic "llvm.x86.ssse3.pshuf.b.128"
// SHUF-NOT: llvm.intr.masked.expandload
// SHUF: return
// CHECK-LABEL: func.func @readable_tail
// CHECK: "llvm.intr.masked.expandload"
func.func @readable_tail(%m: memref<?x?xf16>, %i: index, %j: index,
    %mask: vector<16xi1>) -> vector<16xf16> {
  %z = arith.constant dense<0.0> : vector<16xf16>
  %v = vector.expandload %m[%i, %j], %mask, %z {swan.readable_tail = 16 : i64}
      : memref<?x?xf16>, vector<16xi1>, vector<16xf16> into vector<16xf16>
  return %v : vector<16xf16>
}

// -----

// int8 lanes (SWAN-Q8) go 8 at a time: a 16-byte window shuffled by the
// row of a 256-row table (whose last 8 control bytes are all 0x80), of
// which the first 8 lanes are kept. Rows must be 16 long for the window to
// stay inside the next one. With vpexpand the load is left to LLVM
// (vpexpandb on AVX-512 VBMI2).
// SHUF: memref.global "private" constant @__swan_expand_shuffles_8 : memref<256x16xi8> = dense<"0x8080808080808080808080808080808000808080808080808080808080808080{{.*}}00010203040506078080808080808080">
// SHUF-LABEL: func.func @i8_rows
// SHUF: arith.cmpi sge, %{{.*}}, %c16
// SHUF: %[[CTL:.*]] = vector.load %{{.*}} : memref<256x16xi8>, vector<16xi8>
// SHUF: %[[PART:.*]] = llvm.call_intrinsic "llvm.x86.ssse3.pshuf.b.128"(%{{.*}}, %[[CTL]])
// SHUF: vector.extract_strided_slice %[[PART]] {offsets = [0], sizes = [8], strides = [1]} : vector<16xi8> to vector<8xi8>
// SHUF-COUNT-3: llvm.call_intrinsic "llvm.x86.ssse3.pshuf.b.128"
// SHUF: } else {
// SHUF-NOT: expandload
// CHECK-LABEL: func.func @i8_rows
// CHECK: vector.expandload
func.func @i8_rows(%m: memref<?x?xi8>, %i: index, %j: index,
    %mask: vector<32xi1>) -> vector<32xi8> {
  %z = arith.constant dense<0> : vector<32xi8>
  %v = vector.expandload %m[%i, %j], %mask, %z
      : memref<?x?xi8>, vector<32xi1>, vector<32xi8> into vector<32xi8>
  return %v : vector<32xi8>
}
