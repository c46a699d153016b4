//===- JitEngine.cpp - lower and JIT-compile a swan module ----------------===//

#include "swan/Runtime/CPU/JitEngine.h"

#include "swan/Codegen/CPU/Pipeline.h"
#include "swan/Registration.h"

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/ExecutionEngine/OptUtils.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"

#include <cstdlib>
#include <string>

using namespace mlir;

namespace {

/// The native target must be initialised once per process before any
/// target machine is created.
llvm::Error initialiseNativeTarget() {
  // A function-local static: initialised once, thread-safely.
  static const bool available = !llvm::InitializeNativeTarget() &&
                                !llvm::InitializeNativeTargetAsmPrinter();
  if (!available)
    return llvm::createStringError("JIT: the native target is unavailable");
  return llvm::Error::success();
}

/// A target machine for the host CPU with every feature it reports, at O3.
llvm::Expected<std::unique_ptr<llvm::TargetMachine>> createHostTargetMachine() {
  llvm::orc::JITTargetMachineBuilder builder{
      llvm::Triple(llvm::sys::getProcessTriple())};
  builder.setCPU(llvm::sys::getHostCPUName().str());
  llvm::SubtargetFeatures features;
  for (const auto &feature : llvm::sys::getHostCPUFeatures())
    features.AddFeature(feature.getKey(), feature.getValue());
  builder.addFeatures(features.getFeatures());
  builder.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  return builder.createTargetMachine();
}

} // namespace

swan::JitEngine::JitEngine(std::unique_ptr<ExecutionEngine> engine)
    : engine(std::move(engine)) {}

swan::JitEngine::~JitEngine() = default;

void swan::JitEngine::registerJitDialects(DialectRegistry &registry) {
  swan::registerAllDialects(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
}

const std::string &swan::JitEngine::hostTarget() {
  static const std::string target = [] {
    std::string description =
        llvm::sys::getProcessTriple() + " " + llvm::sys::getHostCPUName().str();
    llvm::SubtargetFeatures features;
    for (const auto &feature : llvm::sys::getHostCPUFeatures())
      features.AddFeature(feature.getKey(), feature.getValue());
    return description + " " + features.getString();
  }();
  return target;
}

llvm::Expected<std::unique_ptr<swan::JitEngine>>
swan::JitEngine::compile(ModuleOp module) {
  if (llvm::Error error = initialiseNativeTarget())
    return std::move(error);

  // Lower with the one CPU pipeline; collect its diagnostics for the error.
  MLIRContext *context = module->getContext();
  std::string diagnostics;
  {
    ScopedDiagnosticHandler handler(context, [&](Diagnostic &diagnostic) {
      diagnostics += diagnostic.str() + "\n";
      return success();
    });
    PassManager pm(context, module->getName().getStringRef());
    // Verifying after each of the pipeline's passes was an eighth of a
    // compilation; the lit tests run this pipeline with that check
    // (swan-opt), and the result is still verified once before translation.
    pm.enableVerifier(false);
    swan::buildSwanCPUPipeline(pm, swan::SwanCPUPipelineOptions());
    if (failed(pm.run(module)) || failed(verify(module)))
      return llvm::createStringError("JIT: lowering with the CPU pipeline "
                                     "failed: " +
                                     diagnostics);
  }

  // One target machine drives the O3 IR optimisations, the other the code
  // generator (ExecutionEngine takes ownership of it).
  auto optimiserMachine = createHostTargetMachine();
  if (!optimiserMachine)
    return optimiserMachine.takeError();
  auto codegenMachine = createHostTargetMachine();
  if (!codegenMachine)
    return codegenMachine.takeError();

  std::function<llvm::Error(llvm::Module *)> optimise =
      makeOptimizingTransformer(/*optLevel=*/3, /*sizeLevel=*/0,
                                optimiserMachine->get());
  ExecutionEngineOptions options;
  options.transformer = optimise;
  options.jitCodeGenOptLevel = llvm::CodeGenOptLevel::Aggressive;
  options.enableGDBNotificationListener = false;
  // SWAN_JIT_PERF=1 names the kernels for `perf record -k 1` + `perf
  // inject --jit` (docs/PERFORMANCE.md, profiling).
  const char *perf = std::getenv("SWAN_JIT_PERF");
  options.enablePerfNotificationListener = perf && std::string(perf) == "1";
  auto engine =
      ExecutionEngine::create(module, options, std::move(*codegenMachine));
  if (!engine)
    return engine.takeError();
  (*engine)->initialize();
  return std::unique_ptr<JitEngine>(new JitEngine(std::move(*engine)));
}

llvm::Expected<void *>
swan::JitEngine::lookupCInterface(llvm::StringRef name) const {
  return engine->lookup(("_mlir_ciface_" + name).str());
}
