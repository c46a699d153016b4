// RUN: swan-opt %s --swan-lower-to-nvvm="chip=sm_90 emit-binary=false" | FileCheck %s
// RUN: swan-opt %s --swan-lower-to-nvvm="chip=sm_80" | FileCheck %s --check-prefix=BINARY

// The whole kernel module is in the LLVM/NVVM dialects, with the target
// attached and no call into libdevice: the PTX needs no CUDA toolkit.
// CHECK: gpu.module @swan_kernels [#nvvm.target<O = 3, chip = "sm_90">]
// CHECK-NOT: builtin.unrealized_conversion_cast
// CHECK-NOT: __nv_
// Shared memory becomes address space 3 globals: the rotated query
// (64x4), the scores (4x128), four warp accumulators (4x64x4) and the
// running state (3x4), 16-byte aligned for vector accesses.
// CHECK-DAG: llvm.mlir.global internal @__wg_decode_attention_partial_0() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<256 x f32>
// CHECK-DAG: llvm.mlir.global internal @__wg_decode_attention_partial_1() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<512 x f32>
// CHECK-DAG: llvm.mlir.global internal @__wg_decode_attention_partial_2() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<1024 x f32>
// CHECK-DAG: llvm.mlir.global internal @__wg_decode_attention_partial_3() {addr_space = 3 : i32, alignment = 16 : i64} : !llvm.array<12 x f32>
// CHECK-LABEL: llvm.func @decode_attention_partial
// CHECK-SAME: nvvm.kernel
// CHECK-SAME: nvvm.maxntid = array<i32: 128, 1, 1>
// CHECK-DAG: nvvm.read.ptx.sreg.ctaid.x
// CHECK-DAG: nvvm.read.ptx.sreg.ctaid.y
// CHECK-DAG: nvvm.read.ptx.sreg.ctaid.z
// CHECK-DAG: nvvm.read.ptx.sreg.nctaid.x
// CHECK: nvvm.shfl.sync bfly
// CHECK: nvvm.barrier0
// CHECK: llvm.nvvm.ex2.approx.f32
// CHECK: nvvm.bar.warp.sync
// CHECK-NOT: __nv_

// BINARY: gpu.binary @swan_kernels
// BINARY-SAME: #nvvm.target<O = 3, chip = "sm_80">
// BINARY-SAME: assembly = "{{.*}}.target sm_80{{.*}}.entry decode_attention_partial
func.func @decode_attention(%q: memref<?x8x64xf32>, %scale: f32,
    %rk: memref<2x64x64xf32>, %rv: memref<2x64x64xf32>,
    %kv: memref<?x2x?x?xf16>, %ki: memref<?x2x?x?xi8>,
    %vv: memref<?x2x?x?xf16>, %vi: memref<?x2x?x?xi8>,
    %bk: memref<?x2x?x64xf16>, %bv: memref<?x2x?x64xf16>,
    %sl: memref<?xi32>, %bl: memref<?xi32>, %out: memref<?x8x64xf32>) {
  %qt = bufferization.to_tensor %q restrict : memref<?x8x64xf32> to tensor<?x8x64xf32>
  %rkt = bufferization.to_tensor %rk restrict : memref<2x64x64xf32> to tensor<2x64x64xf32>
  %rvt = bufferization.to_tensor %rv restrict : memref<2x64x64xf32> to tensor<2x64x64xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<?x2x?x?xf16> to tensor<?x2x?x?xf16>
  %kit = bufferization.to_tensor %ki restrict : memref<?x2x?x?xi8> to tensor<?x2x?x?xi8>
  %vvt = bufferization.to_tensor %vv restrict : memref<?x2x?x?xf16> to tensor<?x2x?x?xf16>
  %vit = bufferization.to_tensor %vi restrict : memref<?x2x?x?xi8> to tensor<?x2x?x?xi8>
  %bkt = bufferization.to_tensor %bk restrict : memref<?x2x?x64xf16> to tensor<?x2x?x64xf16>
  %bvt = bufferization.to_tensor %bv restrict : memref<?x2x?x64xf16> to tensor<?x2x?x64xf16>
  %slt = bufferization.to_tensor %sl restrict : memref<?xi32> to tensor<?xi32>
  %blt = bufferization.to_tensor %bl restrict : memref<?xi32> to tensor<?xi32>
  %o = swan.decode_attention %qt, scale %scale
      rotations(%rkt, %rvt : tensor<2x64x64xf32>)
      sparse_keys(%kvt, %kit : tensor<?x2x?x?xf16>, tensor<?x2x?x?xi8>)
      sparse_values(%vvt, %vit : tensor<?x2x?x?xf16>, tensor<?x2x?x?xi8>)
      buffer(%bkt, %bvt : tensor<?x2x?x64xf16>)
      lengths(%slt, %blt : tensor<?xi32>)
      group_size = 4 : tensor<?x8x64xf32> -> tensor<?x8x64xf32>
  bufferization.materialize_in_destination %o in restrict writable %out
      : (tensor<?x8x64xf32>, memref<?x8x64xf32>) -> ()
  return
}
