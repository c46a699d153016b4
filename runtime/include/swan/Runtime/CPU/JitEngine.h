//===- JitEngine.h - lower and JIT-compile a swan module --------*- C++ -*-===//
//
// Runs the CPU pipeline (swan::buildSwanCPUPipeline, the same one swan-opt
// and the lit tests use) on a module and JIT-compiles the result with
// mlir::ExecutionEngine at O3 for the host CPU and its features.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_CPU_JITENGINE_H
#define SWAN_RUNTIME_CPU_JITENGINE_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <string>

namespace mlir {
class DialectRegistry;
class ExecutionEngine;
} // namespace mlir

namespace swan {

class JitEngine {
public:
  /// Lowers `module` in place with the CPU pipeline and compiles it. The
  /// module's context must have the registrations of
  /// registerJitDialects.
  static llvm::Expected<std::unique_ptr<JitEngine>>
  compile(mlir::ModuleOp module);

  /// The address of `_mlir_ciface_<name>`, the C interface of an entry point
  /// carrying `llvm.emit_c_interface`.
  llvm::Expected<void *> lookupCInterface(llvm::StringRef name) const;

  /// The host the code is compiled for: "<triple> <cpu> <features>". Part of
  /// the kernel cache's key.
  static const std::string &hostTarget();

  /// Everything a context needs before building and compiling a kernel
  /// module: swan's dialect list plus the LLVM IR translations.
  static void registerJitDialects(mlir::DialectRegistry &registry);

  ~JitEngine();

private:
  explicit JitEngine(std::unique_ptr<mlir::ExecutionEngine> engine);
  std::unique_ptr<mlir::ExecutionEngine> engine;
};

} // namespace swan

#endif // SWAN_RUNTIME_CPU_JITENGINE_H
