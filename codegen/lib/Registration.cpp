//===- Registration.cpp - everything a swan tool registers ----------------===//

#include "swan/Registration.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "swan/Codegen/CPU/Pipeline.h"
#include "swan/Codegen/GPU/Pipeline.h"
#include "swan/Dialect/SwanDialect.h"
#include "swan/Passes/Passes.h"

void swan::registerAllDialects(mlir::DialectRegistry &registry) {
  registry.insert<swan::SwanDialect, mlir::func::FuncDialect,
                  mlir::arith::ArithDialect, mlir::tensor::TensorDialect>();
  swan::registerSwanCPUDialects(registry);
  swan::registerSwanGPUDialects(registry);
}

void swan::registerAllPasses() {
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  swan::registerSwanPasses();
  swan::registerSwanCPUPipeline();
  swan::registerSwanGPUPipeline();
}
