// RUN: swan-opt %s --split-input-file --swan-gpu-kernels-to-host="symbol-prefix=emu_" | FileCheck %s --implicit-check-not=gpu. --implicit-check-not=address_space

// Each kernel becomes one GPU thread's body on the host: ids, barriers,
// warp syncs and shuffles call the emulator; shared memory is one global
// per kernel; ex2.approx is math.exp2; no gpu op or address space is left.
// CHECK-DAG: func.func private @swan_emu_thread_id(i32) -> i64
// CHECK-DAG: func.func private @swan_emu_block_id(i32) -> i64
// CHECK-DAG: func.func private @swan_emu_barrier()
// CHECK-DAG: func.func private @swan_emu_syncwarp(i32)
// CHECK-DAG: func.func private @swan_emu_shuffle(i32, i32, i32, i32) -> i32
// CHECK-DAG: func.func private @swan_emu_shuffle_valid(i32, i32, i32) -> i32
// CHECK-DAG: func.func private @swan_emu_out_of_bounds(!llvm.ptr, i32, i64, i64)
// CHECK-DAG: func.func private @swan_emu_shared_access(i64, i64, i32, !llvm.ptr)
// CHECK-DAG: llvm.mlir.global private constant @[[$LOADX:.*]]("memref.load of memref<?xf32> (argument 0)\00")
// CHECK-DAG: llvm.mlir.global private constant @[[$STORESHARED:.*]]("memref.store of memref<32xf32> (workgroup attribution 0)\00")
// CHECK-LABEL: func.func @emu_scale(%{{.*}}: memref<?xf32>)
// CHECK-SAME: swan.emulated_kernel = "scale"
// CHECK-SAME: swan.known_block_size = array<i32: 32, 1, 1>
// CHECK-SAME: swan.shared_memory = [@emu_scale_shared0]
// CHECK: %[[SHARED:.*]] = memref.get_global @emu_scale_shared0 : memref<32xf32>
// CHECK: call @swan_emu_thread_id(%{{.*}}) : (i32) -> i64
// CHECK: call @swan_emu_block_id(%{{.*}}) : (i32) -> i64
// Each access is first checked against its memref's shape.
// CHECK: %[[DIM:.*]] = memref.dim %[[X:.*]], %{{.*}} : memref<?xf32>
// CHECK: %[[OUT:.*]] = arith.cmpi uge, %[[BID:.*]], %[[DIM]] : index
// CHECK: scf.if %[[OUT]] {
// CHECK: %[[TEXT:.*]] = llvm.mlir.addressof @[[$LOADX]] : !llvm.ptr
// CHECK: func.call @swan_emu_out_of_bounds(%[[TEXT]], %{{.*}}, %{{.*}}, %{{.*}}) : (!llvm.ptr, i32, i64, i64) -> ()
// CHECK: }
// CHECK: memref.load %[[X]][%[[BID]]] : memref<?xf32>
// CHECK: arith.cmpi uge, %{{.*}}, %{{.*}} : index
// CHECK: llvm.mlir.addressof @[[$STORESHARED]] : !llvm.ptr
// A shared access is then reported to the race check: its address, its
// 32-bit words, whether it writes.
// CHECK: %[[BASE:.*]] = memref.extract_aligned_pointer_as_index %[[SHARED]] : memref<32xf32> -> index
// CHECK: %[[ADDRESS:.*]] = arith.addi %[[BASE]], %{{.*}} : index
// CHECK: %[[A64:.*]] = arith.index_cast %[[ADDRESS]] : index to i64
// CHECK: %[[ONE:.*]] = arith.constant 1 : i64
// CHECK: %[[WRITE:.*]] = arith.constant 1 : i32
// CHECK: call @swan_emu_shared_access(%[[A64]], %[[ONE]], %[[WRITE]], %{{.*}}) : (i64, i64, i32, !llvm.ptr) -> ()
// CHECK: memref.store %{{.*}}, %[[SHARED]][%{{.*}}] : memref<32xf32>
// CHECK: call @swan_emu_barrier() : () -> ()
// CHECK: arith.bitcast %{{.*}} : f32 to i32
// CHECK: call @swan_emu_shuffle(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (i32, i32, i32, i32) -> i32
// CHECK: arith.bitcast %{{.*}} : i32 to f32
// CHECK: call @swan_emu_shuffle_valid
// CHECK: arith.cmpi ne
// CHECK: math.exp2
// CHECK: call @swan_emu_syncwarp(%{{.*}}) : (i32) -> ()
// CHECK: return
// CHECK: memref.global "private" @emu_scale_shared0 : memref<32xf32> = uninitialized {alignment = 16 : i64}
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @scale(%x: memref<?xf32>)
        workgroup(%s : memref<32xf32, #gpu.address_space<workgroup>>)
        kernel attributes {known_block_size = array<i32: 32, 1, 1>} {
      %tid = gpu.thread_id x
      %bid = gpu.block_id x
      %v = memref.load %x[%bid] : memref<?xf32>
      memref.store %v, %s[%tid] : memref<32xf32, #gpu.address_space<workgroup>>
      gpu.barrier
      %w = memref.load %s[%tid] : memref<32xf32, #gpu.address_space<workgroup>>
      %c1 = arith.constant 1 : i32
      %c32 = arith.constant 32 : i32
      %r, %valid = gpu.shuffle xor %w, %c1, %c32 : f32
      %e = llvm.call_intrinsic "llvm.nvvm.ex2.approx.f32"(%r) : (f32) -> f32
      %zero = arith.constant 0.0 : f32
      %out = arith.select %valid, %e, %zero : f32
      %all = arith.constant -1 : i32
      nvvm.bar.warp.sync %all : i32
      memref.store %out, %x[%tid] : memref<?xf32>
      gpu.return
    }
  }
}

// -----

// Global-space pointers (the paged kernel's) are plain pointers on the host.
// CHECK-LABEL: func.func @emu_load
// CHECK: llvm.inttoptr %{{.*}} : i64 to !llvm.ptr{{$}}
// CHECK-NEXT: llvm.load %{{.*}} : !llvm.ptr -> f32
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @load(%a: memref<?xi64>, %x: memref<?xf32>) kernel {
      %c0 = arith.constant 0 : index
      %address = memref.load %a[%c0] : memref<?xi64>
      %p = llvm.inttoptr %address : i64 to !llvm.ptr<1>
      %v = llvm.load %p : !llvm.ptr<1> -> f32
      memref.store %v, %x[%c0] : memref<?xf32>
      gpu.return
    }
  }
}

// -----

// A vector access is checked at its first and its last element.
// CHECK-DAG: llvm.mlir.global private constant @[[$LOADP:.*]]("vector.load of memref<16xf32> (private attribution 0)\00")
// CHECK-DAG: llvm.mlir.global private constant @[[$STOREX:.*]]("vector.store of memref<?xf32> (argument 1)\00")
// CHECK-LABEL: func.func @emu_vector
// CHECK: %[[P:.*]] = memref.alloca() : memref<16xf32>
// CHECK: %[[I:.*]] = memref.load
// CHECK: %[[SIZE:.*]] = memref.dim %[[P]]
// CHECK: arith.cmpi uge, %[[I]], %[[SIZE]] : index
// CHECK: addressof @[[$LOADP]]
// CHECK: %[[THREE:.*]] = arith.constant 3 : index
// CHECK: %[[LAST:.*]] = arith.addi %[[I]], %[[THREE]] : index
// CHECK: arith.cmpi uge, %[[LAST]], %[[SIZE]] : index
// CHECK: addressof @[[$LOADP]]
// CHECK: vector.load %[[P]][%[[I]]] : memref<16xf32>, vector<4xf32>
// CHECK-COUNT-2: addressof @[[$STOREX]]
// CHECK: vector.store
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @vector(%a: memref<?xindex>, %x: memref<?xf32>)
        private(%p : memref<16xf32, #gpu.address_space<private>>) kernel {
      %c0 = arith.constant 0 : index
      %i = memref.load %a[%c0] : memref<?xindex>
      %v = vector.load %p[%i] : memref<16xf32, #gpu.address_space<private>>, vector<4xf32>
      vector.store %v, %x[%c0] : memref<?xf32>, vector<4xf32>
      gpu.return
    }
  }
}

// -----

// Global memory goes to the emulator's handover check: each access with
// its element address, count and size, each atomic and each GPU-scope fence
// as calls (a fence has nothing to order when blocks run one after another
// on one host thread); an atomic is bounds-checked like any access.
// CHECK-DAG: func.func private @swan_emu_global_access(i64, i64, i32, i32, !llvm.ptr)
// CHECK-DAG: func.func private @swan_emu_global_atomic()
// CHECK-DAG: func.func private @swan_emu_fence()
// CHECK-LABEL: func.func @emu_count
// CHECK-NOT: nvvm.memory.barrier
// CHECK: %[[EIGHT:.*]] = arith.constant 8 : index
// CHECK: %{{.*}}, %[[OFFSET:.*]], %{{.*}}, %[[STRIDE:.*]] = memref.extract_strided_metadata %[[X:[^ ]*]] : memref<?xf16>
// CHECK: %[[AT:.*]] = arith.muli %[[EIGHT]], %[[STRIDE]] : index
// CHECK: %[[ELEMENT:.*]] = arith.addi %[[OFFSET]], %[[AT]] : index
// CHECK: %[[POINTER:.*]] = memref.extract_aligned_pointer_as_index %[[X]]
// CHECK: %[[TWO:.*]] = arith.constant 2 : index
// CHECK: arith.muli %[[ELEMENT]], %[[TWO]] : index
// CHECK: call @swan_emu_global_access(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (i64, i64, i32, i32, !llvm.ptr) -> ()
// CHECK: memref.store %{{.*}}, %[[X]]
// CHECK: call @swan_emu_fence() : () -> ()
// CHECK-NOT: nvvm.memory.barrier
// CHECK: arith.cmpi uge
// CHECK: func.call @swan_emu_out_of_bounds
// CHECK: call @swan_emu_global_atomic() : () -> ()
// CHECK-NEXT: memref.atomic_rmw addi
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @count(%x: memref<?xf16>, %n: memref<?xi32>) kernel {
      %c0 = arith.constant 0 : index
      %c8 = arith.constant 8 : index
      %one = arith.constant 1 : i32
      %h = arith.constant 1.0 : f16
      memref.store %h, %x[%c8] : memref<?xf16>
      nvvm.memory.barrier #nvvm.mem_scope<gpu>
      // A fence within the block hands nothing to other blocks.
      nvvm.memory.barrier #nvvm.mem_scope<cta>
      %old = memref.atomic_rmw addi %one, %n[%c0] : (i32, memref<?xi32>) -> i32
      gpu.return
    }
  }
}

// -----

// An L2 prefetch (inline PTX) reads its byte on the host, a volatile load
// that an address outside every buffer cannot pass unseen.
// CHECK-LABEL: func.func @emu_prefetch
// CHECK-NOT: llvm.inline_asm
// CHECK: %[[AT:.*]] = llvm.inttoptr %{{.*}} : i64 to !llvm.ptr
// CHECK-NEXT: llvm.load volatile %[[AT]] {alignment = 1 : i64} : !llvm.ptr -> i8
// CHECK-NOT: llvm.inline_asm
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @prefetch(%x: memref<?xf16>) kernel {
      %p = memref.extract_aligned_pointer_as_index %x : memref<?xf16> -> index
      %a = arith.index_cast %p : index to i64
      llvm.inline_asm has_side_effects "prefetch.L2 [$0];", "l" %a : (i64) -> ()
      gpu.return
    }
  }
}
