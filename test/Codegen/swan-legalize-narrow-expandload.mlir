// RUN: swan-opt %s --swan-legalize-narrow-expandload --split-input-file | FileCheck %s

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
func.func @f16_rows(%m: memref<?x?xf16, strided<[?, 1], offset: ?>>, %i: index,
    %j: index, %mask: vector<32xi1>) -> vector<32xf16> {
  %z = arith.constant dense<0.0> : vector<32xf16>
  %v = vector.expandload %m[%i, %j], %mask, %z
      : memref<?x?xf16, strided<[?, 1], offset: ?>>, vector<32xi1>, vector<32xf16> into vector<32xf16>
  return %v : vector<32xf16>
}

// -----

// bf16 likewise; f32 and integer loads are left alone.

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
