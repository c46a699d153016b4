//===- Pipeline.h - swan to NVVM and PTX -------------------------*- C++
//-*-===//
//
// The one GPU pipeline: swan-opt (`--swan-lower-to-nvvm`), the lit tests and
// the build step that produces the runtime's PTX all run it. Its host twin
// compiles the same kernels for the tests' kernel emulator.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_GPU_PIPELINE_H
#define SWAN_CODEGEN_GPU_PIPELINE_H

#include "mlir/Pass/PassOptions.h"

#include <string>

namespace mlir {
class DialectRegistry;
class OpPassManager;
} // namespace mlir

namespace swan {

struct SwanGPUPipelineOptions
    : mlir::PassPipelineOptions<SwanGPUPipelineOptions> {
  Option<std::string> chip{*this, "chip",
                           llvm::cl::desc("NVIDIA target: sm_80 or sm_90"),
                           llvm::cl::init("sm_80")};
  Option<std::string> features{
      *this, "features",
      llvm::cl::desc("PTX features, e.g. +ptx80 (empty: the chip's default)"),
      llvm::cl::init("")};
  Option<unsigned> optLevel{*this, "opt-level",
                            llvm::cl::desc("LLVM optimisation level"),
                            llvm::cl::init(3)};
  Option<std::string> format{
      *this, "format",
      llvm::cl::desc("gpu-module-to-binary format: isa (PTX text), bin "
                     "(cubin) or fatbin; bin and fatbin need ptxas"),
      llvm::cl::init("isa")};
  Option<bool> emitBinary{
      *this, "emit-binary",
      llvm::cl::desc("Serialise the kernels (false stops at NVVM IR)"),
      llvm::cl::init(true)};
};

/// swan entry points -> gpu kernels -> NVVM -> PTX (`gpu.binary`).
void buildSwanGPUPipeline(mlir::OpPassManager &pm,
                          const SwanGPUPipelineOptions &options);

struct SwanGPUHostPipelineOptions
    : mlir::PassPipelineOptions<SwanGPUHostPipelineOptions> {
  Option<std::string> symbolPrefix{
      *this, "symbol-prefix",
      llvm::cl::desc("Prefix of the kernel table and every kernel symbol"),
      llvm::cl::init("")};
};

/// swan entry points -> the same gpu kernels -> host LLVM IR the tests'
/// kernel emulator runs, one call per GPU thread (EmulatorABI.h).
void buildSwanGPUHostPipeline(mlir::OpPassManager &pm,
                              const SwanGPUHostPipelineOptions &options);

/// The dialects, LLVM-conversion interfaces, NVVM target model and LLVM IR
/// translations the GPU pipeline needs in a tool of its own.
void registerSwanGPUDialects(mlir::DialectRegistry &registry);

/// Registers the GPU passes, `swan-lower-to-nvvm` and
/// `swan-lower-gpu-to-host` for textual pass pipelines.
void registerSwanGPUPipeline();

} // namespace swan

#endif // SWAN_CODEGEN_GPU_PIPELINE_H
