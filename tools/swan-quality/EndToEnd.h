//===- EndToEnd.h - swan-quality on a real model ---------------*- C++ -*-===//
//
// The end-to-end mode (--end-to-end, or --model FILE): every method at every
// byte budget inside the model, scored by next-token KL, top-1 agreement and
// the change of the stories' NLL (swan/Runtime/Eval/ModelQuality.h).
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TOOLS_SWAN_QUALITY_ENDTOEND_H
#define SWAN_TOOLS_SWAN_QUALITY_ENDTOEND_H

#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace swan::tools {

struct EndToEndOptions {
  std::string model;
  int64_t stories = 8;
  int64_t calibrationStories = 16;
  int64_t buffer = 32;
  std::vector<double> budgets; ///< fractions of dense fp16 (4·D per token)
  std::string csvPath, jsonPath, plotPath;
  bool progress = true;
};

llvm::Error runEndToEnd(const EndToEndOptions &options);

} // namespace swan::tools

#endif // SWAN_TOOLS_SWAN_QUALITY_ENDTOEND_H
