// RUN: swan-opt %s --swan-lower-to-llvm | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s
// RUN: swan-opt %s --swan-lower-to-llvm="vector-width=8" | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s
// RUN: swan-opt %s --swan-lower-to-llvm="vector-width=4" | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s

// Winnow keeps the k entries of largest magnitude, ties to the lower index,
// in ascending index order; i8 indices are unsigned (D = 256).

func.func @print_row(%v: tensor<?x?xf32>, %i: tensor<?x?xi8>, %row: index) {
  %c0 = arith.constant 0 : index
  %pad = arith.constant 0.0 : f32
  %ipad = arith.constant 0 : i8
  %vals = vector.transfer_read %v[%row, %c0], %pad {in_bounds = [true]} : tensor<?x?xf32>, vector<3xf32>
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
  %x = arith.constant dense<[
    [3.0, -3.0, 1.0, 2.0, -5.0, 0.5, 0.25, 1.0, 0.0, -1.0, 2.5, -0.5, 0.125, 1.5, -2.0, 0.75],
    [1.0, 1.0, -1.0, 1.0, 2.0, -2.0, 0.5, 0.5, -1.0, 1.0, 0.0, 0.25, -0.25, 1.0, -1.0, 0.5],
    [1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
  ]> : tensor<3x16xf32>
  %v, %i = swan.winnow %x keep %c3 : tensor<3x16xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  // Largest magnitudes 5, 3 and -3: positions 0, 1, 4.
  // CHECK: ( 0, 1, 4 )
  // CHECK-NEXT: ( 3, -3, -5 )
  call @print_row(%v, %i, %c0) : (tensor<?x?xf32>, tensor<?x?xi8>, index) -> ()
  // 2 and -2 at 4 and 5, then the first of the tied ones, at 0.
  // CHECK-NEXT: ( 0, 4, 5 )
  // CHECK-NEXT: ( 1, 2, -2 )
  call @print_row(%v, %i, %c1) : (tensor<?x?xf32>, tensor<?x?xi8>, index) -> ()
  // All tied: the three lowest positions.
  // CHECK-NEXT: ( 0, 1, 2 )
  // CHECK-NEXT: ( 1, -1, 1 )
  call @print_row(%v, %i, %c2) : (tensor<?x?xf32>, tensor<?x?xi8>, index) -> ()

  // A 256-wide row: positions above 127 survive the i8 round trip.
  %base = arith.constant dense<0.5> : tensor<1x256xf32>
  %c7 = arith.constant 7 : index
  %c200 = arith.constant 200 : index
  %c255 = arith.constant 255 : index
  %big = arith.constant 7.0 : f32
  %bigger = arith.constant -9.0 : f32
  %small = arith.constant 0.75 : f32
  %w0 = tensor.insert %big into %base[%c0, %c200] : tensor<1x256xf32>
  %w1 = tensor.insert %bigger into %w0[%c0, %c255] : tensor<1x256xf32>
  %w2 = tensor.insert %small into %w1[%c0, %c7] : tensor<1x256xf32>
  %wv, %wi = swan.winnow %w2 keep %c3 : tensor<1x256xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  // CHECK-NEXT: ( 7, 200, 255 )
  // CHECK-NEXT: ( 0.75, 7, -9 )
  call @print_row(%wv, %wi, %c0) : (tensor<?x?xf32>, tensor<?x?xi8>, index) -> ()
  return
}
