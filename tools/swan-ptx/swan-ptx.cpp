//===- swan-ptx.cpp - swan entry points to PTX files ----------------------===//
//
// Runs the one GPU pipeline (swan-lower-to-nvvm) on a module of swan entry
// points and writes the PTX of its kernels as plain text: the form ptxas,
// the CUDA driver's cuModuleLoadData and the runtime's build step consume.
// With --host-object it runs the host twin (swan-lower-gpu-to-host) instead
// and writes an object file of the same kernels for this machine, which the
// tests' stand-in driver runs in its kernel emulator.
//
//===----------------------------------------------------------------------===//

#include "swan/Codegen/GPU/Pipeline.h"
#include "swan/Registration.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Target/LLVMIR/Export.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"

using namespace mlir;

static llvm::cl::opt<std::string> inputFile(llvm::cl::Positional,
                                            llvm::cl::desc("<input .mlir>"),
                                            llvm::cl::init("-"));
static llvm::cl::opt<std::string>
    outputFile("o", llvm::cl::desc("output .ptx (or object file)"),
               llvm::cl::init("-"));
static llvm::cl::opt<std::string> chip("chip",
                                       llvm::cl::desc("sm_80 or sm_90"),
                                       llvm::cl::init("sm_80"));
static llvm::cl::opt<std::string> features("features",
                                           llvm::cl::desc("PTX features"),
                                           llvm::cl::init(""));

static llvm::cl::opt<bool> hostObject(
    "host-object",
    llvm::cl::desc("Write the kernels as an object file for this machine's "
                   "kernel emulator instead of PTX"),
    llvm::cl::init(false));
static llvm::cl::opt<std::string> symbolPrefix(
    "symbol-prefix",
    llvm::cl::desc("With --host-object: prefix of every exported symbol"),
    llvm::cl::init(""));

/// Lowers with the host pipeline and writes position-independent code for
/// the default target of this machine, at O2: the emulator's own speed
/// matters, its kernels' much less.
static int writeHostObject(ModuleOp module) {
  PassManager pm(module.getContext());
  swan::SwanGPUHostPipelineOptions options;
  options.symbolPrefix = symbolPrefix;
  swan::buildSwanGPUHostPipeline(pm, options);
  if (failed(pm.run(module)))
    return 1;

  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  std::string error;
  llvm::Triple triple(llvm::sys::getDefaultTargetTriple());
  const llvm::Target *target =
      llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target) {
    llvm::errs() << error << "\n";
    return 1;
  }
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple, "generic", "", llvm::TargetOptions(), llvm::Reloc::PIC_));

  llvm::LLVMContext llvmContext;
  std::unique_ptr<llvm::Module> llvmModule =
      translateModuleToLLVMIR(module, llvmContext);
  if (!llvmModule)
    return 1;
  llvmModule->setTargetTriple(triple);
  llvmModule->setDataLayout(machine->createDataLayout());
  if (llvm::Error e =
          makeOptimizingTransformer(2, 0, machine.get())(llvmModule.get())) {
    llvm::errs() << llvm::toString(std::move(e)) << "\n";
    return 1;
  }

  auto output = openOutputFile(outputFile, &error);
  if (!output) {
    llvm::errs() << error << "\n";
    return 1;
  }
  llvm::legacy::PassManager codegen;
  if (machine->addPassesToEmitFile(codegen, output->os(), nullptr,
                                   llvm::CodeGenFileType::ObjectFile)) {
    llvm::errs() << "the host target cannot emit object files\n";
    return 1;
  }
  codegen.run(*llvmModule);
  output->keep();
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  llvm::cl::ParseCommandLineOptions(
      argc, argv,
      "swan entry points to PTX text, or to a host object file for the "
      "kernel emulator\n");
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
  if (hostObject)
    return writeHostObject(*module);

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
