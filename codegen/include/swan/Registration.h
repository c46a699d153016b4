//===- Registration.h - everything a swan tool registers ---------*- C++ -*-===//
//
// The one list of dialects, interfaces, passes and pipelines that swan-opt,
// the runtime and every other tool register.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_REGISTRATION_H
#define SWAN_REGISTRATION_H

namespace mlir {
class DialectRegistry;
} // namespace mlir

namespace swan {

/// Adds the swan dialect, the upstream dialects the pipelines produce, and
/// the external interface models their conversions need.
void registerAllDialects(mlir::DialectRegistry &registry);

/// Registers swan's passes, the upstream passes the pipelines use, and the
/// named pipelines, for textual pass pipelines (swan-opt, lit).
void registerAllPasses();

} // namespace swan

#endif // SWAN_REGISTRATION_H
