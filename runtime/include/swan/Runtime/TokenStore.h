//===- TokenStore.h - where a cache keeps its tokens ------------*- C++ -*-===//
//
// swan::Cache checks every argument and then hands the call to one token
// store: the host store (CPU memory, JIT-compiled kernels) or the CUDA store
// (GPU memory, generated GPU kernels). Both keep, per sequence and KV head, a
// dense buffer of the newest b tokens and the winnowed tokens before them,
// and both split an append between the two with splitAppend below. Plain
// C++: the CUDA store links neither LLVM nor MLIR.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_TOKENSTORE_H
#define SWAN_RUNTIME_TOKENSTORE_H

#include "swan/Runtime/Status.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace swan {

/// Where the tokens of one append go when the buffer already holds `held`
/// of at most `bufferTokens`: the oldest tokens beyond the buffer's size
/// leave it and are winnowed, those in the buffer first, in order.
struct AppendSplit {
  int64_t leave = 0;    ///< tokens winnowed by this append
  int64_t fromOld = 0;  ///< of those, the oldest ones of the buffer
  int64_t fromNew = 0;  ///< of those, the first appended ones
  int64_t toBuffer = 0; ///< appended tokens that enter the buffer
};

inline AppendSplit splitAppend(int64_t held, int64_t appended,
                               int64_t bufferTokens) {
  AppendSplit split;
  split.leave = std::max<int64_t>(0, held + appended - bufferTokens);
  split.fromOld = std::min(split.leave, held);
  split.fromNew = split.leave - split.fromOld;
  split.toBuffer = appended - split.fromNew;
  return split;
}

/// Where a sequence's tokens are and what they cost.
struct StoredSequence {
  int64_t bufferTokens = 0;
  int64_t sparseTokens = 0;
  int64_t pages = 0;        ///< allocations of winnowed tokens
  int64_t maskPages = 0;    ///< pages whose values are stored as masks
  int64_t keyMaskPages = 0; ///< pages whose keys are stored as masks
  size_t bytes = 0;         ///< buffer and pages, exactly as allocated
  double maxKeyNorm = 0.0;  ///< the largest key norm ever appended
};

/// A sequence's stored tokens expanded to dense rotated rows, oldest first:
/// what attention computes with. For tests and quality measurements.
struct SequenceRows {
  int64_t tokens = 0;
  std::vector<float> keys;     ///< [tokens][H][D], rotated, zeros where dropped
  std::vector<float> values;   ///< [tokens][H][D], rotated, zeros where dropped
  std::vector<int32_t> keyK;   ///< [tokens]: kept components, D in the buffer
  std::vector<int32_t> valueK; ///< [tokens]
  std::vector<bool> inBuffer;  ///< [tokens]
};

/// The storage and arithmetic behind swan::Cache. Callers have checked the
/// arguments (swan::Cache does): sequences named by attention, maxKeyNorm,
/// sequence, release and decompress exist, k lies in [1, D]. A failing call
/// leaves the store as it was. Thread safety as swan.h states for the cache.
class TokenStore {
public:
  virtual ~TokenStore() = default;

  /// Appends n tokens (keys, values [n][H][D] f32) to `seq`, creating it when
  /// new; tokens leaving the buffer are winnowed to (kKey, kValue).
  virtual Status append(int32_t seq, int64_t n, const float *keys,
                        const float *values, int32_t kKey, int32_t kValue) = 0;
  /// Lowers every winnowed token to at most (kKey, kValue) components and
  /// gives the memory back.
  virtual Status rewinnow(int32_t kKey, int32_t kValue) = 0;
  /// q, out: [count][H·G][D]; every sequence holds a token.
  virtual Status attention(const int32_t *seqs, int64_t count, const float *q,
                           float scale, float *out) = 0;
  virtual void release(int32_t seq) = 0;

  /// Tokens `seq` holds, -1 when it is unknown; a lookup, for every call.
  virtual int64_t tokens(int32_t seq) const = 0;
  bool contains(int32_t seq) const { return tokens(seq) >= 0; }
  /// The largest key norm ever appended to `seq`: with a query's norm it
  /// bounds the logits before attention runs. A lookup, for every step.
  virtual double maxKeyNorm(int32_t seq) const = 0;
  virtual int64_t sequenceCount() const = 0;
  /// The whole account of `seq`, for stats: may walk all its pages.
  virtual StoredSequence sequence(int32_t seq) const = 0;
  /// Token storage of every sequence, exactly as allocated.
  virtual size_t bytes() const = 0;
  virtual Status decompress(int32_t seq, SequenceRows &out) const = 0;
};

} // namespace swan

#endif // SWAN_RUNTIME_TOKENSTORE_H
