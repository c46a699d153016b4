// RUN: swan-opt %s --swan-convert-to-gpu --split-input-file -verify-diagnostics

func.func @group_not_power_of_two(%q: memref<1x6x64xf32>, %scale: f32,
    %rk: memref<2x64x64xf32>, %kv: memref<1x2x?x?xf16>, %ki: memref<1x2x?x?xi8>,
    %bk: memref<1x2x?x64xf16>, %sl: memref<1xi32>, %out: memref<1x6x64xf32>) {
  %qt = bufferization.to_tensor %q restrict : memref<1x6x64xf32> to tensor<1x6x64xf32>
  %rkt = bufferization.to_tensor %rk restrict : memref<2x64x64xf32> to tensor<2x64x64xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<1x2x?x?xf16> to tensor<1x2x?x?xf16>
  %kit = bufferization.to_tensor %ki restrict : memref<1x2x?x?xi8> to tensor<1x2x?x?xi8>
  %bkt = bufferization.to_tensor %bk restrict : memref<1x2x?x64xf16> to tensor<1x2x?x64xf16>
  %slt = bufferization.to_tensor %sl restrict : memref<1xi32> to tensor<1xi32>
  // expected-error @+1 {{the GPU kernels need a group size that is a power of two, at most 32; got 3}}
  %o = swan.decode_attention %qt, scale %scale
      rotations(%rkt, %rkt : tensor<2x64x64xf32>)
      sparse_keys(%kvt, %kit : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      sparse_values(%kvt, %kit : tensor<1x2x?x?xf16>, tensor<1x2x?x?xi8>)
      buffer(%bkt, %bkt : tensor<1x2x?x64xf16>)
      lengths(%slt, %slt : tensor<1xi32>)
      group_size = 3 : tensor<1x6x64xf32> -> tensor<1x6x64xf32>
  bufferization.materialize_in_destination %o in restrict writable %out
      : (tensor<1x6x64xf32>, memref<1x6x64xf32>) -> ()
  return
}

// -----

func.func @result_not_written_to_an_argument(%x: memref<?x64xf32>, %r: memref<64x64xf32>) -> tensor<?x64xf32> {
  %xt = bufferization.to_tensor %x restrict : memref<?x64xf32> to tensor<?x64xf32>
  %rt = bufferization.to_tensor %r restrict : memref<64x64xf32> to tensor<64x64xf32>
  // expected-error @+1 {{operands must come from the entry point's arguments and results must be written to them}}
  %y = swan.rotate %xt by %rt : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

func.func @dynamic_head_dim(%x: memref<?x?xf32>, %r: memref<?x?xf32>, %out: memref<?x?xf32>) {
  %xt = bufferization.to_tensor %x restrict : memref<?x?xf32> to tensor<?x?xf32>
  %rt = bufferization.to_tensor %r restrict : memref<?x?xf32> to tensor<?x?xf32>
  // expected-error @+1 {{the GPU kernel needs a static head dim}}
  %y = swan.rotate %xt by %rt : tensor<?x?xf32>, tensor<?x?xf32> -> tensor<?x?xf32>
  bufferization.materialize_in_destination %y in restrict writable %out
      : (tensor<?x?xf32>, memref<?x?xf32>) -> ()
  return
}

// -----

// Mask-encoded rows are read as 32-bit words, one dimension per lane.
func.func @masked_values_need_a_multiple_of_32(%q: memref<1x4x48xf32>, %scale: f32,
    %rk: memref<1x48x48xf32>, %kv: memref<1x1x?x?xf16>, %ki: memref<1x1x?x?xi8>,
    %vm: memref<1x1x?x6xi8>, %bk: memref<1x1x?x48xf16>, %sl: memref<1xi32>,
    %out: memref<1x4x48xf32>) {
  %qt = bufferization.to_tensor %q restrict : memref<1x4x48xf32> to tensor<1x4x48xf32>
  %rkt = bufferization.to_tensor %rk restrict : memref<1x48x48xf32> to tensor<1x48x48xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<1x1x?x?xf16> to tensor<1x1x?x?xf16>
  %kit = bufferization.to_tensor %ki restrict : memref<1x1x?x?xi8> to tensor<1x1x?x?xi8>
  %vmt = bufferization.to_tensor %vm restrict : memref<1x1x?x6xi8> to tensor<1x1x?x6xi8>
  %bkt = bufferization.to_tensor %bk restrict : memref<1x1x?x48xf16> to tensor<1x1x?x48xf16>
  %slt = bufferization.to_tensor %sl restrict : memref<1xi32> to tensor<1xi32>
  // expected-error @+1 {{the GPU kernels read occupancy masks as 32-bit words, one dimension per lane: the head dim must be a multiple of 32; got 48}}
  %o = swan.decode_attention %qt, scale %scale
      rotations(%rkt, %rkt : tensor<1x48x48xf32>)
      sparse_keys(%kvt, %kit : tensor<1x1x?x?xf16>, tensor<1x1x?x?xi8>)
      sparse_values(%kvt, %vmt : tensor<1x1x?x?xf16>, tensor<1x1x?x6xi8>)
      buffer(%bkt, %bkt : tensor<1x1x?x48xf16>)
      lengths(%slt, %slt : tensor<1xi32>)
      group_size = 4 value_encoding = mask : tensor<1x4x48xf32> -> tensor<1x4x48xf32>
  bufferization.materialize_in_destination %o in restrict writable %out
      : (tensor<1x4x48xf32>, memref<1x4x48xf32>) -> ()
  return
}

// -----

func.func @masked_compress_needs_a_multiple_of_32(%x: memref<?x48xf32>, %r: memref<48x48xf32>, %k: index,
    %v: memref<?x?xf16>, %m: memref<?x6xi8>) {
  %xt = bufferization.to_tensor %x restrict : memref<?x48xf32> to tensor<?x48xf32>
  %rt = bufferization.to_tensor %r restrict : memref<48x48xf32> to tensor<48x48xf32>
  // expected-error @+1 {{the GPU kernels read occupancy masks as 32-bit words, one dimension per lane: the head dim must be a multiple of 32; got 48}}
  %vals, %mask = swan.compress %xt by %rt keep %k encoding = mask : tensor<?x48xf32>, tensor<48x48xf32> -> tensor<?x?xf16>, tensor<?x6xi8>
  bufferization.materialize_in_destination %vals in restrict writable %v
      : (tensor<?x?xf16>, memref<?x?xf16>) -> ()
  bufferization.materialize_in_destination %mask in restrict writable %m
      : (tensor<?x6xi8>, memref<?x6xi8>) -> ()
  return
}

// -----

func.func @int8_winnowed_storage(%x: memref<?x64xf32>, %r: memref<64x64xf32>, %k: index,
    %v: memref<?x?xi8>, %i: memref<?x?xi8>, %s: memref<?xf32>) {
  %xt = bufferization.to_tensor %x restrict : memref<?x64xf32> to tensor<?x64xf32>
  %rt = bufferization.to_tensor %r restrict : memref<64x64xf32> to tensor<64x64xf32>
  // expected-error @+1 {{int8 winnowed storage (SWAN-Q8) has no GPU kernel yet; the CPU pipeline lowers it}}
  %vt, %it, %st = swan.compress %xt by %rt keep %k
      : tensor<?x64xf32>, tensor<64x64xf32> -> tensor<?x?xi8>, tensor<?x?xi8>, tensor<?xf32>
  bufferization.materialize_in_destination %vt in restrict writable %v
      : (tensor<?x?xi8>, memref<?x?xi8>) -> ()
  bufferization.materialize_in_destination %it in restrict writable %i
      : (tensor<?x?xi8>, memref<?x?xi8>) -> ()
  bufferization.materialize_in_destination %st in restrict writable %s
      : (tensor<?xf32>, memref<?xf32>) -> ()
  return
}
