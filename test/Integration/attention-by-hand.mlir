// RUN: swan-opt %s --swan-lower-to-llvm="num-splits=2" | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s
// RUN: swan-opt %s --swan-lower-to-llvm="num-splits=3 tile-size=1 vector-width=8" | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_lib_dir/libmlir_c_runner_utils.so,%mlir_lib_dir/libmlir_runner_utils.so | FileCheck %s

// Attention small enough to check by hand, through the whole CPU pipeline.

func.func @print_row(%t: tensor<?x16xf32>, %row: index) {
  %c0 = arith.constant 0 : index
  %pad = arith.constant 0.0 : f32
  %v = vector.transfer_read %t[%row, %c0], %pad {in_bounds = [true]} : tensor<?x16xf32>, vector<16xf32>
  vector.print %v : vector<16xf32>
  return
}

func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %one = arith.constant 1.0 : f32

  // Two winnowed tokens (k = 1) against q' = e0: scores 2 and 1.
  // max = 2, sum = 1 + e^-1, acc = e^0 · v0 + e^-1 · v1 with v0 = e3, v1 = e5.
  %q = arith.constant dense<[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]> : tensor<16xf32>
  %q1 = tensor.expand_shape %q [[0, 1]] output_shape [1, 16] : tensor<16xf32> into tensor<1x16xf32>
  %kv = arith.constant dense<[[2.0], [1.0]]> : tensor<2x1xf32>
  %ki = arith.constant dense<[[0], [0]]> : tensor<2x1xi8>
  %vv = arith.constant dense<[[1.0], [1.0]]> : tensor<2x1xf16>
  %vi = arith.constant dense<[[3], [5]]> : tensor<2x1xi8>
  %m, %l, %a = swan.partial_attention %q1, scale %one
      keys(%kv : tensor<2x1xf32>, indices %ki : tensor<2x1xi8>)
      values(%vv : tensor<2x1xf16>, indices %vi : tensor<2x1xi8>)
      : tensor<1x16xf32> -> tensor<1xf32>, tensor<1x16xf32>
  %mv = vector.transfer_read %m[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %lv = vector.transfer_read %l[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  // CHECK: ( 2 )
  // CHECK-NEXT: ( 1.36788 )
  // CHECK-NEXT: ( 0, 0, 0, 1, 0, 0.367879, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 )
  vector.print %mv : vector<1xf32>
  vector.print %lv : vector<1xf32>
  %ad = tensor.cast %a : tensor<1x16xf32> to tensor<?x16xf32>
  call @print_row(%ad, %c0) : (tensor<?x16xf32>, index) -> ()

  // An empty block: max = -inf, sum = 0, acc = 0.
  %ek = arith.constant dense<1.0> : tensor<0x4xf16>
  %ei = arith.constant dense<0> : tensor<0x4xi8>
  %em, %el, %ea = swan.partial_attention %q1, scale %one
      keys(%ek : tensor<0x4xf16>, indices %ei : tensor<0x4xi8>)
      values(%ek : tensor<0x4xf16>, indices %ei : tensor<0x4xi8>)
      : tensor<1x16xf32> -> tensor<1xf32>, tensor<1x16xf32>
  %emv = vector.transfer_read %em[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  %elv = vector.transfer_read %el[%c0], %one {in_bounds = [true]} : tensor<1xf32>, vector<1xf32>
  // CHECK-NEXT: ( -inf )
  // CHECK-NEXT: ( 0 )
  // CHECK-NEXT: ( 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 )
  vector.print %emv : vector<1xf32>
  vector.print %elv : vector<1xf32>
  %ead = tensor.cast %ea : tensor<1x16xf32> to tensor<?x16xf32>
  call @print_row(%ead, %c0) : (tensor<?x16xf32>, index) -> ()

  // Merge of three blocks; the empty one (sum 0, accumulator NaN) is
  // ignored: (e^0 · 1 · e0 + e^-1 · 2 · e1) / (1 + 2 e^-1).
  %max = arith.constant dense<[[2.0], [0xFF800000], [1.0]]> : tensor<3x1xf32>
  %sum = arith.constant dense<[[1.0], [0.0], [2.0]]> : tensor<3x1xf32>
  %acc = arith.constant dense<[[[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], [[0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000, 0x7FC00000]], [[0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]]> : tensor<3x1x16xf32>
  %o = swan.merge_attention %max, %sum, %acc : tensor<3x1xf32>, tensor<3x1x16xf32> -> tensor<1x16xf32>
  // CHECK-NEXT: ( 0.576117, 0.423883, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 )
  %od = tensor.cast %o : tensor<1x16xf32> to tensor<?x16xf32>
  call @print_row(%od, %c0) : (tensor<?x16xf32>, index) -> ()

  // Decode attention, B = 1, H = 1, G = 2. R_K swaps dimensions 0 and 1,
  // so q'_0 = e1 and q'_1 = e0. Sparse cache: 2 valid tokens of 3 (the
  // third would dominate if it were read), keys e0 and e1, values 2 e2 and
  // 4 e3; buffer: 1 valid token of 2, key (e0 + e1) / 2, value 8 e5.
  // Head 0 scores (0, 1, 0.5), head 1 scores (1, 0, 0.5).
  %rk = arith.constant dense<[[[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]]> : tensor<1x16x16xf32>
  %rv = arith.constant dense<[[[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]]> : tensor<1x16x16xf32>
  %qd = arith.constant dense<[[[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]]> : tensor<1x2x16xf32>
  %skv = arith.constant dense<[[[[1.0], [1.0], [100.0]]]]> : tensor<1x1x3x1xf16>
  %ski = arith.constant dense<[[[[0], [1], [0]]]]> : tensor<1x1x3x1xi8>
  %svv = arith.constant dense<[[[[2.0], [4.0], [1000.0]]]]> : tensor<1x1x3x1xf16>
  %svi = arith.constant dense<[[[[2], [3], [4]]]]> : tensor<1x1x3x1xi8>
  %bk = arith.constant dense<[[[[0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 100.0]]]]> : tensor<1x1x2x16xf16>
  %bv = arith.constant dense<[[[[0.0, 0.0, 0.0, 0.0, 0.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0]]]]> : tensor<1x1x2x16xf16>
  %sl = arith.constant dense<[2]> : tensor<1xi32>
  %bl = arith.constant dense<[1]> : tensor<1xi32>
  %d = swan.decode_attention %qd, scale %one
      rotations(%rk, %rv : tensor<1x16x16xf32>)
      sparse_keys(%skv, %ski : tensor<1x1x3x1xf16>, tensor<1x1x3x1xi8>)
      sparse_values(%svv, %svi : tensor<1x1x3x1xf16>, tensor<1x1x3x1xi8>)
      buffer(%bk, %bv : tensor<1x1x2x16xf16>)
      lengths(%sl, %bl : tensor<1xi32>)
      group_size = 2 : tensor<1x2x16xf32> -> tensor<1x2x16xf32>
  %dd = tensor.collapse_shape %d [[0, 1], [2]] : tensor<1x2x16xf32> into tensor<2x16xf32>
  %ddd = tensor.cast %dd : tensor<2x16xf32> to tensor<?x16xf32>
  // CHECK-NEXT: ( 0, 0, 0.37264{{[0-9]*}}, 2.0259{{[0-9]*}}, 0, 2.4575{{[0-9]*}}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 )
  // CHECK-NEXT: ( 0, 0, 1.0129{{[0-9]*}}, 0.74529{{[0-9]*}}, 0, 2.4575{{[0-9]*}}, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 )
  call @print_row(%ddd, %c0) : (tensor<?x16xf32>, index) -> ()
  call @print_row(%ddd, %c1) : (tensor<?x16xf32>, index) -> ()
  return
}
