//===- SwanIRFuzzer.cpp - libFuzzer target for the swan IR front end ------===//
//
// Any text is either rejected by the parser or the verifiers with a
// diagnostic, or is a valid module that canonicalisation and the swan passes
// then process without crashing. MLIR's assertions are off in the Debian
// build, so a verifier that misses a rule shows up here as a crash in a
// later fold or pass, not as an assertion. Built with SWAN_ENABLE_FUZZERS=ON:
//   build-fuzz/bin/swan-ir-fuzzer -max_total_time=60 test/fuzz/corpus/ir
//
//===----------------------------------------------------------------------===//

#include "swan/Registration.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

struct FuzzState {
  mlir::DialectRegistry registry;
  FuzzState() {
    swan::registerAllDialects(registry);
    swan::registerAllPasses();
  }
};

FuzzState &state() {
  static FuzzState *s = new FuzzState; // leaked: lives for the process
  return *s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // A fresh context per input: no state carries over between inputs.
  mlir::MLIRContext context(state().registry,
                            mlir::MLIRContext::Threading::DISABLED);
  context.allowUnregisteredDialects(false);
  context.loadAllAvailableDialects();
  bool diagnosed = false;
  mlir::ScopedDiagnosticHandler handler(&context, [&](mlir::Diagnostic &d) {
    if (d.getSeverity() == mlir::DiagnosticSeverity::Error)
      diagnosed = true;
    return mlir::success();
  });
  // MLIR's lexer reads one past the end of its buffer, where every source
  // file it is given has a terminating NUL: give the input one too.
  std::string text(reinterpret_cast<const char *>(data), size);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(text, &context);
  if (!module) {
    // Rejection must come with a diagnostic, never silently.
    if (!diagnosed)
      std::abort();
    return 0;
  }
  mlir::PassManager pm(&context);
  pm.enableVerifier(true);
  if (mlir::failed(mlir::parsePassPipeline(
          "builtin.module(canonicalize,swan-fuse-rotate-winnow,"
          "swan-decompose-decode-attention,canonicalize)",
          pm, llvm::errs())))
    std::abort();
  // Passes may reject a module (with a diagnostic); they must not crash.
  if (mlir::failed(pm.run(*module)) && !diagnosed)
    std::abort();
  return 0;
}
