//===- ModelFiles.cpp - where scripts/setup keeps the real model ----------===//

#include "swan/Runtime/Model/ModelFiles.h"

#include <cstdlib>

std::string swan::model::defaultModelDir() {
  if (const char *dir = std::getenv("SWAN_MODEL_DIR"); dir && *dir)
    return dir;
  if (const char *cache = std::getenv("XDG_CACHE_HOME"); cache && *cache)
    return std::string(cache) + "/swan/stories15M";
  const char *home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/swan/stories15M";
}

std::string swan::model::defaultModelPath() {
  return defaultModelDir() + "/model.bin";
}

std::string swan::model::defaultTokenizerPath() {
  return defaultModelDir() + "/tokenizer.bin";
}
