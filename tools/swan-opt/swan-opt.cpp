//===- swan-opt.cpp - the swan optimizer driver ---------------------------===//

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "swan/Registration.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  swan::registerAllDialects(registry);
  swan::registerAllPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "swan optimizer driver: parses, transforms and lowers "
                  "swan IR\n",
      registry));
}
