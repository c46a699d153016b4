// RUN: swan-opt %s -swan-fuse-rotate-winnow -split-input-file | FileCheck %s

// CHECK-LABEL: func.func @fuses_lone_rotation
// CHECK-SAME: (%[[X:.*]]: tensor<?x128xf32>, %[[R:.*]]: tensor<128x128xf32>, %[[K:.*]]: index)
// CHECK-NOT: swan.rotate
// CHECK: %[[V:.*]], %[[I:.*]] = swan.compress %[[X]] by %[[R]] keep %[[K]] : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
// CHECK-NOT: swan.winnow
// CHECK: return %[[V]], %[[I]]
func.func @fuses_lone_rotation(%x: tensor<?x128xf32>, %r: tensor<128x128xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x?xi8>) {
  %y = swan.rotate %x by %r : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x128xf32>
  %v, %i = swan.winnow %y keep %k : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf16>, tensor<?x?xi8>
}

// -----

// The rotated rows are needed elsewhere: fusing would compute them twice.
// CHECK-LABEL: func.func @keeps_shared_rotation
// CHECK: %[[Y:.*]] = swan.rotate
// CHECK: swan.winnow %[[Y]]
// CHECK-NOT: swan.compress
func.func @keeps_shared_rotation(%x: tensor<?x64xf32>, %r: tensor<64x64xf32>, %k: index)
    -> (tensor<?x64xf32>, tensor<?x?xf32>, tensor<?x?xi8>) {
  %y = swan.rotate %x by %r : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
  %v, %i = swan.winnow %y keep %k : tensor<?x64xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return %y, %v, %i : tensor<?x64xf32>, tensor<?x?xf32>, tensor<?x?xi8>
}

// -----

// A winnow of anything but a rotation is left alone.
// CHECK-LABEL: func.func @leaves_plain_winnow
// CHECK: swan.winnow
// CHECK-NOT: swan.compress
func.func @leaves_plain_winnow(%x: tensor<?x64xf32>, %k: index) -> (tensor<?x?xf32>, tensor<?x?xi8>) {
  %v, %i = swan.winnow %x keep %k : tensor<?x64xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return %v, %i : tensor<?x?xf32>, tensor<?x?xi8>
}

// -----

// The winnow's encoding carries over to the fused op.
// CHECK-LABEL: func.func @keeps_mask_encoding
// CHECK: swan.compress %{{[^ ,)]+}} by %{{[^ ,)]+}} keep %{{[^ ,)]+}} encoding = mask : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x?xf16>, tensor<?x8xi8>
func.func @keeps_mask_encoding(%x: tensor<?x64xf32>, %r: tensor<64x64xf32>, %k: index)
    -> (tensor<?x?xf16>, tensor<?x8xi8>) {
  %y = swan.rotate %x by %r : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
  %v, %m = swan.winnow %y keep %k encoding = mask : tensor<?x64xf32> -> tensor<?x?xf16>, tensor<?x8xi8>
  return %v, %m : tensor<?x?xf16>, tensor<?x8xi8>
}

// -----

// int8 values keep their scales through the fusion.
// CHECK-LABEL: func.func @fuses_int8_winnow
// CHECK: %{{.*}}, %{{.*}}, %{{.*}} = swan.compress %{{.*}} by %{{.*}} keep %{{.*}} : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>
func.func @fuses_int8_winnow(%x: tensor<?x64xf32>, %r: tensor<64x64xf32>, %k: index)
    -> (tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>) {
  %y = swan.rotate %x by %r : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
  %v, %i, %s = swan.winnow %y keep %k : tensor<?x64xf32> -> tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>
  return %v, %i, %s : tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>
}
