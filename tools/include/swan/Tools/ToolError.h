//===- ToolError.h - how the swan tools word and report errors --*- C++ -*-===//
//
// A tool's failures are llvm::Error values carrying only a message for the
// user; main() prints the one that ends the run as "<tool>: error: ..." on
// stderr and exits with 1.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TOOLS_TOOLERROR_H
#define SWAN_TOOLS_TOOLERROR_H

#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

namespace swan::tools {

/// An error whose message is all it carries.
llvm::Error toolError(const llvm::Twine &message);

/// Prints `error` as "<tool>: error: <message>" on stderr and returns the
/// exit status for main() to return.
int reportError(llvm::StringRef tool, llvm::Error error);

} // namespace swan::tools

#endif // SWAN_TOOLS_TOOLERROR_H
