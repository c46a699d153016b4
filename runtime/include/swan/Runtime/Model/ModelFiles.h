//===- ModelFiles.h - where scripts/setup keeps the real model -*- C++ -*-===//
//
// scripts/setup fetches stories15M and its tokenizer into
// $SWAN_MODEL_DIR, by default $XDG_CACHE_HOME/swan/stories15M (or
// ~/.cache/swan/stories15M): outside the source tree, shared by clones.
// The tools default to those files; setup keeps the same rule.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_MODEL_MODELFILES_H
#define SWAN_RUNTIME_MODEL_MODELFILES_H

#include <string>

namespace swan::model {

std::string defaultModelDir();
std::string defaultModelPath();     ///< defaultModelDir()/model.bin
std::string defaultTokenizerPath(); ///< defaultModelDir()/tokenizer.bin

} // namespace swan::model

#endif // SWAN_RUNTIME_MODEL_MODELFILES_H
