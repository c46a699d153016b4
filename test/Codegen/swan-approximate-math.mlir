// RUN: swan-opt %s --swan-approximate-math | FileCheck %s

// f32 exp, scalar or vector, becomes a polynomial (range reduction with
// floor, then FMAs) that stays in vector registers; other math is left to
// LLVM.

// CHECK-LABEL: func.func @exp
// CHECK-SAME: (%[[X:.*]]: vector<16xf32>, %[[Y:.*]]: f32, %[[Z:.*]]: f64)
// CHECK-NOT: math.exp %[[X]]
// CHECK: math.floor %{{.*}} : vector<16xf32>
// CHECK: math.fma %{{.*}} : vector<16xf32>
// CHECK-NOT: math.exp %[[Y]]
// CHECK: math.floor %{{.*}} : f32
// CHECK: math.exp %[[Z]] : f64
// CHECK: math.sqrt %[[X]] : vector<16xf32>
func.func @exp(%x: vector<16xf32>, %y: f32, %z: f64)
    -> (vector<16xf32>, f32, f64, vector<16xf32>) {
  %a = math.exp %x : vector<16xf32>
  %b = math.exp %y : f32
  %c = math.exp %z : f64
  %d = math.sqrt %x : vector<16xf32>
  return %a, %b, %c, %d : vector<16xf32>, f32, f64, vector<16xf32>
}
