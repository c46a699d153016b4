//===- DeviceStore.cpp - the SWAN KV cache in GPU memory ------------------===//
//
// Append stages everything a call writes in memory nobody reads yet (new
// store rows beyond the used ones, a new store, staged buffer rows) and
// commits with device copies and bookkeeping, so that a failing call leaves
// the cache as it was. All launches and copies go to the default stream, in
// order; host copies wait for the work before them.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CUDA/DeviceStore.h"

#include "swan/Runtime/CacheHost.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

using namespace swan::cuda;
using swan::allocateArray;
using swan::AppendSplit;
using swan::elementBytes;
using swan::keepLargest;
using swan::nonFiniteInput;
using swan::rowNorm;
using swan::SparseEncoding;
using swan::splitAppend;
using swan::StorageType;

namespace {

Status outOfMemory(size_t bytes, const char *what) {
  return Status::error(StatusCode::OutOfMemory,
                       "cannot allocate " + std::to_string(bytes) +
                           " bytes of host memory for " + what);
}

/// The largest finite value of the storage type.
double storageMax(StorageType storage) {
  return storage == StorageType::F16 ? 65504.0 : 3.4028234663852886e38;
}

/// Pads a winnowed row of `k` entries (values, ascending indices) to
/// `stride` entries: zero values at the lowest dimensions it did not keep.
void padRow(char *values, uint8_t *indices, int64_t k, int64_t stride,
            size_t element) {
  bool kept[swan::kMaxHeadDim] = {};
  for (int64_t j = 0; j < k; ++j)
    kept[indices[j]] = true;
  std::memset(values + k * element, 0, (stride - k) * element);
  for (int64_t j = k, d = 0; j < stride; ++d)
    if (!kept[d])
      indices[j++] = static_cast<uint8_t>(d);
}

} // namespace

//===----------------------------------------------------------------------===//
// Creation and layout
//===----------------------------------------------------------------------===//

DeviceStore::~DeviceStore() {
  // The buffers are freed below, in this thread's view of the GPU.
  if (device_)
    (void)device_->makeCurrent();
}

Status DeviceStore::create(const CacheShape &shape, const float *rotK,
                           const float *rotV, std::unique_ptr<DeviceStore> &out,
                           int ordinal, const char *driverLibrary) {
  std::unique_ptr<DeviceStore> cache(new DeviceStore());
  cache->shape_ = shape;
  if (Status s = Device::open(cache->device_, ordinal, driverLibrary);
      !s.isOk())
    return s;
  if (Status s = DeviceKernels::load(*cache->device_, shape.dim, shape.group,
                                     shape.storage, cache->kernels_);
      !s.isOk())
    return s;
  const int64_t d = shape.dim;
  const size_t rotationBytes = shape.kvHeads * d * d * sizeof(float);
  std::vector<float> identity(d * d, 0.0f);
  for (int64_t i = 0; i < d; ++i)
    identity[i * d + i] = 1.0f;
  Device &device = *cache->device_;
  for (Status s :
       {device.allocate(rotationBytes, cache->rotK_),
        device.allocate(rotationBytes, cache->rotV_),
        device.allocate(identity.size() * sizeof(float), cache->identity_)})
    if (!s.isOk())
      return s;
  for (Status s : {device.copyToDevice(cache->rotK_, rotK, rotationBytes),
                   device.copyToDevice(cache->rotV_, rotV, rotationBytes),
                   device.copyToDevice(cache->identity_, identity.data(),
                                       identity.size() * sizeof(float))})
    if (!s.isOk())
      return s;
  out = std::move(cache);
  return Status::ok();
}

size_t DeviceStore::element() const { return elementBytes(shape_.storage); }

int64_t DeviceStore::positions(int64_t stride) const {
  return positionBytes(shape_.encoding, shape_.dim, stride);
}

DeviceRange DeviceStore::ringRows(const Buffer &ring, int64_t head,
                                  int64_t slot, int64_t rows) const {
  const size_t rowBytes = shape_.dim * element();
  return ring.slice((head * shape_.bufferTokens + slot) * rowBytes,
                    rows * rowBytes);
}

Status DeviceStore::allocateStore(int64_t capacity, int64_t keyStride,
                                  int64_t valueStride, Store &out) const {
  const size_t rows = shape_.kvHeads * capacity;
  Store store;
  store.capacity = capacity;
  store.keyStride = keyStride;
  store.valueStride = valueStride;
  for (Status s :
       {device_->allocate(rows * keyStride * element(), store.keyValues),
        device_->allocate(rows * positions(keyStride), store.keyIndices),
        device_->allocate(rows * valueStride * element(), store.valueValues),
        device_->allocate(rows * positions(valueStride), store.valueIndices)})
    if (!s.isOk())
      return s;
  out = std::move(store);
  return Status::ok();
}

/// The first `used` rows of every head of `from`, each lowered to
/// keyKeep[t] / valueKeep[t] components (at most the token's k) and, with
/// indices, padded to `to`'s strides, written into `to`. Runs on the host:
/// it serves the rare calls that change a stride.
Status DeviceStore::relayout(const Store &from, const Sequence &s, Store &to,
                             const std::vector<int32_t> &keyKeep,
                             const std::vector<int32_t> &valueKeep) const {
  const int64_t heads = shape_.kvHeads, used = s.used, d = shape_.dim;
  const size_t e = element();
  const bool masks = shape_.encoding == SparseEncoding::Mask;
  for (bool isKey : {true, false}) {
    const int64_t oldStride = isKey ? from.keyStride : from.valueStride;
    const int64_t newStride = isKey ? to.keyStride : to.valueStride;
    const int64_t oldPositions = positions(oldStride);
    const int64_t newPositions = positions(newStride);
    const int64_t widest = std::max(oldStride, newStride);
    const std::vector<int32_t> &k = isKey ? s.keyK : s.valueK;
    const std::vector<int32_t> &keep = isKey ? keyKeep : valueKeep;
    const Buffer &oldValues = isKey ? from.keyValues : from.valueValues;
    const Buffer &oldIndices = isKey ? from.keyIndices : from.valueIndices;
    Buffer &newValues = isKey ? to.keyValues : to.valueValues;
    Buffer &newIndices = isKey ? to.keyIndices : to.valueIndices;
    auto values = allocateArray<char>(used * widest * e);
    auto indices = allocateArray<uint8_t>(used * positions(widest));
    if (!values || !indices)
      return outOfMemory(used * (widest * e + positions(widest)),
                         "re-laying out winnowed tokens");
    for (int64_t h = 0; h < heads; ++h) {
      const size_t oldRow = h * from.capacity;
      if (Status st = device_->copyToHost(
              values.get(),
              oldValues.slice(oldRow * oldStride * e, used * oldStride * e),
              used * oldStride * e);
          !st.isOk())
        return st;
      if (Status st = device_->copyToHost(
              indices.get(),
              oldIndices.slice(oldRow * oldPositions, used * oldPositions),
              used * oldPositions);
          !st.isOk())
        return st;
      // Rows move to a new stride; going up they are spread from the last,
      // going down packed from the first, so none is overwritten unread. A
      // mask row keeps its place and is lowered as the indices it encodes.
      auto relayoutRow = [&](int64_t t) {
        char *rowValues = values.get() + t * oldStride * e;
        uint8_t expanded[swan::kMaxHeadDim];
        uint8_t *rowIndices =
            masks ? expanded : indices.get() + t * oldPositions;
        if (masks)
          maskIndices(indices.get() + t * oldPositions, d, expanded);
        if (keep[t] < k[t]) {
          if (shape_.storage == StorageType::F16)
            keepLargest(reinterpret_cast<_Float16 *>(rowValues), rowIndices,
                        k[t], keep[t]);
          else
            keepLargest(reinterpret_cast<float *>(rowValues), rowIndices, k[t],
                        keep[t]);
        }
        char *outValues = values.get() + t * newStride * e;
        std::memmove(outValues, rowValues, keep[t] * e);
        if (masks) {
          indicesMask(rowIndices, keep[t], d, indices.get() + t * newPositions);
          return;
        }
        uint8_t *outIndices = indices.get() + t * newStride;
        std::memmove(outIndices, rowIndices, keep[t]);
        padRow(outValues, outIndices, keep[t], newStride, e);
      };
      if (newStride > oldStride)
        for (int64_t t = used - 1; t >= 0; --t)
          relayoutRow(t);
      else
        for (int64_t t = 0; t < used; ++t)
          relayoutRow(t);
      const size_t newRow = h * to.capacity;
      if (Status st = device_->copyToDevice(
              newValues.slice(newRow * newStride * e, used * newStride * e),
              values.get(), used * newStride * e);
          !st.isOk())
        return st;
      if (Status st = device_->copyToDevice(
              newIndices.slice(newRow * newPositions, used * newPositions),
              indices.get(), used * newPositions);
          !st.isOk())
        return st;
    }
  }
  return Status::ok();
}

Status DeviceStore::growWorkspace(Buffer &buffer, size_t bytes) {
  if (buffer.bytes() >= bytes)
    return Status::ok();
  // Work already enqueued may still read the buffer being replaced, and
  // freeing device memory is not guaranteed to wait for it.
  if (buffer.address())
    if (Status st = device_->synchronize(); !st.isOk())
      return st;
  return device_->allocate(bytes, buffer);
}

/// Winnows `rows` rows of `input` ([rows][D], f32 or, with `stored`, the
/// storage type) to k components into store rows [row, row + rows) of
/// `head`. With masks, or at the store's stride, the kernel writes in
/// place; index rows below it are padded on the host.
Status DeviceStore::winnowInto(Store &store, bool isKey, int64_t head,
                               int64_t row, int64_t rows, DeviceRange input,
                               bool stored, DeviceRange rotation, int32_t k) {
  if (rows == 0)
    return Status::ok();
  const size_t e = element();
  const int64_t stride = isKey ? store.keyStride : store.valueStride;
  const size_t first = head * store.capacity + row;
  DeviceRange values = (isKey ? store.keyValues : store.valueValues)
                           .slice(first * stride * e, rows * stride * e);
  DeviceRange indices =
      (isKey ? store.keyIndices : store.valueIndices)
          .slice(first * positions(stride), rows * positions(stride));
  if (shape_.encoding == SparseEncoding::Mask)
    return stored
               ? kernels_->compressStored(input, rows, rotation, k, values,
                                          indices, SparseEncoding::Mask, stride)
               : kernels_->compress(input, rows, rotation, k, values, indices,
                                    SparseEncoding::Mask, stride);
  auto launch = [&](DeviceRange v, DeviceRange i) {
    return stored ? kernels_->compressStored(input, rows, rotation, k, v, i)
                  : kernels_->compress(input, rows, rotation, k, v, i);
  };
  if (k == stride)
    return launch(values, indices);
  if (Status s = growWorkspace(scratchValues_, rows * k * e); !s.isOk())
    return s;
  if (Status s = growWorkspace(scratchIndices_, rows * k); !s.isOk())
    return s;
  if (Status s = launch(scratchValues_, scratchIndices_); !s.isOk())
    return s;
  auto hostValues = allocateArray<char>(rows * stride * e);
  auto hostIndices = allocateArray<uint8_t>(rows * stride);
  if (!hostValues || !hostIndices)
    return outOfMemory(rows * stride * (e + 1), "padding winnowed tokens");
  if (Status s =
          device_->copyToHost(hostValues.get(), scratchValues_, rows * k * e);
      !s.isOk())
    return s;
  if (Status s =
          device_->copyToHost(hostIndices.get(), scratchIndices_, rows * k);
      !s.isOk())
    return s;
  // Spread from the last row so that none is overwritten before it moves.
  for (int64_t t = rows - 1; t >= 0; --t) {
    char *v = hostValues.get() + t * stride * e;
    uint8_t *i = hostIndices.get() + t * stride;
    std::memmove(v, hostValues.get() + t * k * e, k * e);
    std::memmove(i, hostIndices.get() + t * k, k);
    padRow(v, i, k, stride, e);
  }
  if (Status s =
          device_->copyToDevice(values, hostValues.get(), rows * stride * e);
      !s.isOk())
    return s;
  return device_->copyToDevice(indices, hostIndices.get(), rows * stride);
}

//===----------------------------------------------------------------------===//
// Append
//===----------------------------------------------------------------------===//

Status DeviceStore::append(int32_t seq, int64_t n, const float *keys,
                           const float *values, int32_t kKey, int32_t kValue) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (Status st = device_->makeCurrent(); !st.isOk())
    return st;
  auto found = sequences_.find(seq);
  const bool isNew = found == sequences_.end();
  static const Sequence empty;
  const Sequence &s = isNew ? empty : found->second;
  if (Status st = whole(s); !st.isOk())
    return st;
  if (n == 0) {
    if (isNew)
      sequences_.try_emplace(seq);
    return Status::ok();
  }
  const int64_t heads = shape_.kvHeads, d = shape_.dim, b = shape_.bufferTokens;
  const size_t e = element();
  const AppendSplit split = splitAppend(s.ringCount, n, b);
  const int64_t leave = split.leave, fromOld = split.fromOld,
                fromNew = split.fromNew, toBuffer = split.toBuffer;

  // The inputs per head, [keys, values][H][n][D], and what they may do.
  auto staged = allocateArray<float>(2 * heads * n * d);
  if (!staged)
    return outOfMemory(2 * heads * n * d * sizeof(float), "append staging");
  // Checked after the staging allocation, so that an absurd n fails there.
  if (std::string bad = nonFiniteInput(keys, values, n, heads * d);
      !bad.empty())
    return Status::error(StatusCode::InvalidArgument, bad);
  double maxKeyNorm = 0.0, maxNorm = 0.0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h) {
      const float *key = keys + (t * heads + h) * d;
      const float *value = values + (t * heads + h) * d;
      std::memcpy(staged.get() + (h * n + t) * d, key, d * sizeof(float));
      std::memcpy(staged.get() + ((heads + h) * n + t) * d, value,
                  d * sizeof(float));
      double keyNorm = rowNorm(key, d);
      maxKeyNorm = std::max(maxKeyNorm, keyNorm);
      maxNorm = std::max({maxNorm, keyNorm, rowNorm(value, d)});
    }
  // |x·R|_i <= ‖x‖: only rows this long can overflow the storage type once
  // rotated, and only then are the stored values read back and checked.
  const bool mayOverflow = maxNorm > 0.999 * storageMax(shape_.storage);

  // Device staging: the inputs, and the rows entering the buffer rotated
  // into the storage type. A decode step's (or any small append's) reuses
  // buffers kept between calls, so it allocates no device memory; a
  // prefill's is allocated for the call and given back after it.
  const size_t inputBytes = 2 * heads * n * d * sizeof(float);
  const size_t stagedBytes = 2 * heads * toBuffer * d * e;
  const size_t stagedIndexBytes = toBuffer * d;
  const bool keepStaging =
      inputBytes + stagedBytes + stagedIndexBytes <= kKeptStagingBytes;
  Buffer callInput, callStaged, callStagedIndices;
  auto stage = [&](Buffer &kept, Buffer &call, size_t bytes) -> Status {
    return keepStaging ? growWorkspace(kept, bytes)
                       : device_->allocate(bytes, call);
  };
  for (Status st :
       {stage(stagingInput_, callInput, inputBytes),
        stage(stagingRows_, callStaged, stagedBytes),
        stage(stagingIndices_, callStagedIndices, stagedIndexBytes)})
    if (!st.isOk())
      return st;
  const Buffer &input = keepStaging ? stagingInput_ : callInput;
  const Buffer &stagedRows = keepStaging ? stagingRows_ : callStaged;
  const Buffer &stagedIndices =
      keepStaging ? stagingIndices_ : callStagedIndices;
  if (Status st = device_->copyToDevice(input, staged.get(), inputBytes);
      !st.isOk())
    return st;
  auto inputRows = [&](bool isKey, int64_t h, int64_t first, int64_t rows) {
    int64_t block = (isKey ? 0 : heads) + h;
    return input.slice((block * n + first) * d * sizeof(float),
                       rows * d * sizeof(float));
  };
  auto rotation = [&](bool isKey, int64_t h) -> DeviceRange {
    if (!isKey && shape_.valuesPrerotated)
      return identity_;
    const size_t bytes = d * d * sizeof(float);
    return (isKey ? rotK_ : rotV_).slice(h * bytes, bytes);
  };

  // A new store when the rows do not fit or a stride must change; strides
  // are the largest k stored (any k while the store is empty).
  const int64_t keyStride =
      s.used ? std::max<int64_t>(s.store.keyStride, kKey) : kKey;
  const int64_t valueStride =
      s.used ? std::max<int64_t>(s.store.valueStride, kValue) : kValue;
  Store fresh;
  bool replaceStore = false;
  if (leave > 0 &&
      (s.used + leave > s.store.capacity || keyStride != s.store.keyStride ||
       valueStride != s.store.valueStride)) {
    int64_t capacity = s.store.capacity;
    if (s.used + leave > capacity)
      capacity = std::max(s.used + leave,
                          capacity + std::max<int64_t>(capacity / 4, 256));
    if (Status st = allocateStore(capacity, keyStride, valueStride, fresh);
        !st.isOk())
      return st;
    if (s.used > 0) {
      if (keyStride == s.store.keyStride &&
          valueStride == s.store.valueStride) {
        for (int64_t h = 0; h < heads; ++h)
          for (bool isKey : {true, false}) {
            const int64_t stride = isKey ? keyStride : valueStride;
            const int64_t p = positions(stride);
            const Buffer &oldV =
                isKey ? s.store.keyValues : s.store.valueValues;
            const Buffer &oldI =
                isKey ? s.store.keyIndices : s.store.valueIndices;
            Buffer &newV = isKey ? fresh.keyValues : fresh.valueValues;
            Buffer &newI = isKey ? fresh.keyIndices : fresh.valueIndices;
            const size_t from = h * s.store.capacity, to = h * capacity;
            const size_t count = s.used * stride * e, countP = s.used * p;
            for (Status st :
                 {device_->copyOnDevice(newV.slice(to * stride * e, count),
                                        oldV.slice(from * stride * e, count),
                                        count),
                  device_->copyOnDevice(newI.slice(to * p, countP),
                                        oldI.slice(from * p, countP), countP)})
              if (!st.isOk())
                return st;
          }
      } else if (Status st = relayout(s.store, s, fresh, s.keyK, s.valueK);
                 !st.isOk()) {
        return st;
      }
    }
    replaceStore = true;
  }
  // Winnowing writes rows [used, used + leave), which attention does not
  // read before the commit: a store that keeps its layout is written in
  // place. (A new sequence with no leaving tokens writes no store.)
  Store &target = replaceStore || isNew ? fresh : found->second.store;

  Buffer ringKeys, ringValues;
  if (!s.ringKeys.address()) {
    const size_t ringBytes = heads * b * d * e;
    if (Status st = device_->allocate(ringBytes, ringKeys); !st.isOk())
      return st;
    if (Status st = device_->allocate(ringBytes, ringValues); !st.isOk())
      return st;
  }
  const Buffer &ringK = s.ringKeys.address() ? s.ringKeys : ringKeys;
  const Buffer &ringV = s.ringValues.address() ? s.ringValues : ringValues;

  // Rows that enter the buffer, rotated into the storage type: compress at
  // k = D keeps every component in dimension order, which is the rotated
  // row itself.
  auto stagedRange = [&](bool isKey, int64_t h, int64_t first, int64_t rows) {
    int64_t block = (isKey ? 0 : heads) + h;
    return stagedRows.slice((block * toBuffer + first) * d * e, rows * d * e);
  };

  for (int64_t h = 0; h < heads; ++h)
    for (bool isKey : {true, false}) {
      const int32_t k = isKey ? kKey : kValue;
      const Buffer &ring = isKey ? ringK : ringV;
      // Oldest buffer tokens first, in at most two runs of the ring; they
      // are rotated already, so they are winnowed with the identity.
      for (int64_t t = 0; t < fromOld;) {
        int64_t slot = (s.ringStart + t) % b;
        int64_t run = std::min(fromOld - t, b - slot);
        if (Status st = winnowInto(target, isKey, h, s.used + t, run,
                                   ringRows(ring, h, slot, run),
                                   /*stored=*/true, identity_, k);
            !st.isOk())
          return st;
        t += run;
      }
      if (Status st = winnowInto(target, isKey, h, s.used + fromOld, fromNew,
                                 inputRows(isKey, h, 0, fromNew),
                                 /*stored=*/false, rotation(isKey, h), k);
          !st.isOk())
        return st;
      if (toBuffer > 0)
        if (Status st = kernels_->compress(
                inputRows(isKey, h, fromNew, toBuffer), toBuffer,
                rotation(isKey, h), d, stagedRange(isKey, h, 0, toBuffer),
                stagedIndices);
            !st.isOk())
          return st;
    }

  if (mayOverflow) {
    const char *limit = shape_.storage == StorageType::F16
                            ? "fp16 storage (|x·R| > 65504)"
                            : "f32 storage (|x·R| > FLT_MAX)";
    // The first `kept` of each row of `width`: a masked row's later slots
    // hold whatever was there.
    auto check = [&](DeviceRange range, int64_t rows, int64_t width,
                     int64_t kept, bool isKey, int64_t h) -> Status {
      const size_t count = rows * width;
      auto host = allocateArray<char>(count * e);
      if (!host)
        return outOfMemory(count * e, "the overflow check");
      if (Status st = device_->copyToHost(host.get(), range, count * e);
          !st.isOk())
        return st;
      for (size_t i = 0; i < count; ++i)
        if (int64_t(i % width) < kept &&
            !std::isfinite(loadElement(host.get(), i, shape_.storage)))
          return Status::error(StatusCode::InvalidArgument,
                               std::string(isKey ? "keys" : "values") +
                                   " of head " + std::to_string(h) +
                                   ": a rotated component overflows the " +
                                   limit);
      return Status::ok();
    };
    for (int64_t h = 0; h < heads; ++h)
      for (bool isKey : {true, false}) {
        const int64_t stride = isKey ? target.keyStride : target.valueStride;
        const Buffer &v = isKey ? target.keyValues : target.valueValues;
        const size_t first = (h * target.capacity + s.used + fromOld) * stride;
        if (Status st = check(v.slice(first * e, fromNew * stride * e), fromNew,
                              stride, isKey ? kKey : kValue, isKey, h);
            !st.isOk())
          return st;
        if (Status st = check(stagedRange(isKey, h, 0, toBuffer), toBuffer, d,
                              d, isKey, h);
            !st.isOk())
          return st;
      }
  }

  // Kernel faults surface here, before anything is committed.
  if (Status st = device_->synchronize(); !st.isOk())
    return st;

  // Commit: bookkeeping, then copies into the ring (only a driver fault can
  // fail them).
  Sequence &seqState = isNew ? sequences_[seq] : found->second;
  seqState.keyK.reserve(seqState.used + leave);
  seqState.valueK.reserve(seqState.used + leave);
  seqState.keyK.insert(seqState.keyK.end(), leave, kKey);
  seqState.valueK.insert(seqState.valueK.end(), leave, kValue);
  if (replaceStore)
    seqState.store = std::move(fresh);
  if (!seqState.ringKeys.address()) {
    seqState.ringKeys = std::move(ringKeys);
    seqState.ringValues = std::move(ringValues);
  }
  seqState.used += leave;
  seqState.maxKeyNorm = std::max(seqState.maxKeyNorm, maxKeyNorm);
  seqState.ringStart = (seqState.ringStart + fromOld) % b;
  seqState.ringCount -= fromOld;
  const int64_t firstSlot = (seqState.ringStart + seqState.ringCount) % b;
  seqState.ringCount += toBuffer;
  // The new rows overwrite slots of the tokens that left, so a copy that
  // fails here cannot be undone. The driver fails one only once the context
  // is broken; the sequence is marked lost rather than left to be read.
  auto lose = [&](const Status &st) {
    seqState.lost = "sequence " + std::to_string(seq) +
                    " is lost: a device copy failed while an append to it "
                    "was committed (" +
                    st.message() + "); release it";
    return Status::error(st.code(), seqState.lost);
  };
  for (int64_t h = 0; h < heads; ++h)
    for (bool isKey : {true, false})
      for (int64_t t = 0; t < toBuffer;) {
        int64_t slot = (firstSlot + t) % b;
        int64_t run = std::min(toBuffer - t, b - slot);
        if (Status st = device_->copyOnDevice(
                ringRows(isKey ? seqState.ringKeys : seqState.ringValues, h,
                         slot, run),
                stagedRange(isKey, h, t, run), run * d * e);
            !st.isOk())
          return lose(st);
        t += run;
      }
  if (Status st = device_->synchronize(); !st.isOk())
    return lose(st);
  return Status::ok();
}

Status DeviceStore::whole(const Sequence &s) {
  return s.lost.empty() ? Status::ok()
                        : Status::error(StatusCode::DriverError, s.lost);
}

//===----------------------------------------------------------------------===//
// Re-winnowing
//===----------------------------------------------------------------------===//

Status DeviceStore::rewinnow(int32_t kKey, int32_t kValue) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (Status st = device_->makeCurrent(); !st.isOk())
    return st;
  // Every new store is built before any replaces its old one.
  std::vector<std::pair<Sequence *, Store>> rebuilt;
  for (auto &[id, s] : sequences_) {
    if (s.used == 0 ||
        (s.store.keyStride <= kKey && s.store.valueStride <= kValue))
      continue;
    std::vector<int32_t> keyKeep(s.used), valueKeep(s.used);
    for (int64_t t = 0; t < s.used; ++t) {
      keyKeep[t] = std::min(s.keyK[t], kKey);
      valueKeep[t] = std::min(s.valueK[t], kValue);
    }
    Store store;
    if (Status st = allocateStore(
            s.used, std::min<int64_t>(s.store.keyStride, kKey),
            std::min<int64_t>(s.store.valueStride, kValue), store);
        !st.isOk())
      return st;
    if (Status st = relayout(s.store, s, store, keyKeep, valueKeep); !st.isOk())
      return st;
    rebuilt.emplace_back(&s, std::move(store));
  }
  for (auto &[s, store] : rebuilt) {
    s->store = std::move(store);
    for (int64_t t = 0; t < s->used; ++t) {
      s->keyK[t] = std::min(s->keyK[t], kKey);
      s->valueK[t] = std::min(s->valueK[t], kValue);
    }
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

Status DeviceStore::attention(const int32_t *seqs, int64_t count,
                              const float *q, float scale, float *out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (Status st = device_->makeCurrent(); !st.isOk())
    return st;
  const int64_t heads = shape_.kvHeads, d = shape_.dim;
  const size_t rowBytes = heads * shape_.group * d * sizeof(float);
  for (Status st : {growWorkspace(query_, count * rowBytes),
                    growWorkspace(out_, count * rowBytes)})
    if (!st.isOk())
      return st;
  // Every sequence keeps its own store and ring; the paged kernel reads
  // them all in one launch.
  std::vector<DecodeSequence> batch(count);
  for (int64_t i = 0; i < count; ++i) {
    const Sequence &s = sequences_.at(seqs[i]);
    if (Status st = whole(s); !st.isOk())
      return st;
    DecodeSequence &q = batch[i];
    // A sequence that never winnowed a token has no store allocation: its
    // capacity is 0, and empty blocks need none.
    q.keyValues = s.store.keyValues;
    q.keyIndices = s.store.keyIndices;
    q.valueValues = s.store.valueValues;
    q.valueIndices = s.store.valueIndices;
    q.bufferKeys = s.ringKeys;
    q.bufferValues = s.ringValues;
    q.capacity = s.store.capacity;
    // An empty store reads nothing; the kernels still need k >= 1.
    q.keyK = std::max<int64_t>(1, s.store.keyStride);
    q.valueK = std::max<int64_t>(1, s.store.valueStride);
    q.bufferCapacity = shape_.bufferTokens;
    q.sparseLength = s.used;
    q.bufferLength = s.ringCount;
  }
  if (Status st = device_->copyToDevice(query_, q, count * rowBytes);
      !st.isOk())
    return st;
  PagedDecodeStep step;
  step.kvHeads = heads;
  step.scale = scale;
  step.rotatedOutput = shape_.outputRotated;
  step.query = query_;
  step.keyRotation = rotK_;
  step.valueRotation = rotV_;
  step.out = out_;
  step.encoding = shape_.encoding;
  if (Status st = kernels_->decodeAttention(step, batch.data(), count);
      !st.isOk())
    return st;
  return device_->copyToHost(out, out_, count * rowBytes);
}

//===----------------------------------------------------------------------===//
// Inspection
//===----------------------------------------------------------------------===//

void DeviceStore::release(int32_t seq) {
  std::lock_guard<std::mutex> lock(mutex_);
  (void)device_->makeCurrent(); // its buffers are freed in this thread
  sequences_.erase(seq);
}

size_t DeviceStore::bytes() const {
  size_t total = 0;
  for (const auto &entry : sequences_)
    total += entry.second.bytes();
  return total;
}

SequenceInfo DeviceStore::info(int32_t seq) const {
  SequenceInfo info;
  auto found = sequences_.find(seq);
  if (found == sequences_.end())
    return info;
  const Sequence &s = found->second;
  info.bufferTokens = s.ringCount;
  info.sparseTokens = s.used;
  info.pages = s.used > 0 ? 1 : 0;
  if (shape_.encoding == SparseEncoding::Mask)
    info.maskPages = info.keyMaskPages = info.pages;
  info.keyStride = s.store.keyStride;
  info.valueStride = s.store.valueStride;
  info.bytes = s.bytes();
  info.maxKeyNorm = s.maxKeyNorm;
  return info;
}

Status DeviceStore::decompress(int32_t seq, SequenceRows &out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (Status st = device_->makeCurrent(); !st.isOk())
    return st;
  const Sequence &s = sequences_.at(seq);
  if (Status st = whole(s); !st.isOk())
    return st;
  const int64_t heads = shape_.kvHeads, d = shape_.dim, b = shape_.bufferTokens;
  const size_t e = element();
  SequenceRows rows;
  rows.tokens = s.used + s.ringCount;
  rows.keys.assign(rows.tokens * heads * d, 0.0f);
  rows.values.assign(rows.tokens * heads * d, 0.0f);
  for (bool isKey : {true, false}) {
    const int64_t stride = isKey ? s.store.keyStride : s.store.valueStride;
    const int64_t p = positions(stride);
    std::vector<char> values(s.used * stride * e);
    std::vector<uint8_t> indices(s.used * p);
    std::vector<char> ring(b * d * e);
    std::vector<float> &dense = isKey ? rows.keys : rows.values;
    const std::vector<int32_t> &k = isKey ? s.keyK : s.valueK;
    for (int64_t h = 0; h < heads; ++h) {
      const size_t first = h * s.store.capacity;
      if (s.used > 0) {
        if (Status st = device_->copyToHost(
                values.data(),
                (isKey ? s.store.keyValues : s.store.valueValues)
                    .slice(first * stride * e, values.size()),
                values.size());
            !st.isOk())
          return st;
        if (Status st = device_->copyToHost(
                indices.data(),
                (isKey ? s.store.keyIndices : s.store.valueIndices)
                    .slice(first * p, indices.size()),
                indices.size());
            !st.isOk())
          return st;
      }
      for (int64_t t = 0; t < s.used; ++t)
        scatterRow(values.data() + t * stride * e, indices.data() + t * p, k[t],
                   shape_.encoding, d, shape_.storage,
                   dense.data() + (t * heads + h) * d);
      if (s.ringCount > 0)
        if (Status st = device_->copyToHost(
                ring.data(),
                ringRows(isKey ? s.ringKeys : s.ringValues, h, 0, b),
                ring.size());
            !st.isOk())
          return st;
      for (int64_t t = 0; t < s.ringCount; ++t) {
        const char *row = ring.data() + ((s.ringStart + t) % b) * d * e;
        for (int64_t i = 0; i < d; ++i)
          dense[((s.used + t) * heads + h) * d + i] =
              loadElement(row, i, shape_.storage);
      }
    }
    std::vector<int32_t> &kOut = isKey ? rows.keyK : rows.valueK;
    kOut = k;
    kOut.resize(rows.tokens, static_cast<int32_t>(d));
  }
  rows.inBuffer.assign(rows.tokens, false);
  std::fill(rows.inBuffer.begin() + s.used, rows.inBuffer.end(), true);
  out = std::move(rows);
  return Status::ok();
}
