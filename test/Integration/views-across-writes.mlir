// RUN: swan-opt %s --swan-lower-to-llvm | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s

// Several kernels in one function read the same tensor through read-only
// views (bufferization.to_buffer). Here a partial_attention reads the first
// winnow's values and masks, a second winnow runs, and a second
// partial_attention reads the first winnow's results again. The second
// winnow's masks have the same type as the first's and may be written in
// place of a dead tensor; if the two views were merged before bufferization
// (CSE), the second read would look as if it happened before that write and
// see the second winnow's masks instead (3.89636 in lane 0). The pipeline
// runs CSE only after bufferization.
// CHECK: ( 0, 5, 0, 0, -1.10364, 0, 0, 0, 0, -7, 0, 0, 0.735759, 0, 0, 0 )
// CHECK-NEXT: ( 0, 5, 0, 0, -1.10364, 0, 0, 0, 0, -7, 0, 0, 0.735759, 0, 0, 0 )

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %one = arith.constant 1.0 : f32
  %zero8 = arith.constant 0 : i8

  // Row 0 keeps dimensions 1 and 9 (bytes 0b10, 0b10), row 1 keeps 4 and
  // 12 (tied magnitudes go to the lower index: 12 beats 13), values in
  // ascending dimension order.
  %x = arith.constant dense<[
      [0.0, 5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -7.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
      [0.0, 0.0, 0.0, 0.0, -3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 0.0, 0.0]]> : tensor<2x16xf32>
  %v, %m = swan.winnow %x keep %c2 encoding = mask
      : tensor<2x16xf32> -> tensor<2x2xf16>, tensor<2x2xi8>
  %m0 = vector.transfer_read %m[%c0, %c0], %zero8 {in_bounds = [true]} : tensor<2x2xi8>, vector<2xi8>
  %m1 = vector.transfer_read %m[%c1, %c0], %zero8 {in_bounds = [true]} : tensor<2x2xi8>, vector<2xi8>
  vector.print %m0 : vector<2xi8>
  vector.print %m1 : vector<2xi8>
  %h0 = arith.constant 0.0 : f16
  %v0 = vector.transfer_read %v[%c0, %c0], %h0 {in_bounds = [true]} : tensor<2x2xf16>, vector<2xf16>
  %v1 = vector.transfer_read %v[%c1, %c0], %h0 {in_bounds = [true]} : tensor<2x2xf16>, vector<2xf16>
  %w0 = arith.extf %v0 : vector<2xf16> to vector<2xf32>
  %w1 = arith.extf %v1 : vector<2xf16> to vector<2xf32>
  vector.print %w0 : vector<2xf32>
  vector.print %w1 : vector<2xf32>

  // Two tokens against q' = e0 with scores 2 and 1 (winnowed keys, k = 1);
  // their values are the rows just winnowed. acc = v0 + e^-1 · v1 with
  // v0 = 5 e1 - 7 e9 and v1 = -3 e4 + 2 e12.
  %q = arith.constant dense<[[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]> : tensor<1x16xf32>
  %kv = arith.constant dense<[[2.0], [1.0]]> : tensor<2x1xf32>
  %ki = arith.constant dense<[[0], [0]]> : tensor<2x1xi8>
  %mx, %l, %a = swan.partial_attention %q, scale %one
      keys(%kv : tensor<2x1xf32>, indices %ki : tensor<2x1xi8>)
      values(%v : tensor<2x2xf16>, indices %m : tensor<2x2xi8>) value_encoding = mask
      : tensor<1x16xf32> -> tensor<1xf32>, tensor<1x16xf32>
  %mv = vector.transfer_read %mx[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %lv = vector.transfer_read %l[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %av = vector.transfer_read %a[%c0, %c0], %one {in_bounds = [true]} : tensor<1x16xf32>, vector<16xf32>
  vector.print %mv : vector<1xf32>
  vector.print %lv : vector<1xf32>
  vector.print %av : vector<16xf32>

  %dk = arith.constant dense<[
      [2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
      [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]> : tensor<2x16xf32>
  %kw, %kmask = swan.winnow %dk keep %c1 encoding = mask
      : tensor<2x16xf32> -> tensor<2x1xf32>, tensor<2x2xi8>
  %mx3, %l3, %a3 = swan.partial_attention %q, scale %one
      keys(%kw : tensor<2x1xf32>, indices %kmask : tensor<2x2xi8>)
      values(%v : tensor<2x2xf16>, indices %m : tensor<2x2xi8>) key_encoding = mask value_encoding = mask
      : tensor<1x16xf32> -> tensor<1xf32>, tensor<1x16xf32>
  %av3 = vector.transfer_read %a3[%c0, %c0], %one {in_bounds = [true]} : tensor<1x16xf32>, vector<16xf32>
  vector.print %av3 : vector<16xf32>
  return
}
