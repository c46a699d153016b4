//===- Passes.h - swan to the gpu dialect ------------------------*- C++ -*-===//

#ifndef SWAN_CODEGEN_GPU_PASSES_H
#define SWAN_CODEGEN_GPU_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Pass/Pass.h"

namespace swan {

#define GEN_PASS_DECL
#include "swan/Codegen/GPU/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "swan/Codegen/GPU/Passes.h.inc"

/// The inline PTX by which the kernels ask L2 for the line holding a
/// generic address (operand $0, i64): NVPTX selects llvm.nvvm.prefetch only
/// for sm_90 and newer. swan-gpu-kernels-to-host turns it into a host read
/// of that byte.
inline constexpr const char *kPrefetchL2Ptx = "prefetch.L2 [$0];";

} // namespace swan

#endif // SWAN_CODEGEN_GPU_PASSES_H
