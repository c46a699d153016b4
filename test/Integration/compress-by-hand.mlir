// RUN: swan-opt %s --swan-lower-to-llvm | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s
// RUN: swan-opt %s --swan-lower-to-llvm="vector-width=8" | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s

// Rotate-then-winnow, fused into swan.compress by the pipeline, on five rows
// (one block of four rows, then one more). R reverses a row: y_i = x_(15-i),
// so the kept positions are mirrored and ties are broken on y's positions.
// Values are stored as f16.

func.func @print_row(%v: tensor<?x?xf16>, %i: tensor<?x?xi8>, %row: index) {
  %c0 = arith.constant 0 : index
  %pad = arith.constant 0.0 : f16
  %ipad = arith.constant 0 : i8
  %vals16 = vector.transfer_read %v[%row, %c0], %pad {in_bounds = [true]} : tensor<?x?xf16>, vector<3xf16>
  %vals = arith.extf %vals16 : vector<3xf16> to vector<3xf32>
  %idx8 = vector.transfer_read %i[%row, %c0], %ipad {in_bounds = [true]} : tensor<?x?xi8>, vector<3xi8>
  %idx = arith.extui %idx8 : vector<3xi8> to vector<3xi32>
  vector.print %idx : vector<3xi32>
  vector.print %vals : vector<3xf32>
  return
}

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
  %x = arith.constant dense<[[3.0, -3.0, 1.0, 2.0, -5.0, 0.5, 0.25, 1.0, 0.0, -1.0, 2.5, -0.5, 0.125, 1.5, -2.0, 0.75],
    [1.0, 1.0, -1.0, 1.0, 2.0, -2.0, 0.5, 0.5, -1.0, 1.0, 0.0, 0.25, -0.25, 1.0, -1.0, 0.5],
    [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0],
    [3.0, -3.0, 1.0, 2.0, -5.0, 0.5, 0.25, 1.0, 0.0, -1.0, 2.5, -0.5, 0.125, 1.5, -2.0, 0.75],
    [1.0, 1.0, -1.0, 1.0, 2.0, -2.0, 0.5, 0.5, -1.0, 1.0, 0.0, 0.25, -0.25, 1.0, -1.0, 0.5]]> : tensor<5x16xf32>
  %r = arith.constant dense<[[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]> : tensor<16x16xf32>
  %xd = tensor.cast %x : tensor<5x16xf32> to tensor<?x16xf32>
  %y = swan.rotate %xd by %r : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x16xf32>
  %v, %i = swan.winnow %y keep %c3 : tensor<?x16xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  // x's -5, 3 and -3 sit at 11, 15 and 14 of y.
  // CHECK: ( 11, 14, 15 )
  // CHECK-NEXT: ( -5, -3, 3 )
  call @print_row(%v, %i, %c0) : (tensor<?x?xf16>, tensor<?x?xi8>, index) -> ()
  // -2 and 2 at 10 and 11, then the first magnitude-1 entry of y, at 1.
  // CHECK-NEXT: ( 1, 10, 11 )
  // CHECK-NEXT: ( -1, -2, 2 )
  call @print_row(%v, %i, %c1) : (tensor<?x?xf16>, tensor<?x?xi8>, index) -> ()
  // CHECK-NEXT: ( 0, 1, 2 )
  // CHECK-NEXT: ( -1, 1, -1 )
  call @print_row(%v, %i, %c2) : (tensor<?x?xf16>, tensor<?x?xi8>, index) -> ()
  // CHECK-NEXT: ( 11, 14, 15 )
  // CHECK-NEXT: ( -5, -3, 3 )
  call @print_row(%v, %i, %c3) : (tensor<?x?xf16>, tensor<?x?xi8>, index) -> ()
  // CHECK-NEXT: ( 1, 10, 11 )
  // CHECK-NEXT: ( -1, -2, 2 )
  call @print_row(%v, %i, %c4) : (tensor<?x?xf16>, tensor<?x?xi8>, index) -> ()
  return
}
