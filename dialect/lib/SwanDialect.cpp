//===- SwanDialect.cpp - the swan dialect ---------------------------------===//

#include "swan/Dialect/SwanDialect.h"
#include "swan/Dialect/SwanOps.h"

#include "swan/Dialect/SwanOpsDialect.cpp.inc"

void swan::SwanDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "swan/Dialect/SwanOps.cpp.inc"
      >();
}
