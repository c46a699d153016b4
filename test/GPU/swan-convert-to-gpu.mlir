// RUN: swan-opt %s --swan-convert-to-gpu | FileCheck %s

// The host entry points are replaced by kernels in one gpu.module.
// CHECK: module attributes {gpu.container_module}
// CHECK-NOT: func.func
// CHECK-LABEL: gpu.module @swan_kernels

// compress: one block per token, one thread per dimension; the rotated row
// and the keep flags live in shared memory, and every walk over them (the
// rotation, the rank, the position) reads four words per access.
// CHECK-LABEL: gpu.func @compress
// CHECK-SAME: %{{.*}}: index, %{{.*}}: memref<?x?xf16>, %{{.*}}: memref<?x?xi8>
// CHECK-SAME: workgroup(%[[XS:.*]] : memref<128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[YS:.*]] : memref<128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[FLAGS:.*]] : memref<128xi32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME: kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// CHECK: gpu.block_id x
// CHECK: gpu.barrier
// CHECK: scf.for %{{.*}} = %c0 to %c128 step %c4
// CHECK-NEXT: vector.load %[[XS]][%{{.*}}] {alignment = 16 : i64} : memref<128xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// CHECK: gpu.barrier
// CHECK: scf.for %{{.*}} = %c0 to %c128 step %c4
// CHECK-NEXT: vector.load %[[YS]][%{{.*}}] {alignment = 16 : i64} : memref<128xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// CHECK: gpu.barrier
// CHECK: scf.if
// CHECK: scf.for %{{.*}} = %c0 to %{{.*}} step %c4
// CHECK-NEXT: vector.load %[[FLAGS]][%{{.*}}] {alignment = 16 : i64} : memref<128xi32, #gpu.address_space<workgroup>>, vector<4xi32>
// CHECK: memref.store %{{.*}} : memref<?x?xf16>
// CHECK: memref.store %{{.*}} : memref<?x?xi8>
func.func @compress(%x: memref<?x128xf32>, %r: memref<128x128xf32>, %k: index,
    %values: memref<?x?xf16>, %indices: memref<?x?xi8>) {
  %xt = bufferization.to_tensor %x restrict : memref<?x128xf32> to tensor<?x128xf32>
  %rt = bufferization.to_tensor %r restrict : memref<128x128xf32> to tensor<128x128xf32>
  %v, %i = swan.compress %xt by %rt keep %k
      : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x?xf16>, tensor<?x?xi8>
  bufferization.materialize_in_destination %v in restrict writable %values
      : (tensor<?x?xf16>, memref<?x?xf16>) -> ()
  bufferization.materialize_in_destination %i in restrict writable %indices
      : (tensor<?x?xi8>, memref<?x?xi8>) -> ()
  return
}

// decode attention, one kernel. Partials: blocks over (split, KV head,
// sequence), 4 warps; each rotates its G query rows (q · R_K) into shared
// memory [D][G]; that, the chunk's scores [G][128], one accumulator [D][G]
// per warp, the running state and whether the block merges are the only
// shared buffers: nothing holds a dense copy of a winnowed token.
// CHECK-LABEL: gpu.func @decode_attention_partial
// CHECK-SAME: %{{[^ ]*}}: memref<?x32x128xf32>, %{{[^ ]*}}: f32, %{{[^ ]*}}: memref<8x128x128xf32>,
// CHECK-SAME: memref<?x8x?x?xf16>, %{{[^ ]*}}: memref<?x8x?x?xi8>
// CHECK-SAME: %{{[^ ]*}}: memref<?x?x?x?x?xf32>, %[[FINISHED:[^ ]*]]: memref<?x?xi32>, %[[RV:[^ ]*]]: memref<8x128x128xf32>, %[[OUT:[^ ]*]]: memref<?x32x128xf32>)
// CHECK-SAME: workgroup(%[[QS:.*]] : memref<128x4xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[SCORES:.*]] : memref<4x128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[ACC:.*]] : memref<4x128x4xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[STATE:.*]] : memref<3x4xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[LAST:.*]] : memref<1xi32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64})
// CHECK-SAME: kernel attributes {known_block_size = array<i32: 128, 1, 1>}
// CHECK-DAG: gpu.block_id x
// CHECK-DAG: gpu.block_id y
// CHECK-DAG: gpu.block_id z
// CHECK-DAG: gpu.grid_dim x
// CHECK-NOT: memref.alloc
// Before the query rotation, the block's first chunk of tokens heads for
// L2: one prefetch per 128-byte line of each array it reads, the buffer's
// two or the store's four (inline PTX: NVPTX selects its prefetch
// intrinsic for sm_90 only). Each chunk then prefetches the next.
// CHECK: memref.extract_aligned_pointer_as_index %{{.*}} : memref<?x8x?x128xf16>
// CHECK: arith.ceildivui %{{.*}}, %{{.*}} : index
// CHECK: scf.for %{{.*}} = %{{.*}} to
// CHECK: arith.maxui
// CHECK: llvm.inline_asm has_side_effects "prefetch.L2 [$0];", "l" %{{.*}} : (i64) -> ()
// CHECK: llvm.inline_asm has_side_effects "prefetch.L2
// CHECK: } else {
// CHECK-COUNT-4: llvm.inline_asm has_side_effects "prefetch.L2
// CHECK: vector.store %{{.*}}, %[[QS]]
// CHECK: llvm.inline_asm has_side_effects "prefetch.L2
// Scores: the cache's indices pick rows of the shared rotated query, all G
// heads of a row in one vector access.
// CHECK: %[[IDX:.*]] = memref.load %{{.*}} : memref<?x8x?x?xi8>
// CHECK: memref.load %{{.*}} : memref<?x8x?x?xf16>
// CHECK: vector.load %[[QS]]{{.*}} : memref<128x4xf32, #gpu.address_space<workgroup>>, vector<4xf32>
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.*}}, %[[SCORES]]
// CHECK: gpu.barrier
// The softmax uses ex2.approx directly (no libdevice). Every lane reads
// the running max; a warp sync (shuffles order no memory) comes before
// lane 0 overwrites it.
// CHECK: memref.load %[[STATE]]
// CHECK: llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"
// CHECK: gpu.shuffle xor
// CHECK: nvvm.bar.warp.sync
// CHECK: scf.if
// CHECK: memref.store %{{.*}}, %[[STATE]]
// Each warp rescales its accumulator once per chunk, then syncs: lanes
// scatter into entries other lanes rescaled.
// CHECK: vector.load %[[ACC]]{{.*}} vector<4xf32>
// CHECK: arith.mulf
// CHECK: vector.store %{{.*}}, %[[ACC]]
// CHECK: nvvm.bar.warp.sync
// Values: scattered into the warp's accumulator by index, a warp sync
// between tokens.
// CHECK: vector.load %[[ACC]]{{.*}} vector<4xf32>
// CHECK: vector.store %{{.*}}, %[[ACC]]
// CHECK: nvvm.bar.warp.sync
// The merge: each block makes its partials visible device-wide and counts
// itself done; the one whose count is the last merges them all, after a
// fence of its own, and clears the count. The splits' weights pass through
// the scores buffer; the rotation back by R_V reads rows of R_V whole (a
// warp's lanes over a row's columns, coalesced), and a transposing shuffle
// reduction leaves each lane one output.
// CHECK: nvvm.memory.barrier <gpu>
// CHECK-NEXT: gpu.barrier
// CHECK: memref.atomic_rmw addi %{{.*}}, %[[FINISHED]]
// CHECK: memref.store %{{.*}}, %[[LAST]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[LAST]]
// CHECK: scf.if
// CHECK-NEXT: nvvm.memory.barrier <gpu>
// CHECK: memref.store %{{.*}}, %[[FINISHED]]
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.*}}, %[[SCORES]]
// CHECK: gpu.barrier
// CHECK: memref.load %[[RV]]
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.*}}, %[[OUT]]
// CHECK-NOT: memref.alloc
// CHECK: gpu.return

// The paged partials: the same blocks, each sequence's store and buffer at
// the device addresses of its row of the sequence table, read through
// global-space pointers.
// CHECK-LABEL: gpu.func @decode_attention_paged_partial
// CHECK-SAME: %{{.*}}: memref<?x32x128xf32>, %{{.*}}: f32, %{{.*}}: memref<8x128x128xf32>, %[[TABLE:.*]]: memref<?x12xi64>,
// CHECK: memref.load %[[TABLE]]
// CHECK: llvm.inttoptr %{{.*}} : i64 to !llvm.ptr<1>
// CHECK: llvm.ptrtoint %{{.*}} : !llvm.ptr<1> to i64
// CHECK: llvm.inline_asm has_side_effects "prefetch.L2
// CHECK: llvm.getelementptr %{{.*}} : (!llvm.ptr<1>, i64) -> !llvm.ptr<1>, i8
// CHECK: llvm.load %{{.*}} : !llvm.ptr<1> -> i8
// CHECK: llvm.load %{{.*}} : !llvm.ptr<1> -> f16
// CHECK: gpu.return

func.func @decode_attention(%q: memref<?x32x128xf32>, %scale: f32,
    %rk: memref<8x128x128xf32>, %rv: memref<8x128x128xf32>,
    %kv: memref<?x8x?x?xf16>, %ki: memref<?x8x?x?xi8>,
    %vv: memref<?x8x?x?xf16>, %vi: memref<?x8x?x?xi8>,
    %bk: memref<?x8x?x128xf16>, %bv: memref<?x8x?x128xf16>,
    %sl: memref<?xi32>, %bl: memref<?xi32>, %out: memref<?x32x128xf32>) {
  %qt = bufferization.to_tensor %q restrict : memref<?x32x128xf32> to tensor<?x32x128xf32>
  %rkt = bufferization.to_tensor %rk restrict : memref<8x128x128xf32> to tensor<8x128x128xf32>
  %rvt = bufferization.to_tensor %rv restrict : memref<8x128x128xf32> to tensor<8x128x128xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<?x8x?x?xf16> to tensor<?x8x?x?xf16>
  %kit = bufferization.to_tensor %ki restrict : memref<?x8x?x?xi8> to tensor<?x8x?x?xi8>
  %vvt = bufferization.to_tensor %vv restrict : memref<?x8x?x?xf16> to tensor<?x8x?x?xf16>
  %vit = bufferization.to_tensor %vi restrict : memref<?x8x?x?xi8> to tensor<?x8x?x?xi8>
  %bkt = bufferization.to_tensor %bk restrict : memref<?x8x?x128xf16> to tensor<?x8x?x128xf16>
  %bvt = bufferization.to_tensor %bv restrict : memref<?x8x?x128xf16> to tensor<?x8x?x128xf16>
  %slt = bufferization.to_tensor %sl restrict : memref<?xi32> to tensor<?xi32>
  %blt = bufferization.to_tensor %bl restrict : memref<?xi32> to tensor<?xi32>
  %o = swan.decode_attention %qt, scale %scale
      rotations(%rkt, %rvt : tensor<8x128x128xf32>)
      sparse_keys(%kvt, %kit : tensor<?x8x?x?xf16>, tensor<?x8x?x?xi8>)
      sparse_values(%vvt, %vit : tensor<?x8x?x?xf16>, tensor<?x8x?x?xi8>)
      buffer(%bkt, %bvt : tensor<?x8x?x128xf16>)
      lengths(%slt, %blt : tensor<?xi32>)
      group_size = 4 : tensor<?x32x128xf32> -> tensor<?x32x128xf32>
  bufferization.materialize_in_destination %o in restrict writable %out
      : (tensor<?x32x128xf32>, memref<?x32x128xf32>) -> ()
  return
}

// With occupancy masks, compress also gathers each byte's 8 keep flags,
// one thread per byte.
// CHECK-LABEL: gpu.func @compress_mask
// CHECK-SAME: %{{.*}}: index, %{{.*}}: memref<?x?xf16>, %[[MASKS:.*]]: memref<?x16xi8>
// CHECK: memref.store %{{.*}} : memref<?x?xf16>
// CHECK-NOT: memref.store %{{.*}}, %[[MASKS]]
// CHECK: arith.ori
// CHECK: arith.trunci %{{.*}} : i32 to i8
// CHECK: memref.store %{{.*}}, %[[MASKS]]
// CHECK: gpu.return
func.func @compress_mask(%x: memref<?x128xf32>, %r: memref<128x128xf32>, %k: index,
    %values: memref<?x?xf16>, %masks: memref<?x16xi8>) {
  %xt = bufferization.to_tensor %x restrict : memref<?x128xf32> to tensor<?x128xf32>
  %rt = bufferization.to_tensor %r restrict : memref<128x128xf32> to tensor<128x128xf32>
  %v, %m = swan.compress %xt by %rt keep %k encoding = mask
      : tensor<?x128xf32>, tensor<128x128xf32> -> tensor<?x?xf16>, tensor<?x16xi8>
  bufferization.materialize_in_destination %v in restrict writable %values
      : (tensor<?x?xf16>, memref<?x?xf16>) -> ()
  bufferization.materialize_in_destination %m in restrict writable %masks
      : (tensor<?x16xi8>, memref<?x16xi8>) -> ()
  return
}

// Keys and values as masks: lane l owns dimensions l, l + 32, l + 64 and
// l + 96. The block of the dense buffer is the same as above; a block of
// winnowed tokens keeps the lane's rotated query entries and its 4 x G
// accumulator entries in registers, reads a token's mask as four words in
// one access, finds each owned value's slot with popcounts, and writes the
// accumulator to shared memory once, after its last chunk: no scatter, no
// warp sync per token.
// CHECK-LABEL: gpu.func @decode_attention_masks_partial
// CHECK-SAME: %{{.*}}: memref<?x8x?x?xf16>, %[[KM:.*]]: memref<?x8x?x16xi8>, %[[VV:.*]]: memref<?x8x?x?xf16>, %[[VM:.*]]: memref<?x8x?x16xi8>
// CHECK-SAME: workgroup(%[[MQS:.*]] : memref<128x4xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[MSCORES:.*]] : memref<4x128xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}, %[[MACC:.*]] : memref<4x128x4xf32, #gpu.address_space<workgroup>> {llvm.align = 16 : i64}
// CHECK: vector.store %{{.*}}, %[[MQS]]
// CHECK: } else {
// CHECK-COUNT-4: vector.load %[[MQS]]
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK: vector.load %[[KM]][{{.*}}] {alignment = 16 : i64} : memref<?x8x?x16xi8>, vector<16xi8>
// CHECK: vector.bitcast %{{.*}} : vector<16xi8> to vector<4xi32>
// CHECK: llvm.intr.ctpop
// CHECK: arith.select
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.*}}, %[[MSCORES]]
// CHECK: gpu.barrier
// CHECK: nvvm.bar.warp.sync
// CHECK: gpu.barrier
// The value pass carries the 16 accumulator entries.
// CHECK: scf.for {{.*}} iter_args({{.*}}) -> (f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32) {
// CHECK-NOT: nvvm.bar.warp.sync
// CHECK-NOT: %[[MACC]]
// CHECK: vector.load %[[VM]]
// CHECK: llvm.intr.ctpop
// CHECK: memref.load %[[VV]]
// CHECK: memref.load %[[MSCORES]]
// CHECK-NOT: %[[MACC]]
// CHECK: scf.yield
// CHECK: gpu.barrier
// CHECK: scf.yield
// CHECK-COUNT-4: vector.store %{{.*}}, %[[MACC]]
// CHECK: gpu.barrier

// The paged partials read the masks through global-space pointers, four
// words per access.
// CHECK-LABEL: gpu.func @decode_attention_masks_paged_partial
// CHECK: llvm.load %{{.*}} {alignment = 16 : i64} : !llvm.ptr<1> -> vector<4xi32>
// CHECK: llvm.intr.ctpop
// CHECK: gpu.return
func.func @decode_attention_masks(%q: memref<?x32x128xf32>, %scale: f32,
    %rk: memref<8x128x128xf32>, %rv: memref<8x128x128xf32>,
    %kv: memref<?x8x?x?xf16>, %km: memref<?x8x?x16xi8>,
    %vv: memref<?x8x?x?xf16>, %vm: memref<?x8x?x16xi8>,
    %bk: memref<?x8x?x128xf16>, %bv: memref<?x8x?x128xf16>,
    %sl: memref<?xi32>, %bl: memref<?xi32>, %out: memref<?x32x128xf32>) {
  %qt = bufferization.to_tensor %q restrict : memref<?x32x128xf32> to tensor<?x32x128xf32>
  %rkt = bufferization.to_tensor %rk restrict : memref<8x128x128xf32> to tensor<8x128x128xf32>
  %rvt = bufferization.to_tensor %rv restrict : memref<8x128x128xf32> to tensor<8x128x128xf32>
  %kvt = bufferization.to_tensor %kv restrict : memref<?x8x?x?xf16> to tensor<?x8x?x?xf16>
  %kmt = bufferization.to_tensor %km restrict : memref<?x8x?x16xi8> to tensor<?x8x?x16xi8>
  %vvt = bufferization.to_tensor %vv restrict : memref<?x8x?x?xf16> to tensor<?x8x?x?xf16>
  %vmt = bufferization.to_tensor %vm restrict : memref<?x8x?x16xi8> to tensor<?x8x?x16xi8>
  %bkt = bufferization.to_tensor %bk restrict : memref<?x8x?x128xf16> to tensor<?x8x?x128xf16>
  %bvt = bufferization.to_tensor %bv restrict : memref<?x8x?x128xf16> to tensor<?x8x?x128xf16>
  %slt = bufferization.to_tensor %sl restrict : memref<?xi32> to tensor<?xi32>
  %blt = bufferization.to_tensor %bl restrict : memref<?xi32> to tensor<?xi32>
  %o = swan.decode_attention %qt, scale %scale
      rotations(%rkt, %rvt : tensor<8x128x128xf32>)
      sparse_keys(%kvt, %kmt : tensor<?x8x?x?xf16>, tensor<?x8x?x16xi8>)
      sparse_values(%vvt, %vmt : tensor<?x8x?x?xf16>, tensor<?x8x?x16xi8>)
      buffer(%bkt, %bvt : tensor<?x8x?x128xf16>)
      lengths(%slt, %blt : tensor<?xi32>)
      group_size = 4 key_encoding = mask value_encoding = mask
      : tensor<?x32x128xf32> -> tensor<?x32x128xf32>
  bufferization.materialize_in_destination %o in restrict writable %out
      : (tensor<?x32x128xf32>, memref<?x32x128xf32>) -> ()
  return
}
