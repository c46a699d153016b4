// RUN: swan-opt %s --swan-lower-gpu-to-host="symbol-prefix=emu_" | FileCheck %s --implicit-check-not=gpu.

// The host twin of swan-lower-to-nvvm: the same kernels as LLVM IR for the
// emulator, each behind a launcher that reads cuLaunchKernel's parameter
// array (one pointer per scalar of the expanded memref ABI), listed in the
// exported table emu_kernels; everything else stays internal.
// CHECK: llvm.func internal @emu_rotate(%{{.*}}: !llvm.ptr, %{{.*}}: !llvm.ptr, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64,
// CHECK: llvm.call @swan_emu_barrier()
// CHECK: llvm.mlir.global private @emu_rotate_shared0() {{.*}} : !llvm.array<64 x f32>
// CHECK: llvm.mlir.global private constant @emu_rotate_name("rotate\00")
// CHECK: llvm.func internal @emu_rotate_launch(%[[PARAMS:.*]]: !llvm.ptr)
// CHECK: %[[SLOT:.*]] = llvm.getelementptr %[[PARAMS]][0] : (!llvm.ptr) -> !llvm.ptr, !llvm.ptr
// CHECK: %[[ARG:.*]] = llvm.load %[[SLOT]] : !llvm.ptr -> !llvm.ptr
// CHECK: llvm.load %[[ARG]] : !llvm.ptr -> !llvm.ptr
// CHECK-COUNT-20: llvm.getelementptr %[[PARAMS]]
// CHECK: llvm.call @emu_rotate(
// Its shared buffers, which the emulator poisons before each block:
// CHECK: llvm.mlir.global private constant @emu_rotate_shared() {{.*}} : !llvm.array<4 x struct<(ptr, i64)>>
// CHECK: llvm.mlir.addressof @emu_rotate_shared0
// CHECK: llvm.mlir.constant(256 : i64)
// CHECK: llvm.mlir.global external constant @emu_kernels()
// CHECK-SAME: !llvm.array<2 x struct<(ptr, ptr, array<3 x i32>, ptr)>>
// CHECK: llvm.mlir.zero : !llvm.array<2 x struct<(ptr, ptr, array<3 x i32>, ptr)>>
// CHECK: llvm.mlir.addressof @emu_rotate_name
// CHECK: llvm.mlir.addressof @emu_rotate_launch
// CHECK: llvm.mlir.constant(64 : i32)
// CHECK: llvm.mlir.addressof @emu_rotate_shared :
func.func @rotate(%x: memref<?x64xf32>, %r: memref<64x64xf32>,
    %out: memref<?x64xf32>) {
  %xt = bufferization.to_tensor %x restrict : memref<?x64xf32> to tensor<?x64xf32>
  %rt = bufferization.to_tensor %r restrict : memref<64x64xf32> to tensor<64x64xf32>
  %y = swan.rotate %xt by %rt
      : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
  bufferization.materialize_in_destination %y in restrict writable %out
      : (tensor<?x64xf32>, memref<?x64xf32>) -> ()
  return
}
