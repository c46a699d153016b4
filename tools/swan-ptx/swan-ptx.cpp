//===- swan-ptx.cpp - swan entry points to PTX files ----------------------===//
//
// Runs the one GPU pipeline (swan-lower-to-nvvm) on a module of swan entry
// points and writes the PTX of its kernels as plain text: the form ptxas,
// the CUDA driver's cuModuleLoadData and the runtime's build step consume.
//
//===----------------------------------------------------------------------===//

#include "swan/Codegen/GPU/Pipeline.h"
#include "swan/Registration.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;

static llvm::cl::opt<std::string> inputFile(llvm::cl::Positional,
                                            llvm::cl::desc("<input .mlir>"),
                                            llvm::cl::init("-"));
static llvm::cl::opt<std::string> outputFile("o",
                                             llvm::cl::desc("output .ptx"),
                                             llvm::cl::init("-"));
static llvm::cl::opt<std::string> chip("chip",
                                       llvm::cl::desc("sm_80 or sm_90"),
                                       llvm::cl::init("sm_80"));
static llvm::cl::opt<std::string> features("features",
                                           llvm::cl::desc("PTX features"),
                                           llvm::cl::init(""));

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::cl::ParseCommandLineOptions(argc, argv,
                                    "swan entry points to PTX text\n");
  DialectRegistry registry;
  swan::registerAllDialects(registry);
  MLIRContext context(registry);

  std::string error;
  auto input = openInputFile(inputFile, &error);
  if (!input) {
    llvm::errs() << error << "\n";
    return 1;
  }
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1;

  PassManager pm(&context);
  swan::SwanGPUPipelineOptions options;
  options.chip = chip;
  options.features = features;
  options.format = "isa";
  swan::buildSwanGPUPipeline(pm, options);
  if (failed(pm.run(*module)))
    return 1;

  auto output = openOutputFile(outputFile, &error);
  if (!output) {
    llvm::errs() << error << "\n";
    return 1;
  }
  unsigned objects = 0;
  module->walk([&](gpu::BinaryOp binary) {
    for (Attribute object : binary.getObjects()) {
      output->os() << cast<gpu::ObjectAttr>(object).getObject().getValue();
      ++objects;
    }
  });
  if (objects != 1) {
    llvm::errs() << "expected one gpu.binary object, found " << objects
                 << "\n";
    return 1;
  }
  output->keep();
  return 0;
}
