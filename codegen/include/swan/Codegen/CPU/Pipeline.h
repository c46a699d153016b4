//===- Pipeline.h - the CPU pipeline: swan IR to LLVM -----------*- C++ -*-===//
//
// `swan-lower-to-llvm`: the one pass pipeline that swan-opt, the lit tests
// and the runtime's JIT run on swan IR for the host CPU.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_CPU_PIPELINE_H
#define SWAN_CODEGEN_CPU_PIPELINE_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace swan {

struct SwanCPUPipelineOptions
    : mlir::PassPipelineOptions<SwanCPUPipelineOptions> {
  Option<int64_t> vectorWidth{
      *this, "vector-width",
      llvm::cl::desc("f32 lanes per vector; 0 picks the host's (16 with "
                     "AVX-512)"),
      llvm::cl::init(0)};
  Option<int64_t> tileSize{
      *this, "tile-size",
      llvm::cl::desc("tokens per tile of partial attention"),
      llvm::cl::init(32)};
  Option<bool> expandWinnowed{
      *this, "expand-winnowed",
      llvm::cl::desc("expand winnowed tokens into registers (vp2intersect + "
                     "expanding loads; needs AVX-512 VP2INTERSECT and VBMI2 "
                     "on the host; slower than the default on znver5)"),
      llvm::cl::init(false)};
  Option<std::string> expandWith{
      *this, "expand-with",
      llvm::cl::desc("how expanding loads of mask-encoded rows become "
                     "machine code: host (the default), vpexpand (AVX-512 "
                     "VBMI2) or pshufb (SSSE3 byte shuffles)"),
      llvm::cl::init("host")};
  Option<int64_t> numSplits{
      *this, "num-splits",
      llvm::cl::desc("token blocks per sequence when decode_attention is "
                     "decomposed"),
      llvm::cl::init(1)};
};

/// Fuses, decomposes and lowers swan ops to vector code, bufferizes
/// (function boundaries with identity layouts, results written in place into
/// `materialize_in_destination` targets) and converts everything to the LLVM
/// dialect with the host's vector extensions.
void buildSwanCPUPipeline(mlir::OpPassManager &pm,
                          const SwanCPUPipelineOptions &options);

/// Adds the dialects the pipeline produces and the external models its
/// bufferization and deallocation need.
void registerSwanCPUDialects(mlir::DialectRegistry &registry);

/// Registers `swan-lower-to-llvm` and the codegen passes for textual
/// pipelines.
void registerSwanCPUPipeline();

} // namespace swan

#endif // SWAN_CODEGEN_CPU_PIPELINE_H
