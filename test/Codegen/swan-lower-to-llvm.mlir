// RUN: swan-opt %s --swan-lower-to-llvm="vector-width=16 tile-size=8" --split-input-file | FileCheck %s
// RUN: swan-opt %s --swan-lower-to-llvm="vector-width=16 tile-size=8" --split-input-file | FileCheck %s --check-prefix=CLEAN

// The kernel entry points of docs/KERNELS.md, one module each, through the
// whole CPU pipeline. Every module must reach the LLVM dialect with its
// C interface, read its inputs in place (no copies, no heap buffers), keep
// its loops vectorised, and read i8 indices as unsigned.

// CLEAN-NOT: memref.
// CLEAN-NOT: unrealized_conversion_cast
// CLEAN-NOT: llvm.call @malloc
// CLEAN-NOT: llvm.call @free
// CLEAN-NOT: llvm.call @memrefCopy
// CLEAN-NOT: llvm.intr.memcpy
// CLEAN-NOT: llvm.call @expf
// CLEAN-NOT: llvm.sext {{.*}}xi8> to
// CLEAN-NOT: llvm.sext {{.*}} i8 to

// D = 128: eight 16-lane accumulators per row.
// CHECK-LABEL: llvm.func @rotate(
// CHECK-COUNT-8: llvm.intr.fmuladd({{.*}}) : (vector<16xf32>, vector<16xf32>, vector<16xf32>) -> vector<16xf32>
// CHECK: llvm.func @_mlir_ciface_rotate(
func.func @rotate(%x: memref<?x128xf32>, %r: memref<128x128xf32>, %out: memref<?x128xf32>)
    attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x128xf32> to tensor<?x128xf32>
  %rt = bufferization.to_tensor %r restrict : memref<128x128xf32> to tensor<128x128xf32>
  %y = swan.rotate %xt by %rt : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
  bufferization.materialize_in_destination %y in restrict writable %out
      : (tensor<?x128xf32>, memref<?x128xf32>) -> ()
  return
}

// -----

// Rotated rows stay in a stack row; the selection counts compare masks
// with popcounts; the kept entries are packed by a loop over the set bits
// of the keep mask, two words of 64; rows reach the results 16 lanes at a
// time, the last piece masked (no compress store: without AVX-512 it is a
// branch per lane).
// CHECK-LABEL: llvm.func @compress(
// CHECK-COUNT-3: llvm.alloca
// CHECK: llvm.intr.fmuladd
// CHECK: llvm.intr.fabs({{.*}}) : (vector<16xf32>) -> vector<16xf32>
// CHECK: llvm.icmp "sge" {{.*}} : vector<16xi32>
// CHECK: llvm.bitcast {{.*}} : vector<16xi1> to vector<1xi16>
// CHECK: llvm.intr.ctpop({{.*}}) : (i16) -> i16
// CHECK-COUNT-2: llvm.intr.cttz
// CHECK-NOT: llvm.intr.cttz
// CHECK: llvm.intr.masked.store {{.*}} : vector<16xf16>, vector<16xi1> into !llvm.ptr
// CHECK: llvm.intr.masked.store {{.*}} : vector<16xi8>, vector<16xi1> into !llvm.ptr
// CHECK-NOT: llvm.intr.masked.compressstore
// CHECK: llvm.func @_mlir_ciface_compress(
func.func @compress(%x: memref<?x128xf32>, %r: memref<128x128xf32>, %k: index,
    %values: memref<?x?xf16>, %indices: memref<?x?xi8>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x128xf32> to tensor<?x128xf32>
  %rt = bufferization.to_tensor %r restrict : memref<128x128xf32> to tensor<128x128xf32>
  %v, %i = swan.compress %xt by %rt keep %k
      : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  bufferization.materialize_in_destination %v in restrict writable %values
      : (tensor<?x?xf16>, memref<?x?xf16>) -> ()
  bufferization.materialize_in_destination %i in restrict writable %indices
      : (tensor<?x?xi8>, memref<?x?xi8>) -> ()
  return
}

// -----

// No token is expanded to D = 128: the rotated query and the accumulator
// live transposed in stack scratch, [D, G], and each kept entry j of a
// token costs one G-wide row load + FMA: q'[idx_j] for its score,
// acc[idx_j] += val_j · p for its value. Indices are zero-extended. The
// only D-wide stores are the G result rows.
// CHECK-LABEL: llvm.func @partial_sparse(
// CHECK-COUNT-3: llvm.alloca {{.*}} x f32 {alignment = 64 : i64}
// CHECK-NOT: llvm.intr.masked.gather
// CHECK-NOT: vector<128x
// CHECK: llvm.zext {{.*}} : i8 to i64
// CHECK: llvm.fpext {{.*}} : vector<4xf16> to vector<4xf32>
// CHECK: llvm.load {{.*}} -> vector<4xf32>
// CHECK: llvm.intr.fmuladd({{.*}}) : (vector<4xf32>, vector<4xf32>, vector<4xf32>) -> vector<4xf32>
// CHECK-NOT: vector<128x
// CHECK: llvm.intr.maximum({{.*}}) : (vector<4xf32>, vector<4xf32>) -> vector<4xf32>
// CHECK: llvm.zext {{.*}} : i8 to i64
// CHECK-NOT: vector<128x
// CHECK: llvm.intr.fmuladd({{.*}}) : (vector<4xf32>, vector<4xf32>, vector<4xf32>) -> vector<4xf32>
// CHECK-NEXT: llvm.store {{.*}} : vector<4xf32>, !llvm.ptr
// CHECK-NOT: llvm.intr.masked.scatter
// CHECK-NOT: llvm.store {{.*}} vector<128x
// CHECK-COUNT-4: llvm.store {{.*}} : vector<128xf32>, !llvm.ptr
// CHECK-NEXT: llvm.return
// CHECK: llvm.func @_mlir_ciface_partial_sparse(
func.func @partial_sparse(%q: memref<4x128xf32>, %scale: f32,
    %kv: memref<?x?xf16>, %ki: memref<?x?xi8>, %vv: memref<?x?xf16>, %vi: memref<?x?xi8>,
    %max: memref<4xf32>, %sum: memref<4xf32>, %acc: memref<4x128xf32>)
    attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<4x128xf32> to tensor<4x128xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<?x?xf16> to tensor<?x?xf16>
  %kit = bufferization.to_tensor %ki restrict : memref<?x?xi8> to tensor<?x?xi8>
  %vvt = bufferization.to_tensor %vv restrict : memref<?x?xf16> to tensor<?x?xf16>
  %vit = bufferization.to_tensor %vi restrict : memref<?x?xi8> to tensor<?x?xi8>
  %m, %l, %a = swan.partial_attention %qt, scale %scale
      keys(%kvt : tensor<?x?xf16>, indices %kit : tensor<?x?xi8>)
      values(%vvt : tensor<?x?xf16>, indices %vit : tensor<?x?xi8>)
      : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  bufferization.materialize_in_destination %m in restrict writable %max
      : (tensor<4xf32>, memref<4xf32>) -> ()
  bufferization.materialize_in_destination %l in restrict writable %sum
      : (tensor<4xf32>, memref<4xf32>) -> ()
  bufferization.materialize_in_destination %a in restrict writable %acc
      : (tensor<4x128xf32>, memref<4x128xf32>) -> ()
  return
}

// -----

// Buffer tokens: contiguous f16 loads converted to f32, G·D/16 FMAs.
// CHECK-LABEL: llvm.func @partial_dense(
// CHECK-COUNT-5: llvm.alloca
// CHECK: llvm.load {{.*}} -> vector<16xf16>
// CHECK: llvm.fpext {{.*}} : vector<16xf16> to vector<16xf32>
// CHECK-COUNT-4: llvm.intr.fmuladd
// CHECK: llvm.intr.vector.reduce.fadd
// CHECK: llvm.intr.vector.reduce.fmaximum
// CHECK: llvm.func @_mlir_ciface_partial_dense(
func.func @partial_dense(%q: memref<4x128xf32>, %scale: f32,
    %keys: memref<?x128xf16>, %values: memref<?x128xf16>,
    %max: memref<4xf32>, %sum: memref<4xf32>, %acc: memref<4x128xf32>)
    attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<4x128xf32> to tensor<4x128xf32>
  %kt = bufferization.to_tensor %keys restrict : memref<?x128xf16> to tensor<?x128xf16>
  %vt = bufferization.to_tensor %values restrict : memref<?x128xf16> to tensor<?x128xf16>
  %m, %l, %a = swan.partial_attention %qt, scale %scale
      keys(%kt : tensor<?x128xf16>) values(%vt : tensor<?x128xf16>)
      : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  bufferization.materialize_in_destination %m in restrict writable %max
      : (tensor<4xf32>, memref<4xf32>) -> ()
  bufferization.materialize_in_destination %l in restrict writable %sum
      : (tensor<4xf32>, memref<4xf32>) -> ()
  bufferization.materialize_in_destination %a in restrict writable %acc
      : (tensor<4x128xf32>, memref<4x128xf32>) -> ()
  return
}

// -----

// Merge, then o · R_Vᵀ on the G x D result: dot products with rows of R_V.
// CHECK-LABEL: llvm.func @merge(
// CHECK: llvm.intr.maximum
// CHECK: llvm.intr.fmuladd
// CHECK: llvm.fdiv
// CHECK: llvm.intr.fmuladd
// CHECK: llvm.intr.vector.reduce.fadd
// CHECK: llvm.func @_mlir_ciface_merge(
func.func @merge(%max: memref<?x4xf32>, %sum: memref<?x4xf32>, %acc: memref<?x4x128xf32>,
    %r_v: memref<128x128xf32>, %out: memref<4x128xf32>) attributes {llvm.emit_c_interface} {
  %mt = bufferization.to_tensor %max restrict : memref<?x4xf32> to tensor<?x4xf32>
  %lt = bufferization.to_tensor %sum restrict : memref<?x4xf32> to tensor<?x4xf32>
  %at = bufferization.to_tensor %acc restrict : memref<?x4x128xf32> to tensor<?x4x128xf32>
  %rt = bufferization.to_tensor %r_v restrict : memref<128x128xf32> to tensor<128x128xf32>
  %o = swan.merge_attention %mt, %lt, %at rotate_back %rt
      : tensor<?x4xf32>, tensor<?x4x128xf32>, tensor<128x128xf32> -> tensor<4x128xf32>
  bufferization.materialize_in_destination %o in restrict writable %out
      : (tensor<4x128xf32>, memref<4x128xf32>) -> ()
  return
}

// -----

// CHECK-LABEL: llvm.func @merge_rotated(
// CHECK-NOT: llvm.intr.vector.reduce.fadd
// CHECK: llvm.func @_mlir_ciface_merge_rotated(
func.func @merge_rotated(%max: memref<?x4xf32>, %sum: memref<?x4xf32>,
    %acc: memref<?x4x128xf32>, %out: memref<4x128xf32>) attributes {llvm.emit_c_interface} {
  %mt = bufferization.to_tensor %max restrict : memref<?x4xf32> to tensor<?x4xf32>
  %lt = bufferization.to_tensor %sum restrict : memref<?x4xf32> to tensor<?x4xf32>
  %at = bufferization.to_tensor %acc restrict : memref<?x4x128xf32> to tensor<?x4x128xf32>
  %o = swan.merge_attention %mt, %lt, %at
      : tensor<?x4xf32>, tensor<?x4x128xf32> -> tensor<4x128xf32>
  bufferization.materialize_in_destination %o in restrict writable %out
      : (tensor<4x128xf32>, memref<4x128xf32>) -> ()
  return
}

// -----

// No token is expanded to D = 64: the rotated query and the accumulator
// live transposed in stack scratch, [D, G], and each kept entry j of a
// token costs one G-wide row load + FMA: q'[idx_j] for its score,
// acc[idx_j] += val_j · p for its value. Indices are zero-extended. The
// only D-wide stores are the G result rows.
// CHECK-LABEL: llvm.func @partial_sparse(
// CHECK-COUNT-3: llvm.alloca {{.*}} x f32 {alignment = 64 : i64}
// CHECK-NOT: llvm.intr.masked.gather
// CHECK-NOT: vector<64x
// CHECK: llvm.zext {{.*}} : i8 to i64
// CHECK: llvm.load {{.*}} -> vector<1xf32>
// CHECK: llvm.intr.fmuladd({{.*}}) : (vector<1xf32>, vector<1xf32>, vector<1xf32>) -> vector<1xf32>
// CHECK-NOT: vector<64x
// CHECK: llvm.intr.maximum({{.*}}) : (vector<1xf32>, vector<1xf32>) -> vector<1xf32>
// CHECK: llvm.zext {{.*}} : i8 to i64
// CHECK-NOT: vector<64x
// CHECK: llvm.intr.fmuladd({{.*}}) : (vector<1xf32>, vector<1xf32>, vector<1xf32>) -> vector<1xf32>
// CHECK-NEXT: llvm.store {{.*}} : vector<1xf32>, !llvm.ptr
// CHECK-NOT: llvm.intr.masked.scatter
// CHECK-NOT: llvm.store {{.*}} vector<64x
// CHECK-COUNT-1: llvm.store {{.*}} : vector<64xf32>, !llvm.ptr
// CHECK-NEXT: llvm.return
// CHECK: llvm.func @_mlir_ciface_partial_sparse(
func.func @partial_sparse(%q: memref<1x64xf32>, %scale: f32,
    %kv: memref<?x?xf32>, %ki: memref<?x?xi8>, %vv: memref<?x?xf32>, %vi: memref<?x?xi8>,
    %max: memref<1xf32>, %sum: memref<1xf32>, %acc: memref<1x64xf32>)
    attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<1x64xf32> to tensor<1x64xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<?x?xf32> to tensor<?x?xf32>
  %kit = bufferization.to_tensor %ki restrict : memref<?x?xi8> to tensor<?x?xi8>
  %vvt = bufferization.to_tensor %vv restrict : memref<?x?xf32> to tensor<?x?xf32>
  %vit = bufferization.to_tensor %vi restrict : memref<?x?xi8> to tensor<?x?xi8>
  %m, %l, %a = swan.partial_attention %qt, scale %scale
      keys(%kvt : tensor<?x?xf32>, indices %kit : tensor<?x?xi8>)
      values(%vvt : tensor<?x?xf32>, indices %vit : tensor<?x?xi8>)
      : tensor<1x64xf32> -> tensor<1xf32>, tensor<1x64xf32>
  bufferization.materialize_in_destination %m in restrict writable %max
      : (tensor<1xf32>, memref<1xf32>) -> ()
  bufferization.materialize_in_destination %l in restrict writable %sum
      : (tensor<1xf32>, memref<1xf32>) -> ()
  bufferization.materialize_in_destination %a in restrict writable %acc
      : (tensor<1x64xf32>, memref<1x64xf32>) -> ()
  return
}

// -----

// Rows are rotated four at a time (R streamed once per block; a partial
// last block row by row), then winnowed one by one by a loop shared by
// both: one copy of the winnowing code, one word of keep bits.
// CHECK-LABEL: llvm.func @compress(
// CHECK: llvm.intr.cttz
// CHECK-NOT: llvm.intr.cttz
// CHECK: llvm.func @_mlir_ciface_compress(
func.func @compress(%x: memref<?x64xf32>, %r: memref<64x64xf32>, %k: index,
    %values: memref<?x?xf32>, %indices: memref<?x?xi8>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x64xf32> to tensor<?x64xf32>
  %rt = bufferization.to_tensor %r restrict : memref<64x64xf32> to tensor<64x64xf32>
  %v, %i = swan.compress %xt by %rt keep %k
      : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  bufferization.materialize_in_destination %v in restrict writable %values
      : (tensor<?x?xf32>, memref<?x?xf32>) -> ()
  bufferization.materialize_in_destination %i in restrict writable %indices
      : (tensor<?x?xi8>, memref<?x?xi8>) -> ()
  return
}

// -----

// No token is expanded to D = 128: the rotated query and the accumulator
// live transposed in stack scratch, [D, G], and each kept entry j of a
// token costs one G-wide row load + FMA: q'[idx_j] for its score,
// acc[idx_j] += val_j · p for its value. Indices are zero-extended. The
// only D-wide stores are the G result rows.
// CHECK-LABEL: llvm.func @partial_sparse(
// CHECK-COUNT-3: llvm.alloca {{.*}} x f32 {alignment = 64 : i64}
// CHECK-NOT: llvm.intr.masked.gather
// CHECK-NOT: vector<128x
// CHECK: llvm.zext {{.*}} : i8 to i64
// CHECK: llvm.load {{.*}} -> vector<8xf32>
// CHECK: llvm.intr.fmuladd({{.*}}) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// CHECK-NOT: vector<128x
// CHECK: llvm.intr.maximum({{.*}}) : (vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// CHECK: llvm.zext {{.*}} : i8 to i64
// CHECK-NOT: vector<128x
// CHECK: llvm.intr.fmuladd({{.*}}) : (vector<8xf32>, vector<8xf32>, vector<8xf32>) -> vector<8xf32>
// CHECK-NEXT: llvm.store {{.*}} : vector<8xf32>, !llvm.ptr
// CHECK-NOT: llvm.intr.masked.scatter
// CHECK-NOT: llvm.store {{.*}} vector<128x
// CHECK-COUNT-8: llvm.store {{.*}} : vector<128xf32>, !llvm.ptr
// CHECK-NEXT: llvm.return
// CHECK: llvm.func @_mlir_ciface_partial_sparse(
func.func @partial_sparse(%q: memref<8x128xf32>, %scale: f32,
    %kv: memref<?x?xf32>, %ki: memref<?x?xi8>, %vv: memref<?x?xf32>, %vi: memref<?x?xi8>,
    %max: memref<8xf32>, %sum: memref<8xf32>, %acc: memref<8x128xf32>)
    attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<8x128xf32> to tensor<8x128xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<?x?xf32> to tensor<?x?xf32>
  %kit = bufferization.to_tensor %ki restrict : memref<?x?xi8> to tensor<?x?xi8>
  %vvt = bufferization.to_tensor %vv restrict : memref<?x?xf32> to tensor<?x?xf32>
  %vit = bufferization.to_tensor %vi restrict : memref<?x?xi8> to tensor<?x?xi8>
  %m, %l, %a = swan.partial_attention %qt, scale %scale
      keys(%kvt : tensor<?x?xf32>, indices %kit : tensor<?x?xi8>)
      values(%vvt : tensor<?x?xf32>, indices %vit : tensor<?x?xi8>)
      : tensor<8x128xf32> -> tensor<8xf32>, tensor<8x128xf32>
  bufferization.materialize_in_destination %m in restrict writable %max
      : (tensor<8xf32>, memref<8xf32>) -> ()
  bufferization.materialize_in_destination %l in restrict writable %sum
      : (tensor<8xf32>, memref<8xf32>) -> ()
  bufferization.materialize_in_destination %a in restrict writable %acc
      : (tensor<8x128xf32>, memref<8x128xf32>) -> ()
  return
}

// -----

// CHECK-LABEL: llvm.func @partial_dense(
// CHECK-COUNT-8: llvm.intr.fmuladd
// CHECK: llvm.func @_mlir_ciface_partial_dense(
func.func @partial_dense(%q: memref<8x128xf32>, %scale: f32,
    %keys: memref<?x128xf32>, %values: memref<?x128xf32>,
    %max: memref<8xf32>, %sum: memref<8xf32>, %acc: memref<8x128xf32>)
    attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<8x128xf32> to tensor<8x128xf32>
  %kt = bufferization.to_tensor %keys restrict : memref<?x128xf32> to tensor<?x128xf32>
  %vt = bufferization.to_tensor %values restrict : memref<?x128xf32> to tensor<?x128xf32>
  %m, %l, %a = swan.partial_attention %qt, scale %scale
      keys(%kt : tensor<?x128xf32>) values(%vt : tensor<?x128xf32>)
      : tensor<8x128xf32> -> tensor<8xf32>, tensor<8x128xf32>
  bufferization.materialize_in_destination %m in restrict writable %max
      : (tensor<8xf32>, memref<8xf32>) -> ()
  bufferization.materialize_in_destination %l in restrict writable %sum
      : (tensor<8xf32>, memref<8xf32>) -> ()
  bufferization.materialize_in_destination %a in restrict writable %acc
      : (tensor<8x128xf32>, memref<8x128xf32>) -> ()
  return
}

// -----

// CHECK-LABEL: llvm.func @merge(
// CHECK: llvm.func @_mlir_ciface_merge(
func.func @merge(%max: memref<?x8xf32>, %sum: memref<?x8xf32>, %acc: memref<?x8x128xf32>,
    %r_v: memref<128x128xf32>, %out: memref<8x128xf32>) attributes {llvm.emit_c_interface} {
  %mt = bufferization.to_tensor %max restrict : memref<?x8xf32> to tensor<?x8xf32>
  %lt = bufferization.to_tensor %sum restrict : memref<?x8xf32> to tensor<?x8xf32>
  %at = bufferization.to_tensor %acc restrict : memref<?x8x128xf32> to tensor<?x8x128xf32>
  %rt = bufferization.to_tensor %r_v restrict : memref<128x128xf32> to tensor<128x128xf32>
  %o = swan.merge_attention %mt, %lt, %at rotate_back %rt
      : tensor<?x8xf32>, tensor<?x8x128xf32>, tensor<128x128xf32> -> tensor<8x128xf32>
  bufferization.materialize_in_destination %o in restrict writable %out
      : (tensor<8x128xf32>, memref<8x128xf32>) -> ()
  return
}

// -----

// D = 256 with i8 indices: positions 128..255 truncated to i8; four words
// of keep bits.
// CHECK-LABEL: llvm.func @compress(
// CHECK-COUNT-4: llvm.intr.cttz
// CHECK-NOT: llvm.intr.cttz
// CHECK: llvm.func @_mlir_ciface_compress(
func.func @compress(%x: memref<?x256xf32>, %r: memref<256x256xf32>, %k: index,
    %values: memref<?x?xf16>, %indices: memref<?x?xi8>) attributes {llvm.emit_c_interface} {
  %xt = bufferization.to_tensor %x restrict : memref<?x256xf32> to tensor<?x256xf32>
  %rt = bufferization.to_tensor %r restrict : memref<256x256xf32> to tensor<256x256xf32>
  %v, %i = swan.compress %xt by %rt keep %k
      : tensor<?x256xf32>, tensor<256x256xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  bufferization.materialize_in_destination %v in restrict writable %values
      : (tensor<?x?xf16>, memref<?x?xf16>) -> ()
  bufferization.materialize_in_destination %i in restrict writable %indices
      : (tensor<?x?xi8>, memref<?x?xi8>) -> ()
  return
}

// -----

// No token is expanded to D = 256: the rotated query and the accumulator
// live transposed in stack scratch, [D, G], and each kept entry j of a
// token costs one G-wide row load + FMA: q'[idx_j] for its score,
// acc[idx_j] += val_j · p for its value. Indices are zero-extended. The
// only D-wide stores are the G result rows.
// CHECK-LABEL: llvm.func @partial_sparse(
// CHECK-COUNT-3: llvm.alloca {{.*}} x f32 {alignment = 64 : i64}
// CHECK-NOT: llvm.intr.masked.gather
// CHECK-NOT: vector<256x
// CHECK: llvm.zext {{.*}} : i8 to i64
// CHECK: llvm.fpext {{.*}} : vector<4xf16> to vector<4xf32>
// CHECK: llvm.load {{.*}} -> vector<4xf32>
// CHECK: llvm.intr.fmuladd({{.*}}) : (vector<4xf32>, vector<4xf32>, vector<4xf32>) -> vector<4xf32>
// CHECK-NOT: vector<256x
// CHECK: llvm.intr.maximum({{.*}}) : (vector<4xf32>, vector<4xf32>) -> vector<4xf32>
// CHECK: llvm.zext {{.*}} : i8 to i64
// CHECK-NOT: vector<256x
// CHECK: llvm.intr.fmuladd({{.*}}) : (vector<4xf32>, vector<4xf32>, vector<4xf32>) -> vector<4xf32>
// CHECK-NEXT: llvm.store {{.*}} : vector<4xf32>, !llvm.ptr
// CHECK-NOT: llvm.intr.masked.scatter
// CHECK-NOT: llvm.store {{.*}} vector<256x
// CHECK-COUNT-4: llvm.store {{.*}} : vector<256xf32>, !llvm.ptr
// CHECK-NEXT: llvm.return
// CHECK: llvm.func @_mlir_ciface_partial_sparse(
func.func @partial_sparse(%q: memref<4x256xf32>, %scale: f32,
    %kv: memref<?x?xf16>, %ki: memref<?x?xi8>, %vv: memref<?x?xf16>, %vi: memref<?x?xi8>,
    %max: memref<4xf32>, %sum: memref<4xf32>, %acc: memref<4x256xf32>)
    attributes {llvm.emit_c_interface} {
  %qt = bufferization.to_tensor %q restrict : memref<4x256xf32> to tensor<4x256xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<?x?xf16> to tensor<?x?xf16>
  %kit = bufferization.to_tensor %ki restrict : memref<?x?xi8> to tensor<?x?xi8>
  %vvt = bufferization.to_tensor %vv restrict : memref<?x?xf16> to tensor<?x?xf16>
  %vit = bufferization.to_tensor %vi restrict : memref<?x?xi8> to tensor<?x?xi8>
  %m, %l, %a = swan.partial_attention %qt, scale %scale
      keys(%kvt : tensor<?x?xf16>, indices %kit : tensor<?x?xi8>)
      values(%vvt : tensor<?x?xf16>, indices %vit : tensor<?x?xi8>)
      : tensor<4x256xf32> -> tensor<4xf32>, tensor<4x256xf32>
  bufferization.materialize_in_destination %m in restrict writable %max
      : (tensor<4xf32>, memref<4xf32>) -> ()
  bufferization.materialize_in_destination %l in restrict writable %sum
      : (tensor<4xf32>, memref<4xf32>) -> ()
  bufferization.materialize_in_destination %a in restrict writable %acc
      : (tensor<4x256xf32>, memref<4x256xf32>) -> ()
  return
}
