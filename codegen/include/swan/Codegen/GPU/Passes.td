//===- Passes.td - swan to the gpu dialect -----------------*- tablegen -*-===//

#ifndef SWAN_CODEGEN_GPU_PASSES_TD
#define SWAN_CODEGEN_GPU_PASSES_TD

include "mlir/Pass/PassBase.td"

def SwanConvertToGPU : Pass<"swan-convert-to-gpu", "::mlir::ModuleOp"> {
  let summary = "Turns swan entry points into gpu-dialect kernels";
  let description = [{
    Each `func.func` entry point that wraps one swan op (memref arguments
    read through `bufferization.to_tensor`, results written with
    `bufferization.materialize_in_destination`, as docs/KERNELS.md
    describes) becomes `gpu.func` kernels in
    `gpu.module @swan_kernels`, and the host function is erased: the CUDA
    runtime launches the kernels itself. `swan.rotate` and `swan.compress`
    give one block per token; `swan.decode_attention` gives the
    flash-decoding kernel `<name>_partial` (blocks over token split, KV
    head and sequence, the last block of each sequence and head to finish
    merging them) and its twin `<name>_paged_partial` over a table of
    sequences. Each partial block asks L2 for its rows a chunk ahead of
    the token loop (`prefetch.L2` as inline PTX, one per 128-byte line).
    Sequence lengths, `k` and the batch stay run-time values.
    swan/Codegen/GPU/KernelABI.h fixes the launch contract.

    ```mlir
    gpu.module @swan_kernels {
      gpu.func @compress(%x: memref<?x128xf32>, %r: memref<128x128xf32>,
                         %k: index, %v: memref<?x?xf16>, %i: memref<?x?xi8>)
          workgroup(...) kernel attributes {known_block_size = array<i32: 128, 1, 1>}
    }
    ```
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::vector::VectorDialect",
                           "::mlir::LLVM::LLVMDialect",
                           "::mlir::NVVM::NVVMDialect"];
}

def SwanGPUKernelsToHost
    : Pass<"swan-gpu-kernels-to-host", "::mlir::ModuleOp"> {
  let summary = "Turns the gpu kernels into host functions the kernel "
                "emulator runs, one call per GPU thread";
  let description = [{
    Each kernel `gpu.func` of the module's `gpu.module`s becomes a
    `func.func` named `<symbol-prefix><kernel>` that runs one GPU thread of
    the kernel: `gpu.thread_id`, `gpu.block_id`, `gpu.block_dim` and
    `gpu.grid_dim` read the emulator's current thread, `gpu.barrier`,
    `nvvm.bar.warp.sync` and `gpu.shuffle` call into the emulator
    (test/lib/KernelEmulator.h), workgroup attributions become one private
    `memref.global` per kernel (the emulator runs one block at a time),
    `llvm.nvvm.ex2.approx.f32` becomes `math.exp2`, the L2 prefetch's
    inline PTX a volatile read of its byte (so a stray address faults) and
    `nvvm.memory.barrier` at GPU or system scope a call that the
    emulator's handover check records (one host thread runs the blocks
    one after another, so a fence orders nothing here). Any other GPU-only
    operation is an error naming it, so a kernel never runs differently
    from what the emulator checked. Every `memref.load`, `memref.store`,
    `vector.load`, `vector.store` and `memref.atomic_rmw` is preceded by a
    check of its indices
    against the memref's shape: an index outside it calls the emulator,
    which fails the launch naming the access, the index and the extent (a
    GPU would read or write a neighbour unannounced). Each access to a
    workgroup attribution is then reported to the emulator's race check
    (its address, its 32-bit words, whether it writes; shared memory of
    other element widths is an error), and each access to a kernel
    argument to its handover check (the address, count and size of its
    elements, whether it writes; an atomic as a call of its own), which
    fails a block that touches what another block wrote with no fence and
    atomic between. Any other operation that reads or
    writes a memref is an error. The `gpu.module`s are erased.
  }];
  let options = [
    Option<"symbolPrefix", "symbol-prefix", "std::string", "\"\"",
           "Prefix of every generated symbol, so that several modules' "
           "kernels can be linked into one library">
  ];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::scf::SCFDialect",
                           "::mlir::LLVM::LLVMDialect"];
}

def SwanEmitKernelLaunchers
    : Pass<"swan-emit-kernel-launchers", "::mlir::ModuleOp"> {
  let summary = "Adds launchers and a kernel table to host-lowered kernels";
  let description = [{
    Runs on the LLVM dialect after `swan-gpu-kernels-to-host` and the
    lowering to LLVM. For each kernel it adds
    `void <kernel>_launch(void **params)`, which calls the kernel with the
    arguments `cuLaunchKernel` passes (one pointer per scalar of the
    expanded memref ABI), gives the kernel itself internal linkage, and
    adds the null-terminated table `<symbol-prefix>kernels` of
    `swan::emulator_abi::EmulatedKernel` (the name without the prefix, the
    launcher, the known block size and the kernel's shared buffers, which
    the emulator poisons before each block) through which the emulator
    finds a module's kernels.
  }];
  let options = [
    Option<"symbolPrefix", "symbol-prefix", "std::string", "\"\"",
           "The prefix given to swan-gpu-kernels-to-host">
  ];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect"];
}

#endif // SWAN_CODEGEN_GPU_PASSES_TD
