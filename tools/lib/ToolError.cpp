//===- ToolError.cpp - how the swan tools word and report errors ----------===//

#include "swan/Tools/ToolError.h"

#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

llvm::Error swan::tools::toolError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

int swan::tools::reportError(llvm::StringRef tool, llvm::Error error) {
  llvm::WithColor::error(llvm::errs(), tool)
      << llvm::toString(std::move(error)) << "\n";
  return 1;
}
