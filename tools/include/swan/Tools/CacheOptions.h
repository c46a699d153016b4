//===- CacheOptions.h - cache settings the tools share -----------*- C++
//-*-===//
//
// The command-line values of cache settings that more than one tool takes,
// worded once.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TOOLS_CACHEOPTIONS_H
#define SWAN_TOOLS_CACHEOPTIONS_H

#include "swan/Runtime/RowLayout.h"

#include "llvm/Support/CommandLine.h"

namespace swan::tools {

/// --winnowed: how winnowed rows store their kept values.
inline constexpr char kWinnowedFlag[] = "winnowed";
inline constexpr char kWinnowedHelp[] =
    "How winnowed rows store their kept values";
inline llvm::cl::ValuesClass winnowedStorageValues() {
  return llvm::cl::values(
      clEnumValN(WinnowedStorage::AsStorage, "dtype", "in --dtype (default)"),
      clEnumValN(WinnowedStorage::Int8, "int8",
                 "SWAN-Q8: int8 with an f32 scale per row"));
}

} // namespace swan::tools

#endif // SWAN_TOOLS_CACHEOPTIONS_H
