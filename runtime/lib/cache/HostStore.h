//===- HostStore.h - the tokens of a CPU cache in host memory ---*- C++ -*-===//
//
// The token store of swan::Cache with device = SWAN_DEVICE_CPU. Per
// sequence: one dense buffer allocation, keys [H][cap][D] then values
// [H][cap][D] in the storage type, holding a FIFO window of the newest b
// tokens; and a list of pages, each one allocation with one (k_K, k_V), one
// key and one value encoding and room for P tokens of every KV head:
//   key scales [H][P], value scales [H][P]   (f32; SWAN-Q8 only)
//   key values [H][P][k_K], value values [H][P][k_V]   (storage type, or
//   int8 with SWAN-Q8)
//   key positions [H][P][k_K] indices (uint8, ascending), or [H][P][D/8]
//   occupancy masks; value positions likewise with k_V
// so the tokens of one head in one page are one SparseBlock for the kernels.
// Scales come first, then values, then positions, to keep every section
// aligned for its type; re-winnowing never moves the scales.
// Both encodings are chosen per page when it is created (encodingFor and
// keyEncodingFor) and kept for the page's life.
//
// Every byte of token storage comes from malloc with its exact size, and the
// byte counts are summed from those sizes, so they are what is allocated.
// All numeric work goes through the JIT-compiled KernelSet; this class only
// places bytes. Private to libswan.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_CACHE_HOSTSTORE_H
#define SWAN_RUNTIME_CACHE_HOSTSTORE_H

#include "swan/Cache.h"
#include "swan/Runtime/CacheHost.h"
#include "swan/Runtime/TokenStore.h"

#include <map>
#include <memory>
#include <vector>

namespace swan {

class HostStore final : public TokenStore {
public:
  /// rotK, rotV: [H][D][D] each, checked by the caller; copied.
  HostStore(const CacheConfig &config, std::shared_ptr<const KernelSet> kernels,
            const float *rotK, const float *rotV);

  Status append(int32_t seq, int64_t n, const float *keys, const float *values,
                int32_t kKey, int32_t kValue) override;
  Status rewinnow(int32_t kKey, int32_t kValue) override;
  Status attention(const int32_t *seqs, int64_t count, const float *q,
                   float scale, float *out) override;
  void release(int32_t seq) override { sequences.erase(seq); }

  int64_t tokens(int32_t seq) const override {
    auto found = sequences.find(seq);
    return found == sequences.end()
               ? -1
               : found->second.buffer.count + found->second.sparseTokens;
  }
  double maxKeyNorm(int32_t seq) const override {
    return sequences.at(seq).maxKeyNorm;
  }
  int64_t sequenceCount() const override {
    return static_cast<int64_t>(sequences.size());
  }
  StoredSequence sequence(int32_t seq) const override;
  size_t bytes() const override;
  Status decompress(int32_t seq, SequenceRows &out) const override;

private:
  /// A run of winnowed tokens sharing one (k_K, k_V); see the file comment.
  struct Page {
    HostArray<char> memory;
    size_t bytes = 0; // what malloc/realloc gave
    int32_t kKey = 0, kValue = 0;
    SparseEncoding keyEncoding = SparseEncoding::Indices;
    SparseEncoding valueEncoding = SparseEncoding::Indices;
    int64_t capacity = 0, used = 0;
  };

  /// The FIFO window [start, start + count) of a capacity-row allocation.
  struct DenseBuffer {
    HostArray<char> memory;
    size_t bytes = 0;
    int64_t capacity = 0, start = 0, count = 0;
  };

  struct Sequence {
    DenseBuffer buffer;
    std::vector<Page> pages;
    int64_t sparseTokens = 0;
    /// The largest key norm ever appended (rotation keeps norms): with the
    /// query norm it bounds every logit before attention runs.
    double maxKeyNorm = 0.0;

    size_t bytes() const;
  };

  int64_t dim() const { return config.headDim; }
  int64_t heads() const { return config.numKvHeads; }
  size_t element() const { return elementBytes(config.storage); }
  /// Bytes of a winnowed value and of a winnowed row's scale.
  size_t winnowedElement() const {
    return winnowedElementBytes(config.storage, config.winnowed);
  }
  int64_t scaleBytes() const { return rowScaleBytes(config.winnowed); }
  bool quantised() const { return config.winnowed == WinnowedStorage::Int8; }
  /// Bytes of a page's scale sections, which come first.
  size_t scaleSectionBytes(int64_t capacity) const {
    return static_cast<size_t>(2 * heads() * capacity * scaleBytes());
  }
  int64_t bufferCapacity() const;
  SparseEncoding encodingFor(int32_t kValue) const;
  SparseEncoding keyEncodingFor(int32_t kKey) const;
  size_t pageBytes(int64_t capacity, int32_t kKey, int32_t kValue,
                   SparseEncoding keyEncoding,
                   SparseEncoding valueEncoding) const;

  // Section addresses inside a page or the buffer; the scales are null
  // unless quantised().
  float *keyScales(const Page &p, int64_t h, int64_t slot) const;
  float *valueScales(const Page &p, int64_t h, int64_t slot) const;
  char *keyValues(const Page &p, int64_t h, int64_t slot) const;
  char *valueValues(const Page &p, int64_t h, int64_t slot) const;
  uint8_t *keyPositions(const Page &p, int64_t h, int64_t slot) const;
  uint8_t *valuePositions(const Page &p, int64_t h, int64_t slot) const;
  char *bufferKeys(const DenseBuffer &b, int64_t h, int64_t row) const;
  char *bufferValues(const DenseBuffer &b, int64_t h, int64_t row) const;
  const float *keyRotation(int64_t h) const {
    return rotK.data() + h * dim() * dim();
  }
  const float *valueRotation(int64_t h) const {
    return rotV.data() + h * dim() * dim();
  }

  void shrinkPage(Page &page, int32_t kKey, int32_t kValue) const;

  CacheConfig config;
  std::shared_ptr<const KernelSet> kernels;
  std::vector<float> rotK, rotV, identity;
  std::map<int32_t, Sequence> sequences;
};

} // namespace swan

#endif // SWAN_RUNTIME_CACHE_HOSTSTORE_H
