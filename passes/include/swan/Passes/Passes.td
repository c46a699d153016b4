//===- Passes.td - swan-level transformations --------------*- tablegen -*-===//

#ifndef SWAN_PASSES_PASSES_TD
#define SWAN_PASSES_PASSES_TD

include "mlir/Pass/PassBase.td"

def SwanFuseRotateWinnow : Pass<"swan-fuse-rotate-winnow"> {
  let summary = "Fuses a rotation whose only use is a winnow into swan.compress";
  let description = [{
    `swan.winnow (swan.rotate %x by %r) keep %k` becomes
    `swan.compress %x by %r keep %k` when the winnow is the rotation's only
    user, so that the rotated rows are never stored.
  }];
  let dependentDialects = ["::swan::SwanDialect"];
}

#endif // SWAN_PASSES_PASSES_TD
