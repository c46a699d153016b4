//===- DeviceStore.h - the SWAN KV cache in GPU memory ----------*- C++ -*-===//
//
// The storage and arithmetic of swan::Cache with device = SWAN_DEVICE_CUDA
// (swan/Cache.h validates the arguments and wraps this class). Every token
// lives in device memory and every numeric step runs as a generated kernel
// (Kernels.h); the host keeps only each token's k. Plain C++ over the
// driver: no MLIR or LLVM, so the GPU check runs it where they are absent.
//
// Layout per sequence:
//   dense buffer: keys, values [H][b][D] (storage type), a ring of the
//     newest b tokens; attention is a sum over tokens, so their slots need
//     no order, and the ring is full whenever a token has left it;
//   winnowed tokens: key values / indices [H][capacity][kKeyStride], value
//     values / indices [H][capacity][kValueStride], oldest first. A token
//     stored with fewer than the stride's components has zero-valued entries
//     at unused dimensions after its own: they add nothing to a score or an
//     output, and the kernels, which need one k per launch and distinct
//     indices within a token, read every row alike. With SparseEncoding::Mask
//     the indices are masks [H][capacity][D/8] and a row simply uses as
//     many of its value slots as its mask has bits: nothing is padded.
// The stride is the largest k among the sequence's winnowed tokens: setK to
// a lower k pads new tokens (rewinnow then shrinks the stride and the
// memory); a higher k re-lays the store out once.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_CUDA_DEVICESTORE_H
#define SWAN_RUNTIME_CUDA_DEVICESTORE_H

#include "swan/Runtime/CUDA/Kernels.h"
#include "swan/Runtime/TokenStore.h"

#include <map>
#include <memory>
#include <mutex>
#include <vector>

namespace swan::cuda {

/// The shape of a cache: the fields of swan::CacheConfig this class uses.
struct CacheShape {
  int64_t dim = 128;
  int64_t kvHeads = 8;
  int64_t group = 4;
  int64_t bufferTokens = 128;
  StorageType storage = StorageType::F16;
  bool valuesPrerotated = false;
  bool outputRotated = false;
  /// Of the winnowed keys and values.
  SparseEncoding encoding = SparseEncoding::Indices;
};

/// What one sequence holds; its winnowed tokens are one store (one page).
struct SequenceInfo : StoredSequence {
  int64_t keyStride = 0, valueStride = 0; ///< 0 before a token is winnowed
};

/// Thread safety as swan.h states for the cache: calls that change it must
/// not overlap others; attention and decompress may come from any thread at
/// once (they take turns on the GPU), the others only read host state.
class DeviceStore final : public TokenStore {
public:
  /// Opens GPU `ordinal` (Device::open: `driverLibrary` null means
  /// SWAN_CUDA_DRIVER or libcuda.so.1), loads the kernels of
  /// (D, G, storage) and copies the rotations ([H][D][D] f32 each) to it.
  /// StatusCode::Unsupported, saying why, when there is no driver, no GPU
  /// or no kernels for the shape.
  static Status create(const CacheShape &shape, const float *rotK,
                       const float *rotV, std::unique_ptr<DeviceStore> &out,
                       int ordinal = 0, const char *driverLibrary = nullptr);
  ~DeviceStore() override;

  /// TokenStore::append; besides, on a failure the driver reports after the
  /// call has begun to commit (a device copy into the ring; the context is
  /// then broken) the sequence is lost, and every later call on it but
  /// release fails.
  Status append(int32_t seq, int64_t n, const float *keys, const float *values,
                int32_t kKey, int32_t kValue) override;
  Status rewinnow(int32_t kKey, int32_t kValue) override;
  Status attention(const int32_t *seqs, int64_t count, const float *q,
                   float scale, float *out) override;
  void release(int32_t seq) override;

  int64_t tokens(int32_t seq) const override {
    auto found = sequences_.find(seq);
    return found == sequences_.end()
               ? -1
               : found->second.ringCount + found->second.used;
  }
  double maxKeyNorm(int32_t seq) const override {
    return sequences_.at(seq).maxKeyNorm;
  }
  int64_t sequenceCount() const override { return sequences_.size(); }
  StoredSequence sequence(int32_t seq) const override { return info(seq); }
  /// sequence(seq) with the strides of its store.
  SequenceInfo info(int32_t seq) const;
  size_t bytes() const override;
  Status decompress(int32_t seq, SequenceRows &out) const override;

private:
  /// The winnowed tokens of one sequence; see the file comment.
  struct Store {
    Buffer keyValues, keyIndices, valueValues, valueIndices;
    int64_t capacity = 0, keyStride = 0, valueStride = 0;
    size_t bytes() const {
      return keyValues.bytes() + keyIndices.bytes() + valueValues.bytes() +
             valueIndices.bytes();
    }
  };
  struct Sequence {
    Buffer ringKeys, ringValues; ///< unallocated until the first token
    int64_t ringStart = 0, ringCount = 0;
    Store store;
    int64_t used = 0;                  ///< winnowed tokens in the store
    std::vector<int32_t> keyK, valueK; ///< per winnowed token
    double maxKeyNorm = 0.0;
    /// Why the ring's contents are unknown (a device copy of a commit
    /// failed); empty while the sequence is whole. A lost sequence refuses
    /// every call but release.
    std::string lost;
    size_t bytes() const {
      return ringKeys.bytes() + ringValues.bytes() + store.bytes();
    }
  };
  DeviceStore() = default;

  size_t element() const;
  /// Position bytes of a store row of `stride` values.
  int64_t positions(int64_t stride) const;
  /// Rows [slot, slot + rows) of `head` in a ring buffer.
  DeviceRange ringRows(const Buffer &ring, int64_t head, int64_t slot,
                       int64_t rows) const;
  Status allocateStore(int64_t capacity, int64_t keyStride, int64_t valueStride,
                       Store &out) const;
  Status relayout(const Store &from, const Sequence &s, Store &to,
                  const std::vector<int32_t> &keyKeep,
                  const std::vector<int32_t> &valueKeep) const;
  Status winnowInto(Store &store, bool isKey, int64_t head, int64_t row,
                    int64_t rows, DeviceRange input, bool stored,
                    DeviceRange rotation, int32_t k);
  Status growWorkspace(Buffer &buffer, size_t bytes);
  /// The error for a call on a lost sequence; ok for a whole one.
  static Status whole(const Sequence &s);

  CacheShape shape_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<DeviceKernels> kernels_;
  Buffer rotK_, rotV_, identity_;
  std::map<int32_t, Sequence> sequences_;
  /// Reused between calls; not token storage.
  Buffer scratchValues_, scratchIndices_, query_, out_;
  /// An append's device staging, kept between calls while it needs at most
  /// kKeptStagingBytes (decode steps); larger appends stage in buffers of
  /// their own.
  Buffer stagingInput_, stagingRows_, stagingIndices_;
  static constexpr size_t kKeptStagingBytes = size_t(1) << 20;
  /// Serialises the calls that use the GPU (the workspaces above and the
  /// kernels' own are shared).
  mutable std::mutex mutex_;
};

} // namespace swan::cuda

#endif // SWAN_RUNTIME_CUDA_DEVICESTORE_H
