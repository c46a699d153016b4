// RUN: swan-opt %s | swan-opt | FileCheck %s

// CHECK-LABEL: func.func @rotate_then_winnow
// CHECK-SAME: (%[[X:.*]]: tensor<?x128xf32>, %[[R:.*]]: tensor<128x128xf32>, %[[K:.*]]: index)
func.func @rotate_then_winnow(%x: tensor<?x128xf32>, %r: tensor<128x128xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x?xi8>) {
  // CHECK: %[[Y:.*]] = swan.rotate %[[X]] by %[[R]] : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
  %y = swan.rotate %x by %r : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
  // CHECK: swan.winnow %[[Y]] keep %[[K]] : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  %v, %i = swan.winnow %y keep %k : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf16>, tensor<?x?xi8>
}
