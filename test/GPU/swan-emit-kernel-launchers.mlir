// RUN: swan-opt %s --swan-emit-kernel-launchers="symbol-prefix=emu_" | FileCheck %s

// Each function marked as an emulated kernel becomes internal and gets a
// launcher that reads cuLaunchKernel's parameter array (one pointer per
// argument), a list of its shared buffers and a row of the exported table
// emu_kernels, which ends in a zero row; unmarked functions get nothing, and
// the fault handler is marked as never returning.

// CHECK: llvm.func @swan_emu_out_of_bounds(i64, i64) attributes {passthrough = ["noreturn", "cold", "nounwind"]}
// CHECK: llvm.func internal @emu_scale(
// CHECK: llvm.func internal @emu_plain(
// CHECK: llvm.func @helper()
// CHECK-NOT: @helper_launch

// CHECK: llvm.mlir.global private constant @emu_scale_name("scale\00")
// CHECK-LABEL: llvm.func internal @emu_scale_launch(
// CHECK-SAME: %[[PARAMS:.*]]: !llvm.ptr)
// CHECK: %[[S0:.*]] = llvm.getelementptr %[[PARAMS]][0]
// CHECK: %[[A0:.*]] = llvm.load %[[S0]] : !llvm.ptr -> !llvm.ptr
// CHECK: %[[P:.*]] = llvm.load %[[A0]] : !llvm.ptr -> !llvm.ptr
// CHECK: %[[S1:.*]] = llvm.getelementptr %[[PARAMS]][1]
// CHECK: %[[A1:.*]] = llvm.load %[[S1]] : !llvm.ptr -> !llvm.ptr
// CHECK: %[[N:.*]] = llvm.load %[[A1]] : !llvm.ptr -> i64
// CHECK: %[[S2:.*]] = llvm.getelementptr %[[PARAMS]][2]
// CHECK: %[[A2:.*]] = llvm.load %[[S2]] : !llvm.ptr -> !llvm.ptr
// CHECK: %[[F:.*]] = llvm.load %[[A2]] : !llvm.ptr -> f32
// CHECK: llvm.call @emu_scale(%[[P]], %[[N]], %[[F]])

// The shared buffer list: {address, 32 floats = 128 bytes}, then a zero row.
// CHECK-LABEL: llvm.mlir.global private constant @emu_scale_shared()
// CHECK-SAME: !llvm.array<2 x struct<(ptr, i64)>>
// CHECK: llvm.mlir.addressof @emu_scale_shared0
// CHECK: llvm.mlir.constant(128 : i64)

// A kernel without shared buffers has just the zero row.
// CHECK-LABEL: llvm.func internal @emu_plain_launch(
// CHECK-LABEL: llvm.mlir.global private constant @emu_plain_shared()
// CHECK-SAME: !llvm.array<1 x struct<(ptr, i64)>>
// CHECK-NEXT: llvm.mlir.zero
// CHECK-NEXT: llvm.return

// Two kernels and the zero row; the known block size (32, 1, 1), or zeros.
// CHECK-LABEL: llvm.mlir.global external constant @emu_kernels()
// CHECK-SAME: !llvm.array<3 x struct<(ptr, ptr, array<3 x i32>, ptr)>>
// CHECK: llvm.mlir.addressof @emu_scale_name
// CHECK: llvm.mlir.addressof @emu_scale_launch
// CHECK: llvm.mlir.constant(32 : i32)
// CHECK: llvm.mlir.addressof @emu_scale_shared :
// CHECK: llvm.mlir.addressof @emu_plain_name
// CHECK: llvm.mlir.addressof @emu_plain_launch
// CHECK: llvm.mlir.constant(0 : i32)
// CHECK: llvm.mlir.addressof @emu_plain_shared :
// CHECK-NOT: llvm.mlir.addressof

llvm.mlir.global internal @emu_scale_shared0() {addr_space = 0 : i32} : !llvm.array<32 x f32>
llvm.func @swan_emu_out_of_bounds(i64, i64)
llvm.func @emu_scale(%p: !llvm.ptr, %n: i64, %s: f32) attributes {
    swan.emulated_kernel = "scale",
    swan.known_block_size = array<i32: 32, 1, 1>,
    swan.shared_memory = [@emu_scale_shared0]} {
  llvm.return
}
llvm.func @emu_plain(%p: !llvm.ptr) attributes {
    swan.emulated_kernel = "plain", swan.shared_memory = []} {
  llvm.return
}
llvm.func @helper() {
  llvm.return
}
