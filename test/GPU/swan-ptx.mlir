// RUN: swan-ptx %s --chip=sm_80 -o %t.sm80.ptx
// RUN: FileCheck %s --input-file=%t.sm80.ptx
// RUN: swan-ptx %s --chip=sm_90 -o %t.sm90.ptx
// RUN: FileCheck %s --check-prefix=SM90 --input-file=%t.sm90.ptx

// PTX text from LLVM's NVPTX backend: shared memory, warp shuffles,
// barriers, ex2.approx, L2 prefetches, and no call to anything (no libdevice).
// CHECK: .target sm_80
// CHECK-NOT: call
// CHECK-DAG: .visible .entry rotate(
// CHECK-DAG: .visible .entry compress(
// CHECK-DAG: .visible .entry decode_attention_partial(
// CHECK-DAG: membar.gl;
// CHECK-DAG: atom.{{.*}}add.u32
// CHECK-DAG: prefetch.L2 [%rd{{[0-9]+}}];
// CHECK-DAG: .shared .align {{[0-9]+}} .b8 __wg_decode_attention_partial_2[4096];
// CHECK-DAG: shfl.sync.bfly.b32
// CHECK-DAG: bar.sync 0;
// CHECK-DAG: bar.warp.sync -1;
// CHECK-DAG: ex2.approx.f32
// CHECK-DAG: .maxntid 128, 1, 1
// CHECK-DAG: ld.global.b8
// CHECK-DAG: ld.global.b16

// SM90: .target sm_90
// SM90: .visible .entry

func.func @rotate(%x: memref<?x64xf32>, %r: memref<64x64xf32>, %out: memref<?x64xf32>) {
  %xt = bufferization.to_tensor %x restrict : memref<?x64xf32> to tensor<?x64xf32>
  %rt = bufferization.to_tensor %r restrict : memref<64x64xf32> to tensor<64x64xf32>
  %y = swan.rotate %xt by %rt : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
  bufferization.materialize_in_destination %y in restrict writable %out
      : (tensor<?x64xf32>, memref<?x64xf32>) -> ()
  return
}

func.func @compress(%x: memref<?x64xf32>, %r: memref<64x64xf32>, %k: index,
    %values: memref<?x?xf16>, %indices: memref<?x?xi8>) {
  %xt = bufferization.to_tensor %x restrict : memref<?x64xf32> to tensor<?x64xf32>
  %rt = bufferization.to_tensor %r restrict : memref<64x64xf32> to tensor<64x64xf32>
  %v, %i = swan.compress %xt by %rt keep %k
      : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  bufferization.materialize_in_destination %v in restrict writable %values
      : (tensor<?x?xf16>, memref<?x?xf16>) -> ()
  bufferization.materialize_in_destination %i in restrict writable %indices
      : (tensor<?x?xi8>, memref<?x?xi8>) -> ()
  return
}

func.func @decode_attention(%q: memref<?x?x64xf32>, %scale: f32,
    %rk: memref<?x64x64xf32>, %rv: memref<?x64x64xf32>,
    %kv: memref<?x?x?x?xf16>, %ki: memref<?x?x?x?xi8>,
    %vv: memref<?x?x?x?xf16>, %vi: memref<?x?x?x?xi8>,
    %bk: memref<?x?x?x64xf16>, %bv: memref<?x?x?x64xf16>,
    %sl: memref<?xi32>, %bl: memref<?xi32>, %out: memref<?x?x64xf32>) {
  %qt = bufferization.to_tensor %q restrict : memref<?x?x64xf32> to tensor<?x?x64xf32>
  %rkt = bufferization.to_tensor %rk restrict : memref<?x64x64xf32> to tensor<?x64x64xf32>
  %rvt = bufferization.to_tensor %rv restrict : memref<?x64x64xf32> to tensor<?x64x64xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<?x?x?x?xf16> to tensor<?x?x?x?xf16>
  %kit = bufferization.to_tensor %ki restrict : memref<?x?x?x?xi8> to tensor<?x?x?x?xi8>
  %vvt = bufferization.to_tensor %vv restrict : memref<?x?x?x?xf16> to tensor<?x?x?x?xf16>
  %vit = bufferization.to_tensor %vi restrict : memref<?x?x?x?xi8> to tensor<?x?x?x?xi8>
  %bkt = bufferization.to_tensor %bk restrict : memref<?x?x?x64xf16> to tensor<?x?x?x64xf16>
  %bvt = bufferization.to_tensor %bv restrict : memref<?x?x?x64xf16> to tensor<?x?x?x64xf16>
  %slt = bufferization.to_tensor %sl restrict : memref<?xi32> to tensor<?xi32>
  %blt = bufferization.to_tensor %bl restrict : memref<?xi32> to tensor<?xi32>
  %o = swan.decode_attention %qt, scale %scale
      rotations(%rkt, %rvt : tensor<?x64x64xf32>)
      sparse_keys(%kvt, %kit : tensor<?x?x?x?xf16>, tensor<?x?x?x?xi8>)
      sparse_values(%vvt, %vit : tensor<?x?x?x?xf16>, tensor<?x?x?x?xi8>)
      buffer(%bkt, %bvt : tensor<?x?x?x64xf16>)
      lengths(%slt, %blt : tensor<?xi32>)
      group_size = 4 : tensor<?x?x64xf32> -> tensor<?x?x64xf32>
  bufferization.materialize_in_destination %o in restrict writable %out
      : (tensor<?x?x64xf32>, memref<?x?x64xf32>) -> ()
  return
}
