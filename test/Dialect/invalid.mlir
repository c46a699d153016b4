// RUN: swan-opt %s -split-input-file -verify-diagnostics

// One case for every diagnostic of the swan verifiers.

func.func @f(%x: tensor<8xf32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op input must have rank 2, got rank 1}}
  %y = swan.rotate %x by %r : tensor<8xf32>, tensor<8x8xf32> -> tensor<8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %r: tensor<1x8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op rotation must have rank 2, got rank 3}}
  %y = swan.rotate %x by %r : tensor<?x8xf32>, tensor<1x8x8xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x4xf32>, %r: tensor<8x4xf32>) {
  // expected-error @+1 {{'swan.rotate' op rotation rows and columns disagree (8 vs 4)}}
  %y = swan.rotate %x by %r : tensor<?x4xf32>, tensor<8x4xf32> -> tensor<?x4xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %r: tensor<4x4xf32>) {
  // expected-error @+1 {{'swan.rotate' op head dimensions of the rotation and the input disagree (4 vs 8)}}
  %y = swan.rotate %x by %r : tensor<?x8xf32>, tensor<4x4xf32> -> tensor<?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op result element type must match the input's}}
  %y = swan.rotate %x by %r : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x8xf16>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op result must have rank 2, got rank 3}}
  %y = swan.rotate %x by %r : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<1x?x8xf32>
  return
}

// -----

func.func @f(%x: tensor<3x8xf32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op shapes of input and result disagree (3 vs 4)}}
  %y = swan.rotate %x by %r : tensor<3x8xf32>, tensor<8x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xi32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.rotate' op operand #0 must be ranked tensor of floating-point values}}
  %y = swan.rotate %x by %r : tensor<?x8xi32>, tensor<8x8xf32> -> tensor<?x8xi32>
  return
}

// -----

func.func @f(%x: tensor<1x?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op input must have rank 2, got rank 3}}
  %v, %i = swan.winnow %x keep %k : tensor<1x?x8xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result values must have rank 2, got rank 1}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?xf32>, tensor<?x?xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result indices must have rank 2, got rank 1}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x?xf32>, tensor<?xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op shapes of result values and indices disagree (4 vs 2)}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x2xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result must keep at least one component}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x0xf32>, tensor<?x0xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result keeps 9 components, more than the head dimension 8}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x9xf32>, tensor<?x9xi8>
  return
}

// -----

func.func @f(%x: tensor<?x512xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result indices of type 'i8' cannot address head dimension 512}}
  %v, %i = swan.winnow %x keep %k : tensor<?x512xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return
}

// -----

func.func @f(%x: tensor<3x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op row counts of input and results disagree (3 vs 5)}}
  %v, %i = swan.winnow %x keep %k : tensor<3x8xf32> -> tensor<5x?xf32>, tensor<5x?xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  %k = arith.constant 0 : index
  // expected-error @+1 {{'swan.winnow' op k = 0 is outside [1, head dimension]}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  %k = arith.constant 9 : index
  // expected-error @+1 {{'swan.winnow' op k = 9 is outside [1, head dimension]}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x?xf32>, tensor<?x?xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>) {
  %k = arith.constant 3 : index
  // expected-error @+1 {{'swan.winnow' op constant k and the results' kept count disagree (3 vs 4)}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x4xf32>, tensor<?x4xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result #1 must be ranked tensor of signless integer values}}
  %v, %i = swan.winnow %x keep %k : tensor<?x8xf32> -> tensor<?x?xf32>, tensor<?x?xf32>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %r: tensor<16x16xf32>, %k: index) {
  // expected-error @+1 {{'swan.compress' op head dimensions of the rotation and the input disagree (16 vs 8)}}
  %v, %i = swan.compress %x by %r keep %k : tensor<?x8xf32>, tensor<16x16xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  return
}

// -----

func.func @f(%x: tensor<?x8xf32>, %r: tensor<8x8xf32>, %k: index) {
  // expected-error @+1 {{'swan.compress' op result keeps 16 components, more than the head dimension 8}}
  %v, %i = swan.compress %x by %r keep %k : tensor<?x8xf32>, tensor<8x8xf32> -> tensor<?x16xf16>, tensor<?x16xi8>
  return
}

// -----

func.func @f(%q: tensor<8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op query must have rank 3, got rank 2}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<8x16xf32> -> tensor<8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<16x16xf32>, %rv: tensor<16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op rotation must have rank 3, got rank 2}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x8xf32>, %rv: tensor<2x16x8xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op rotation rows and columns disagree (16 vs 8)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x8xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x8x8xf32>, %rv: tensor<2x8x8xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op head dimensions of the rotation and the input disagree (8 vs 16)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x8x8xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op sparse key values must have rank 4, got rank 3}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op sparse key indices must have rank 4, got rank 3}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x5x?xf16>, %ki: tensor<1x2x6x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op shapes of sparse key values and indices disagree (5 vs 6)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x5x?xf16>, tensor<1x2x6x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x17xf16>, %ki: tensor<1x2x?x17xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op sparse key keeps 17 components, more than the head dimension 16}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x17xf16>, tensor<1x2x?x17xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x512xf32>, %s: f32, %rk: tensor<2x512x512xf32>, %rv: tensor<2x512x512xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x512xf16>, %bv: tensor<1x2x4x512xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op sparse key indices of type 'i8' cannot address head dimension 512}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x512x512xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x512xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x512xf32> -> tensor<1x8x512xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op sparse value values must have rank 4, got rank 3}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x0xf16>, %vi: tensor<1x2x?x0xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op sparse value must keep at least one component}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x0xf16>, tensor<1x2x?x0xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4xf16>, %bv: tensor<1x2x4xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op buffer must have rank 4, got rank 3}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1x1xi32>, %bl: tensor<1x1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op lengths must have rank 1, got rank 2}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1x1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<2x2x?x?xf16>, %ki: tensor<2x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op batch sizes of query and sparse keys disagree (1 vs 2)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<2x2x?x?xf16>, tensor<2x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<2x2x?x?xf16>, %vi: tensor<2x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op batch sizes of query and sparse values disagree (1 vs 2)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<2x2x?x?xf16>, tensor<2x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<2x2x4x16xf16>, %bv: tensor<2x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op batch sizes of query and buffer disagree (1 vs 2)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<2x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<2xi32>, %bl: tensor<2xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op batch sizes of query and lengths disagree (1 vs 2)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<2xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x3x?x?xf16>, %ki: tensor<1x3x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op KV heads of rotations and sparse keys disagree (2 vs 3)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x3x?x?xf16>, tensor<1x3x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x3x?x?xf16>, %vi: tensor<1x3x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op KV heads of rotations and sparse values disagree (2 vs 3)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x3x?x?xf16>, tensor<1x3x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x3x4x16xf16>, %bv: tensor<1x3x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op KV heads of rotations and buffer disagree (2 vs 3)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x3x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x5x?xf16>, %ki: tensor<1x2x5x?xi8>, %vv: tensor<1x2x6x?xf16>, %vi: tensor<1x2x6x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op token counts of sparse keys and values disagree (5 vs 6)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x5x?xf16>, tensor<1x2x5x?xi8>) sparse_values(%vv, %vi : tensor<1x2x6x?xf16>, tensor<1x2x6x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x8xf16>, %bv: tensor<1x2x4x8xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op head dimensions of query and buffer disagree (16 vs 8)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x8xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op query heads (8) must equal KV heads (2) times group_size (3)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 3 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op result shape must match the query's}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x8xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %rv: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xf16>, %ki: tensor<1x2x?x?xi8>, %vv: tensor<1x2x?x?xf16>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %bv: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>, %bl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op attribute 'group_size' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rv : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>) sparse_values(%vv, %vi : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bv : tensor<1x2x4x16xf16>) lengths(%sl, %bl : tensor<1xi32>)
      group_size = 0 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op query must have rank 2, got rank 1}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op key values must have rank 2, got rank 1}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x3xf16>, %ki: tensor<?x5xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op shapes of key values and indices disagree (3 vs 5)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x3xf16>, indices %ki : tensor<?x5xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<1x?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op value values must have rank 2, got rank 3}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<1x?x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x8xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op head dimensions of query and dense value disagree (16 vs 8)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x8xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<3x?xf16>, %ki: tensor<3x?xi8>, %vv: tensor<5x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op token counts of keys and values disagree (3 vs 5)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<3x?xf16>, indices %ki : tensor<3x?xi8>) values(%vv : tensor<5x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op max must have rank 1, got rank 2}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<4x1xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op accumulator must have rank 2, got rank 1}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op query heads of query and max disagree (4 vs 2)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<2xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op query heads of query and accumulator disagree (4 vs 2)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<2x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op head dimensions of query and accumulator disagree (16 vs 8)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x8xf32>
  return
}

// -----

func.func @f(%m: tensor<4xf32>, %l: tensor<4xf32>, %a: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op max must have rank 2, got rank 1}}
  %o = swan.merge_attention %m, %l, %a : tensor<4xf32>, tensor<?x4x16xf32> -> tensor<4x16xf32>
  return
}

// -----

func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op accumulator must have rank 3, got rank 2}}
  %o = swan.merge_attention %m, %l, %a : tensor<?x4xf32>, tensor<?x4xf32> -> tensor<4x16xf32>
  return
}

// -----

func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op result must have rank 2, got rank 1}}
  %o = swan.merge_attention %m, %l, %a : tensor<?x4xf32>, tensor<?x4x16xf32> -> tensor<16xf32>
  return
}

// -----

func.func @f(%m: tensor<3x4xf32>, %l: tensor<3x4xf32>, %a: tensor<2x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op block counts of max and accumulator disagree (3 vs 2)}}
  %o = swan.merge_attention %m, %l, %a : tensor<3x4xf32>, tensor<2x4x16xf32> -> tensor<4x16xf32>
  return
}

// -----

func.func @f(%m: tensor<?x2xf32>, %l: tensor<?x2xf32>, %a: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op query heads of max and accumulator disagree (2 vs 4)}}
  %o = swan.merge_attention %m, %l, %a : tensor<?x2xf32>, tensor<?x4x16xf32> -> tensor<4x16xf32>
  return
}

// -----

func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op query heads of accumulator and result disagree (4 vs 2)}}
  %o = swan.merge_attention %m, %l, %a : tensor<?x4xf32>, tensor<?x4x16xf32> -> tensor<2x16xf32>
  return
}

// -----

func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op head dimensions of accumulator and result disagree (16 vs 8)}}
  %o = swan.merge_attention %m, %l, %a : tensor<?x4xf32>, tensor<?x4x16xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x16xf32>, %r: tensor<8x8xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op head dimensions of the rotation and the input disagree (8 vs 16)}}
  %o = swan.merge_attention %m, %l, %a rotate_back %r : tensor<?x4xf32>, tensor<?x4x16xf32>, tensor<8x8xf32> -> tensor<4x16xf32>
  return
}

// -----

func.func @f(%m: tensor<?x4xf32>, %l: tensor<?x4xf32>, %a: tensor<?x4x16xf32>, %r: tensor<16xf32>) {
  // expected-error @+1 {{'swan.merge_attention' op rotation must have rank 2, got rank 1}}
  %o = swan.merge_attention %m, %l, %a rotate_back %r : tensor<?x4xf32>, tensor<?x4x16xf32>, tensor<16xf32> -> tensor<4x16xf32>
  return
}

// -----
// The mask encoding of winnowed rows.

func.func @f(%x: tensor<?x128xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result masks must have rank 2, got rank 1}}
  %v, %m = swan.winnow %x keep %k encoding = mask : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?xi8>
  return
}

// -----

func.func @f(%x: tensor<?x128xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result values must have rank 2, got rank 1}}
  %v, %m = swan.winnow %x keep %k encoding = mask : tensor<?x128xf32> -> tensor<?xf16>, tensor<?x16xi8>
  return
}

// -----

func.func @f(%x: tensor<?x128xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op shapes of result values and masks disagree (3 vs 4)}}
  %v, %m = swan.winnow %x keep %k encoding = mask : tensor<?x128xf32> -> tensor<3x?xf16>, tensor<4x16xi8>
  return
}

// -----

func.func @f(%x: tensor<?x128xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result keeps 129 components, more than the head dimension 128}}
  %v, %m = swan.winnow %x keep %k encoding = mask : tensor<?x128xf32> -> tensor<?x129xf16>, tensor<?x16xi8>
  return
}

// -----

func.func @f(%x: tensor<?x128xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result masks must be i8, got 'i16'}}
  %v, %m = swan.winnow %x keep %k encoding = mask : tensor<?x128xf32> -> tensor<?x?xf16>, tensor<?x16xi16>
  return
}

// -----

func.func @f(%x: tensor<?x100xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op bytes per row of result masks disagree (12 vs 13)}}
  %v, %m = swan.winnow %x keep %k encoding = mask : tensor<?x100xf32> -> tensor<?x?xf16>, tensor<?x12xi8>
  return
}

// -----

func.func @f(%x: tensor<?x128xf32>, %r: tensor<128x128xf32>, %k: index) {
  // expected-error @+1 {{'swan.compress' op bytes per row of result masks disagree (32 vs 16)}}
  %v, %m = swan.compress %x by %r keep %k encoding = mask : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x?xf16>, tensor<?x32xi8>
  return
}

// -----

func.func @f(%q: tensor<4x128xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x128xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op dense values have no mask: value_encoding = mask needs winnowed values}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x128xf16>) value_encoding = mask : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  return
}

// -----

func.func @f(%q: tensor<4x128xf32>, %s: f32, %kv: tensor<?x?xf16>, %ki: tensor<?x?xi8>, %vv: tensor<?x?xf16>, %vm: tensor<?x8xi8>) {
  // expected-error @+1 {{'swan.partial_attention' op bytes per row of value masks disagree (8 vs 16)}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x?xf16>, indices %vm : tensor<?x8xi8>) value_encoding = mask : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  return
}

// -----

func.func @f(%q: tensor<1x32x128xf32>, %s: f32, %rk: tensor<8x128x128xf32>, %kv: tensor<1x8x?x?xf16>, %ki: tensor<1x8x?x?xi8>, %vv: tensor<1x8x?x?xf16>, %vm: tensor<1x4x?x16xi8>, %bk: tensor<1x8x128x128xf16>, %sl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op shapes of sparse value values and masks disagree (8 vs 4)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rk : tensor<8x128x128xf32>) sparse_keys(%kv, %ki : tensor<1x8x?x?xf16>, tensor<1x8x?x?xi8>) sparse_values(%vv, %vm : tensor<1x8x?x?xf16>, tensor<1x4x?x16xi8>) buffer(%bk, %bk : tensor<1x8x128x128xf16>) lengths(%sl, %sl : tensor<1xi32>) group_size = 4 value_encoding = mask : tensor<1x32x128xf32> -> tensor<1x32x128xf32>
  return
}

// -----

func.func @f(%q: tensor<4x128xf32>, %s: f32, %kv: tensor<?x128xf16>, %vv: tensor<?x?xf16>, %vi: tensor<?x?xi8>) {
  // expected-error @+1 {{'swan.partial_attention' op dense keys have no mask: key_encoding = mask needs winnowed keys}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x128xf16>) values(%vv : tensor<?x?xf16>, indices %vi : tensor<?x?xi8>) key_encoding = mask : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  return
}

// -----

func.func @f(%q: tensor<4x128xf32>, %s: f32, %kv: tensor<?x?xf16>, %km: tensor<?x?xi32>, %vv: tensor<?x?xf16>, %vi: tensor<?x?xi8>) {
  // expected-error @+1 {{'swan.partial_attention' op key masks must be i8, got 'i32'}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xf16>, indices %km : tensor<?x?xi32>) values(%vv : tensor<?x?xf16>, indices %vi : tensor<?x?xi8>) key_encoding = mask : tensor<4x128xf32> -> tensor<4xf32>, tensor<4x128xf32>
  return
}

// -----

func.func @f(%q: tensor<1x32x128xf32>, %s: f32, %rk: tensor<8x128x128xf32>, %kv: tensor<1x8x?x?xf16>, %km: tensor<1x8x?x8xi8>, %vv: tensor<1x8x?x?xf16>, %vi: tensor<1x8x?x?xi8>, %bk: tensor<1x8x128x128xf16>, %sl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op bytes per row of sparse key masks disagree (8 vs 16)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rk : tensor<8x128x128xf32>) sparse_keys(%kv, %km : tensor<1x8x?x?xf16>, tensor<1x8x?x8xi8>) sparse_values(%vv, %vi : tensor<1x8x?x?xf16>, tensor<1x8x?x?xi8>) buffer(%bk, %bk : tensor<1x8x128x128xf16>) lengths(%sl, %sl : tensor<1xi32>) group_size = 4 key_encoding = mask : tensor<1x32x128xf32> -> tensor<1x32x128xf32>
  return
}

// -----
// SWAN-Q8: int8 winnowed values and their scales.

func.func @f(%x: tensor<?x16xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op int8 result values need a scale per row}}
  %v, %i = swan.winnow %x keep %k : tensor<?x16xf32> -> tensor<?x?xi8>, tensor<?x?xi8>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op result scales need int8 values, got 'f16' values}}
  %v, %i, %s = swan.winnow %x keep %k : tensor<?x16xf32> -> tensor<?x?xf16>, tensor<?x?xi8>, tensor<?xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %r: tensor<16x16xf32>, %k: index) {
  // expected-error @+1 {{'swan.compress' op result scales must have rank 1, got rank 2}}
  %v, %i, %s = swan.compress %x by %r keep %k : tensor<?x16xf32>, tensor<16x16xf32> -> tensor<?x?xi8>, tensor<?x?xi8>, tensor<?x1xf32>
  return
}

// -----

func.func @f(%x: tensor<4x16xf32>, %k: index) {
  // expected-error @+1 {{'swan.winnow' op shapes of result values and scales disagree (4 vs 5)}}
  %v, %i, %s = swan.winnow %x keep %k : tensor<4x16xf32> -> tensor<4x?xi8>, tensor<4x?xi8>, tensor<5xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xi8>, %ki: tensor<?x?xi8>, %vv: tensor<?x16xf16>) {
  // expected-error @+1 {{'swan.partial_attention' op int8 key values need a scale per row}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xi8>, indices %ki : tensor<?x?xi8>) values(%vv : tensor<?x16xf16>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x?xi8>, %ki: tensor<?x?xi8>, %ks: tensor<?xf32>, %vv: tensor<?x16xi8>) {
  // expected-error @+1 {{'swan.partial_attention' op dense values cannot be int8: only winnowed values have a scale per row}}
  %m, %l, %a = swan.partial_attention %q, scale %s keys(%kv : tensor<?x?xi8>, indices %ki : tensor<?x?xi8>, scales %ks : tensor<?xf32>) values(%vv : tensor<?x16xi8>)
      : tensor<4x16xf32> -> tensor<4xf32>, tensor<4x16xf32>
  return
}

// -----

func.func @f(%q: tensor<4x16xf32>, %s: f32, %kv: tensor<?x16xf16>, %ks: tensor<?xf32>, %vv: tensor<?x16xf16>) {
  // expected-error @+2 {{'swan.partial_attention' op dense keys have no scales}}
  // The custom syntax cannot say this; the generic form can.
  %m, %l, %a = "swan.partial_attention"(%q, %s, %kv, %ks, %vv) <{operandSegmentSizes = array<i32: 1, 1, 1, 0, 1, 1, 0, 0>}>
      : (tensor<4x16xf32>, f32, tensor<?x16xf16>, tensor<?xf32>, tensor<?x16xf16>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4x16xf32>)
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xi8>, %ki: tensor<1x2x?x?xi8>, %ks: tensor<1x2x?xf32>, %vv: tensor<1x2x?x?xi8>, %vi: tensor<1x2x?x?xi8>, %bk: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op int8 sparse value values need a scale per row}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rk : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>, scales %ks : tensor<1x2x?xf32>) sparse_values(%vv, %vi : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>)
      buffer(%bk, %bk : tensor<1x2x4x16xf16>) lengths(%sl, %sl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<1x8x16xf32>, %s: f32, %rk: tensor<2x16x16xf32>, %kv: tensor<1x2x?x?xi8>, %ki: tensor<1x2x?x?xi8>, %ks: tensor<1x3x?xf32>, %bk: tensor<1x2x4x16xf16>, %sl: tensor<1xi32>) {
  // expected-error @+1 {{'swan.decode_attention' op shapes of sparse key values and scales disagree (2 vs 3)}}
  %o = swan.decode_attention %q, scale %s rotations(%rk, %rk : tensor<2x16x16xf32>)
      sparse_keys(%kv, %ki : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>, scales %ks : tensor<1x3x?xf32>) sparse_values(%kv, %ki : tensor<1x2x?x?xi8>, tensor<1x2x?x?xi8>, scales %ks : tensor<1x3x?xf32>)
      buffer(%bk, %bk : tensor<1x2x4x16xf16>) lengths(%sl, %sl : tensor<1xi32>)
      group_size = 4 : tensor<1x8x16xf32> -> tensor<1x8x16xf32>
  return
}
