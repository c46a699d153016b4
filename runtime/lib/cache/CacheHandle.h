//===- CacheHandle.h - what a swan_cache pointer holds -----------*- C++ -*-===//
//
// Private to libswan and its tests: the C handle wraps the C++ cache, so a
// test driving the C API can still look inside (decompress) to check it.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_CACHEHANDLE_H
#define SWAN_RUNTIME_CACHEHANDLE_H

#include "swan/Cache.h"

struct swan_cache {
  explicit swan_cache(swan::Cache cache) : cache(std::move(cache)) {}
  swan::Cache cache;
};

#endif // SWAN_RUNTIME_CACHEHANDLE_H
