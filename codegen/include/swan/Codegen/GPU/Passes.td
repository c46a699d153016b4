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
    flash-decoding pair `<name>_partial` (blocks over token split, KV head
    and sequence) and `<name>_merge`. Sequence lengths, `k` and the batch
    stay run-time values. swan/Codegen/GPU/KernelABI.h fixes the launch
    contract.

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

#endif // SWAN_CODEGEN_GPU_PASSES_TD
