//===- KernelModule.h - the entry points of one specialisation --*- C++ -*-===//
//
// Builds, with the MLIR builder API, the module of kernel entry points that
// docs/KERNELS.md specifies for one KernelKey: thin memref wrappers around
// one swan op each, ready for the CPU pipeline.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_CPU_KERNELMODULE_H
#define SWAN_RUNTIME_CPU_KERNELMODULE_H

#include "swan/Runtime/CPU/Kernels.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mlir {
class MLIRContext;
} // namespace mlir

namespace swan {

/// Names of the entry points; the C interface of `name` is
/// `_mlir_ciface_<name>`.
namespace entry {
inline constexpr const char *kRotate = "rotate";
inline constexpr const char *kCompress = "compress";
inline constexpr const char *kCompressMask = "compress_mask";
inline constexpr const char *kPartialSparse = "partial_sparse";
inline constexpr const char *kPartialSparseMask = "partial_sparse_mask";
inline constexpr const char *kPartialSparseKeyMask = "partial_sparse_key_mask";
inline constexpr const char *kPartialSparseMasks = "partial_sparse_masks";
inline constexpr const char *kPartialDense = "partial_dense";
inline constexpr const char *kMerge = "merge";
inline constexpr const char *kMergeRotated = "merge_rotated";
} // namespace entry

/// Builds and verifies the entry-point module of `key` in `context`, which
/// must have the swan, func, arith and bufferization dialects available
/// (swan::registerAllDialects): every entry point, or with `only` the one of
/// that name. Fails on an invalid key, an unknown name or if the module does
/// not verify.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
buildKernelModule(mlir::MLIRContext &context, const KernelKey &key,
                  llvm::StringRef only = {});

} // namespace swan

#endif // SWAN_RUNTIME_CPU_KERNELMODULE_H
