//===- SwanOps.h - swan operations -------------------------------*- C++ -*-===//

#ifndef SWAN_DIALECT_SWANOPS_H
#define SWAN_DIALECT_SWANOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "swan/Dialect/SwanDialect.h"

#include "swan/Dialect/SwanOpsEnums.h.inc"

#define GET_OP_CLASSES
#include "swan/Dialect/SwanOps.h.inc"

#endif // SWAN_DIALECT_SWANOPS_H
