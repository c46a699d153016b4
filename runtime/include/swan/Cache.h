//===- Cache.h - the SWAN KV cache of one attention layer -------*- C++ -*-===//
//
// The C++ API of the cache (the C API in swan.h wraps it). Per sequence and
// KV head the cache holds a dense FIFO buffer of the newest tokens (rotated,
// storage type) and a sparse cache of winnowed tokens in pages; each page has
// one (k_K, k_V), one key and one value encoding, so tokens with different k
// sit side by side. The cache checks every call, then one token store does
// the work: host memory and JIT-compiled kernels on the CPU, GPU memory and
// generated kernels with CUDA (swan/Runtime/TokenStore.h).
//
// Every failing call returns an error and leaves the cache as it was:
// arguments are validated first, memory is allocated before anything
// changes, and the change is committed at the end.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CACHE_H
#define SWAN_CACHE_H

#include "swan/Runtime/CPU/Kernels.h"
#include "swan/Runtime/TokenStore.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace swan {

/// Why a cache call failed; the C API returns these as swan_status.
enum class CacheErrorCode {
  InvalidArgument,
  OutOfMemory,
  Unsupported,
  Internal
};

/// The error of a failing cache call: a code and a message that names the
/// argument at fault.
class CacheError : public llvm::ErrorInfo<CacheError> {
public:
  static char ID;
  CacheError(CacheErrorCode code, std::string message)
      : code(code), message(std::move(message)) {}
  CacheErrorCode getCode() const { return code; }
  const std::string &getMessage() const { return message; }
  void log(llvm::raw_ostream &os) const override;
  std::error_code convertToErrorCode() const override;

private:
  CacheErrorCode code;
  std::string message;
};

enum class Device { CPU, CUDA };

/// How pages record which components their winnowed values, or keys, kept
/// (docs/DESIGN.md §5); one enum serves both. For values, Auto chooses per
/// page, when the page is created, whichever is smaller at that page's k_V: the
/// D-bit mask when D/8 < k_V, k indices otherwise. For keys, Auto takes the
/// mask only when it is smaller (D/8 < k_K) and its expanded scores are cheap
/// enough (G · D/8 <= k_K); see HostStore::keyEncodingFor.
enum class ValueEncoding { Auto, Indices, Mask };

struct CacheConfig {
  int32_t headDim = 128;
  int32_t numKvHeads = 8;
  int32_t groupSize = 4;
  int32_t bufferTokens = 128;
  int32_t maxSequences = 64;
  int32_t kKey = 32;
  int32_t kValue = 32;
  StorageType storage = StorageType::F16;
  Device device = Device::CPU;
  bool valuesPrerotated = false;
  bool outputRotated = false;
  int32_t pageTokens = 256; ///< Tokens per sparse page.
  ValueEncoding valueEncoding = ValueEncoding::Auto;
  ValueEncoding keyEncoding = ValueEncoding::Auto;
  /// SWAN-Q8 (Int8): winnowed values as int8 with one f32 scale per row,
  /// k + 4 bytes instead of 2k (fp16) before positions; the buffer keeps
  /// `storage`. CPU only for now.
  WinnowedStorage winnowed = WinnowedStorage::AsStorage;
};

/// Where a sequence's tokens are, what they cost, and whether SWAN pays for
/// it at the current k.
struct SequenceStats : StoredSequence {
  /// Cache::breakEvenTokens() when the stats were taken.
  int64_t breakEvenTokens = 0;
  /// Fewer tokens than that: at the current k, SWAN attention costs this
  /// sequence more arithmetic than dense attention would.
  bool belowBreakEven = false;
};

/// A sequence's stored tokens expanded to dense rotated rows, oldest first.
using DecompressedSequence = SequenceRows;

class CacheImpl;

class Cache {
public:
  /// rotK, rotV: [H][D][D] row-major, orthogonal; copied.
  static llvm::Expected<Cache> create(const CacheConfig &config,
                                      llvm::ArrayRef<float> rotK,
                                      llvm::ArrayRef<float> rotV);
  Cache(Cache &&) noexcept;
  Cache &operator=(Cache &&) noexcept;
  ~Cache();

  const CacheConfig &config() const;

  /// Appends `tokens` tokens ([tokens][H][D] keys and values) to `seq`,
  /// creating it when new. Many tokens at once is the prefill path: those
  /// that go straight to the sparse cache are compressed in bulk.
  llvm::Error append(int32_t seq, int64_t tokens, const float *keys,
                     const float *values);
  /// k for tokens winnowed from now on.
  llvm::Error setK(int32_t kKey, int32_t kValue);
  /// setK, and every stored winnowed token keeps at most the new k.
  llvm::Error rewinnow(int32_t kKey, int32_t kValue);
  /// q, out: [seqs.size()][H*G][D].
  llvm::Error attention(llvm::ArrayRef<int32_t> seqs, const float *q,
                        float scale, float *out) const;
  llvm::Error release(int32_t seq);

  /// -1 for an unknown sequence.
  int64_t tokens(int32_t seq) const;
  /// Token storage held by every sequence, exactly as allocated.
  size_t bytes() const;
  int32_t kKey() const;
  int32_t kValue() const;
  /// computeBreakEvenTokens (swan/Runtime/CostModel.h) at the current k:
  /// sequences shorter than this cost SWAN attention more arithmetic than
  /// dense attention. INT64_MAX when k_K = k_V = D.
  int64_t breakEvenTokens() const;
  int64_t sequenceCount() const;
  llvm::Expected<SequenceStats> stats(int32_t seq) const;
  llvm::Expected<DecompressedSequence> decompress(int32_t seq) const;

private:
  explicit Cache(std::unique_ptr<CacheImpl> impl);
  std::unique_ptr<CacheImpl> impl;
};

} // namespace swan

#endif // SWAN_CACHE_H
