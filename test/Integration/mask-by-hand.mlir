// RUN: swan-opt %s --swan-lower-to-llvm | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s
// RUN: swan-opt %s --swan-lower-to-llvm="tile-size=1 vector-width=8" | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s
// Both ways of expanding a mask-encoded row, whatever the host: byte
// shuffles (x86 only) and LLVM's expanding loads.
// RUN: %if x86 %{ swan-opt %s --swan-lower-to-llvm="expand-with=pshufb" | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s %}
// RUN: swan-opt %s --swan-lower-to-llvm="expand-with=vpexpand vector-width=8" | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s

// The mask encoding of winnowed keys and values, small enough to check by
// hand, through the whole CPU pipeline: winnow writes the occupancy bytes,
// and partial attention places each token's values at its set bits.

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
  // CHECK: ( 2, 2 )
  // CHECK-NEXT: ( 16, 16 )
  // CHECK-NEXT: ( 5, -7 )
  // CHECK-NEXT: ( -3, 2 )
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
  // CHECK-NEXT: ( 2 )
  // CHECK-NEXT: ( 1.36788 )
  // CHECK-NEXT: ( 0, 5, 0, 0, -1.10364, 0, 0, 0, 0, -7, 0, 0, 0.735759, 0, 0, 0 )
  %mv = vector.transfer_read %mx[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %lv = vector.transfer_read %l[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %av = vector.transfer_read %a[%c0, %c0], %one {in_bounds = [true]} : tensor<1x16xf32>, vector<16xf32>
  vector.print %mv : vector<1xf32>
  vector.print %lv : vector<1xf32>
  vector.print %av : vector<16xf32>

  // The same with dense keys (the general kernel): k0 = 2 e0, k1 = e0.
  %dk = arith.constant dense<[
      [2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
      [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]> : tensor<2x16xf32>
  %mx2, %l2, %a2 = swan.partial_attention %q, scale %one
      keys(%dk : tensor<2x16xf32>)
      values(%v : tensor<2x2xf16>, indices %m : tensor<2x2xi8>) value_encoding = mask
      : tensor<1x16xf32> -> tensor<1xf32>, tensor<1x16xf32>
  // CHECK-NEXT: ( 0, 5, 0, 0, -1.10364, 0, 0, 0, 0, -7, 0, 0, 0.735759, 0, 0, 0 )
  %av2 = vector.transfer_read %a2[%c0, %c0], %one {in_bounds = [true]} : tensor<1x16xf32>, vector<16xf32>
  vector.print %av2 : vector<16xf32>

  // The same with the keys winnowed into the mask encoding too (k = 1 keeps
  // dimension 0 of each key: bytes 1, 0).
  %kw, %kmask = swan.winnow %dk keep %c1 encoding = mask
      : tensor<2x16xf32> -> tensor<2x1xf32>, tensor<2x2xi8>
  %mx3, %l3, %a3 = swan.partial_attention %q, scale %one
      keys(%kw : tensor<2x1xf32>, indices %kmask : tensor<2x2xi8>)
      values(%v : tensor<2x2xf16>, indices %m : tensor<2x2xi8>) key_encoding = mask value_encoding = mask
      : tensor<1x16xf32> -> tensor<1xf32>, tensor<1x16xf32>
  // CHECK-NEXT: ( 2 )
  // CHECK-NEXT: ( 1.36788 )
  // CHECK-NEXT: ( 0, 5, 0, 0, -1.10364, 0, 0, 0, 0, -7, 0, 0, 0.735759, 0, 0, 0 )
  %mv3 = vector.transfer_read %mx3[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %lv3 = vector.transfer_read %l3[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %av3 = vector.transfer_read %a3[%c0, %c0], %one {in_bounds = [true]} : tensor<1x16xf32>, vector<16xf32>
  vector.print %mv3 : vector<1xf32>
  vector.print %lv3 : vector<1xf32>
  vector.print %av3 : vector<16xf32>

  // Rows that keep 10 of 16 dimensions (5 in each byte) fill more than one
  // 8-lane window. Two equal tokens: the first row is read in windows that
  // run into the second, the second (the last row) by LLVM's expanding
  // load. The key is the same row, so both scores are q · k = x[1] = -9,
  // the sum is 2 and the accumulator twice the expanded row.
  %y = arith.constant dense<[[0.5, -9.0, 3.0, 0.25, 8.0, -7.0, 0.125, 6.0,
                              1.5, -5.0, 4.0, 0.75, 11.0, -2.0, 10.0, 0.0625],
                             [0.5, -9.0, 3.0, 0.25, 8.0, -7.0, 0.125, 6.0,
                              1.5, -5.0, 4.0, 0.75, 11.0, -2.0, 10.0, 0.0625]]> : tensor<2x16xf32>
  %c10 = arith.constant 10 : index
  %yv, %ym = swan.winnow %y keep %c10 encoding = mask
      : tensor<2x16xf32> -> tensor<2x10xf16>, tensor<2x2xi8>
  %e1 = arith.constant dense<[[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]> : tensor<1x16xf32>
  %mx4, %l4, %a4 = swan.partial_attention %e1, scale %one
      keys(%yv : tensor<2x10xf16>, indices %ym : tensor<2x2xi8>)
      values(%yv : tensor<2x10xf16>, indices %ym : tensor<2x2xi8>) key_encoding = mask value_encoding = mask
      : tensor<1x16xf32> -> tensor<1xf32>, tensor<1x16xf32>
  // CHECK-NEXT: ( -9 )
  // CHECK-NEXT: ( 2 )
  // CHECK-NEXT: ( 0, -18, 6, 0, 16, -14, 0, 12, 0, -10, 8, 0, 22, -4, 20, 0 )
  %mv4 = vector.transfer_read %mx4[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %lv4 = vector.transfer_read %l4[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %av4 = vector.transfer_read %a4[%c0, %c0], %one {in_bounds = [true]} : tensor<1x16xf32>, vector<16xf32>
  vector.print %mv4 : vector<1xf32>
  vector.print %lv4 : vector<1xf32>
  vector.print %av4 : vector<16xf32>
  return
}
