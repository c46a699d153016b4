// RUN: swan-opt %s --swan-gpu-kernels-to-host --split-input-file -verify-diagnostics

// What the emulator cannot run is refused, never run differently.
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @wide_shuffle(%x: memref<?xi64>) kernel {
      %c0 = arith.constant 0 : index
      %v = memref.load %x[%c0] : memref<?xi64>
      %c1 = arith.constant 1 : i32
      %c32 = arith.constant 32 : i32
      // expected-error @+1 {{the kernel emulator shuffles 32-bit values only}}
      %r, %valid = gpu.shuffle xor %v, %c1, %c32 : i64
      memref.store %r, %x[%c0] : memref<?xi64>
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @log(%x: memref<?xf32>) kernel {
      %c0 = arith.constant 0 : index
      %v = memref.load %x[%c0] : memref<?xf32>
      // expected-error @+1 {{the kernel emulator cannot run intrinsic llvm.nvvm.lg2.approx.f32}}
      %l = llvm.call_intrinsic "llvm.nvvm.lg2.approx.f32"(%v) : (f32) -> f32
      memref.store %l, %x[%c0] : memref<?xf32>
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @lane(%x: memref<?xi32>) kernel {
      %c0 = arith.constant 0 : index
      // expected-error @+1 {{the kernel emulator cannot run gpu.lane_id}}
      %l = gpu.lane_id
      %i = arith.index_cast %l : index to i32
      memref.store %i, %x[%c0] : memref<?xi32>
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    // expected-error @+1 {{the kernel emulator runs kernels only; device functions are not supported}}
    gpu.func @helper(%x: memref<?xf32>) {
      gpu.return
    }
  }
}

// -----

// Every memref access is bounds-checked; one the pass cannot check is
// refused.
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @copy(%x: memref<?xf32>, %y: memref<?xf32>) kernel {
      // expected-error @+1 {{the kernel emulator cannot bounds-check memref.copy}}
      memref.copy %x, %y : memref<?xf32> to memref<?xf32>
      gpu.return
    }
  }
}

// -----

// The race check follows shared memory in 32-bit words.
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @half(%x: memref<?xf16>)
        workgroup(%s : memref<32xf16, #gpu.address_space<workgroup>>) kernel {
      %c0 = arith.constant 0 : index
      %v = memref.load %x[%c0] : memref<?xf16>
      // expected-error @+1 {{the kernel emulator race-checks 32-bit shared memory only}}
      memref.store %v, %s[%c0] : memref<32xf16, #gpu.address_space<workgroup>>
      gpu.return
    }
  }
}

// -----

module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @fence_asm(%x: memref<?xf32>) kernel {
      // expected-error @+1 {{the kernel emulator cannot run inline PTX fence.sc.gpu;}}
      llvm.inline_asm has_side_effects "fence.sc.gpu;", "" : () -> ()
      gpu.return
    }
  }
}
