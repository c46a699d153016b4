//===- ModelDemo.h - swan-demo's main job: a real model writing -*- C++ -*-===//
//
// A llama2.c model (by default stories15M) writes a story with a swan::Cache
// in every layer while k is lowered at run time (set_k, then rewinnow),
// next to the same model over a dense cache fed the same tokens. Per phase:
// bytes held against a dense fp16 cache, next-token KL(dense ‖ swan), top-1
// agreement, and time per token of the whole model with each cache.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TOOLS_SWAN_DEMO_MODELDEMO_H
#define SWAN_TOOLS_SWAN_DEMO_MODELDEMO_H

#include "swan/Cache.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>
#include <vector>

namespace swan::tools {

struct ModelDemoOptions {
  std::string model, tokenizer, prompt;
  int32_t steps = -1;          ///< -1: to the end of the context
  std::vector<int32_t> kKey;   ///< per phase
  std::vector<int32_t> kValue; ///< per phase
  int32_t buffer = 32;
  int32_t pageTokens = 16;
  StorageType storage = StorageType::F16;
  ValueEncoding valueEncoding = ValueEncoding::Auto;
  WinnowedStorage winnowed = WinnowedStorage::AsStorage;
  int32_t calibrationStories = 16;
  float temperature = 0.0f; ///< 0: greedy
  uint64_t seed = 0;
  bool progress = true;
};

llvm::Error runModelDemo(const ModelDemoOptions &options);

} // namespace swan::tools

#endif // SWAN_TOOLS_SWAN_DEMO_MODELDEMO_H
