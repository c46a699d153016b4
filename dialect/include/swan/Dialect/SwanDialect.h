//===- SwanDialect.h - the swan dialect --------------------------*- C++ -*-===//

#ifndef SWAN_DIALECT_SWANDIALECT_H
#define SWAN_DIALECT_SWANDIALECT_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Dialect.h"

#include "swan/Dialect/SwanOpsDialect.h.inc"

#endif // SWAN_DIALECT_SWANDIALECT_H
