// RUN: swan-opt %s -canonicalize -split-input-file | FileCheck %s

// Keeping all D components keeps the row itself, at positions 0..D-1.
// CHECK-LABEL: func.func @winnow_keeping_everything
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>)
// CHECK-NOT: swan.winnow
// CHECK: %[[C0:.*]] = arith.constant 0 : index
// CHECK: %[[N:.*]] = tensor.dim %[[X]], %[[C0]]
// CHECK: %[[IDX:.*]] = tensor.generate %[[N]]
// CHECK: ^bb0(%{{.*}}: index, %[[J:.*]]: index):
// CHECK:   %[[POS:.*]] = arith.index_cast %[[J]] : index to i8
// CHECK:   tensor.yield %[[POS]] : i8
// CHECK: return %[[X]], %[[IDX]] : tensor<?x64xf32>, tensor<?x64xi8>
func.func @winnow_keeping_everything(%x: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x64xi8>) {
  %k = arith.constant 64 : index
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x64xf32>, tensor<?x64xi8>
  return %v, %i : tensor<?x64xf32>, tensor<?x64xi8>
}

// -----

// A result type with a dynamic kept count gets a cast of the input.
// CHECK-LABEL: func.func @winnow_keeping_everything_dynamic_result
// CHECK-SAME: (%[[X:.*]]: tensor<4x8xf16>)
// CHECK: %[[CAST:.*]] = tensor.cast %[[X]] : tensor<4x8xf16> to tensor<4x?xf16>
// CHECK: %[[GEN:.*]] = tensor.generate
// CHECK: } : tensor<4x8xi16>
// CHECK: %[[IDX:.*]] = tensor.cast %[[GEN]] : tensor<4x8xi16> to tensor<4x?xi16>
// CHECK: return %[[CAST]], %[[IDX]]
func.func @winnow_keeping_everything_dynamic_result(%x: tensor<4x8xf16>) -> (tensor<4x?xf16>, tensor<4x?xi16>) {
  %k = arith.constant 8 : index
  %v, %i = swan.winnow %x keep %k : tensor<4x8xf16> -> tensor<4x?xf16>, tensor<4x?xi16>
  return %v, %i : tensor<4x?xf16>, tensor<4x?xi16>
}

// -----

// Fewer than D components: a real winnow stays.
// CHECK-LABEL: func.func @winnow_keeping_fewer
// CHECK: swan.winnow
func.func @winnow_keeping_fewer(%x: tensor<?x64xf32>) -> (tensor<?x63xf32>, tensor<?x63xi8>) {
  %k = arith.constant 63 : index
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x63xf32>, tensor<?x63xi8>
  return %v, %i : tensor<?x63xf32>, tensor<?x63xi8>
}

// -----

// Storing in a narrower type still converts every value: the winnow stays.
// CHECK-LABEL: func.func @winnow_keeping_everything_narrowing
// CHECK: swan.winnow
func.func @winnow_keeping_everything_narrowing(%x: tensor<?x64xf32>) -> (tensor<?x64xf16>, tensor<?x64xi8>) {
  %k = arith.constant 64 : index
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x64xf16>, tensor<?x64xi8>
  return %v, %i : tensor<?x64xf16>, tensor<?x64xi8>
}

// -----

// A run-time k is not known to be D.
// CHECK-LABEL: func.func @winnow_dynamic_k
// CHECK: swan.winnow
func.func @winnow_dynamic_k(%x: tensor<?x64xf32>, %k: index) -> (tensor<?x?xf32>, tensor<?x?xi8>) {
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf32>, tensor<?x?xi8>
}
