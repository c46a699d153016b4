//===- HostStore.cpp - the tokens of a CPU cache in host memory -----------===//
//
// The layout is in HostStore.h. Append allocates everything it writes and
// checks every value before it changes a sequence, then commits.
//
//===----------------------------------------------------------------------===//

#include "HostStore.h"

#include "llvm/ADT/Twine.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>

#ifdef __GLIBC__
#include <malloc.h>
#endif

using namespace swan;

namespace {

Status outOfMemory(size_t bytes, const char *what) {
  return Status::error(StatusCode::OutOfMemory,
                       (llvm::Twine("cannot allocate ") + llvm::Twine(bytes) +
                        " bytes for " + what)
                           .str());
}

/// Kernel failures after the cache's validation are bugs, not user errors.
Status internal(llvm::Error error, const char *what) {
  return Status::error(StatusCode::Internal,
                       std::string(what) + ": " +
                           llvm::toString(std::move(error)));
}

void storeRows(const float *src, void *dst, int64_t count,
               StorageType storage) {
  if (storage == StorageType::F32) {
    std::memcpy(dst, src, count * sizeof(float));
    return;
  }
  auto *out = static_cast<_Float16 *>(dst);
  for (int64_t i = 0; i < count; ++i)
    out[i] = static_cast<_Float16>(src[i]);
}

void loadRows(const void *src, float *dst, int64_t count, StorageType storage) {
  if (storage == StorageType::F32) {
    std::memcpy(dst, src, count * sizeof(float));
    return;
  }
  const auto *in = static_cast<const _Float16 *>(src);
  for (int64_t i = 0; i < count; ++i)
    dst[i] = static_cast<float>(in[i]);
}

/// The encoding a configuration asks for, or nothing under Auto.
std::optional<SparseEncoding> fixedEncoding(ValueEncoding choice) {
  switch (choice) {
  case ValueEncoding::Indices:
    return SparseEncoding::Indices;
  case ValueEncoding::Mask:
    return SparseEncoding::Mask;
  case ValueEncoding::Auto:
    break;
  }
  return std::nullopt;
}

} // namespace

HostStore::HostStore(const CacheConfig &config,
                     std::shared_ptr<const KernelSet> kernels,
                     const float *rotK, const float *rotV)
    : config(config), kernels(std::move(kernels)) {
  const int64_t d = config.headDim, size = config.numKvHeads * d * d;
  this->rotK.assign(rotK, rotK + size);
  this->rotV.assign(rotV, rotV + size);
  identity.assign(d * d, 0.0f);
  for (int64_t i = 0; i < d; ++i)
    identity[i * d + i] = 1.0f;
}

size_t HostStore::Sequence::bytes() const {
  size_t total = buffer.bytes;
  for (const Page &page : pages)
    total += page.bytes;
  return total;
}

//===----------------------------------------------------------------------===//
// Layout
//===----------------------------------------------------------------------===//

/// The buffer keeps 1/8 of b spare rows so that leaving tokens move the
/// window instead of shifting every row; compaction then costs 8 row moves
/// per token, for 1/8 more buffer memory.
int64_t HostStore::bufferCapacity() const {
  int64_t b = config.bufferTokens;
  return b + std::max<int64_t>(1, (b + 7) / 8);
}

/// The encoding of a page created now with k_V = kValue: under Auto the
/// smaller one, indices when both cost the same.
SparseEncoding HostStore::encodingFor(int32_t kValue) const {
  if (std::optional<SparseEncoding> fixed = fixedEncoding(config.valueEncoding))
    return *fixed;
  return positionBytes(SparseEncoding::Mask, dim(), kValue) <
                 positionBytes(SparseEncoding::Indices, dim(), kValue)
             ? SparseEncoding::Mask
             : SparseEncoding::Indices;
}

/// The key encoding of a page created now with k_K = kKey. A mask key is
/// expanded and dotted with each of the G query rows, so its score costs
/// G · D/16 FMAs whatever k, against about one step per kept entry with
/// indices: under Auto, masks only when they are smaller (D/8 < k_K) and
/// G · D/8 <= k_K.
/// Measured on the CPU (swan-bench, L = 32768): G = 1, D = 64, k = 32:
/// 1.35 ms as masks vs 2.03 ms with key indices; G = 4, D = 128: k = 32
/// 3.57 vs 2.43 ms (indices win), k = 64 3.41 vs 3.31 ms (a tie).
SparseEncoding HostStore::keyEncodingFor(int32_t kKey) const {
  if (std::optional<SparseEncoding> fixed = fixedEncoding(config.keyEncoding))
    return *fixed;
  const int64_t maskBytes = positionBytes(SparseEncoding::Mask, dim(), kKey);
  return maskBytes < positionBytes(SparseEncoding::Indices, dim(), kKey) &&
                 config.groupSize * maskBytes <= kKey
             ? SparseEncoding::Mask
             : SparseEncoding::Indices;
}

size_t HostStore::pageBytes(int64_t capacity, int32_t kKey, int32_t kValue,
                            SparseEncoding keyEncoding,
                            SparseEncoding valueEncoding) const {
  return scaleSectionBytes(capacity) +
         static_cast<size_t>(heads() * capacity) *
             ((kKey + kValue) * winnowedElement() +
              positionBytes(keyEncoding, dim(), kKey) +
              positionBytes(valueEncoding, dim(), kValue));
}

// Section addresses inside a page or the buffer.
float *HostStore::keyScales(const Page &p, int64_t h, int64_t slot) const {
  if (!quantised())
    return nullptr;
  return reinterpret_cast<float *>(p.memory.get()) + h * p.capacity + slot;
}
float *HostStore::valueScales(const Page &p, int64_t h, int64_t slot) const {
  if (!quantised())
    return nullptr;
  return reinterpret_cast<float *>(p.memory.get()) +
         (heads() + h) * p.capacity + slot;
}
char *HostStore::keyValues(const Page &p, int64_t h, int64_t slot) const {
  return p.memory.get() + scaleSectionBytes(p.capacity) +
         (h * p.capacity + slot) * p.kKey * winnowedElement();
}
char *HostStore::valueValues(const Page &p, int64_t h, int64_t slot) const {
  return p.memory.get() + scaleSectionBytes(p.capacity) +
         heads() * p.capacity * p.kKey * winnowedElement() +
         (h * p.capacity + slot) * p.kValue * winnowedElement();
}
uint8_t *HostStore::keyPositions(const Page &p, int64_t h, int64_t slot) const {
  return reinterpret_cast<uint8_t *>(
      p.memory.get() + scaleSectionBytes(p.capacity) +
      heads() * p.capacity * (p.kKey + p.kValue) * winnowedElement() +
      (h * p.capacity + slot) * positionBytes(p.keyEncoding, dim(), p.kKey));
}
uint8_t *HostStore::valuePositions(const Page &p, int64_t h,
                                   int64_t slot) const {
  return reinterpret_cast<uint8_t *>(
      p.memory.get() + scaleSectionBytes(p.capacity) +
      heads() * p.capacity * (p.kKey + p.kValue) * winnowedElement() +
      heads() * p.capacity * positionBytes(p.keyEncoding, dim(), p.kKey) +
      (h * p.capacity + slot) *
          positionBytes(p.valueEncoding, dim(), p.kValue));
}
char *HostStore::bufferKeys(const DenseBuffer &b, int64_t h,
                            int64_t row) const {
  return b.memory.get() + (h * b.capacity + row) * dim() * element();
}
char *HostStore::bufferValues(const DenseBuffer &b, int64_t h,
                              int64_t row) const {
  return b.memory.get() +
         (heads() * b.capacity + h * b.capacity + row) * dim() * element();
}

//===----------------------------------------------------------------------===//
// Append: the FIFO buffer and winnowing
//===----------------------------------------------------------------------===//

Status HostStore::append(int32_t seq, int64_t n, const float *keys,
                         const float *values, int32_t kKey, int32_t kValue) {
  auto found = sequences.find(seq);
  bool isNew = found == sequences.end();
  if (n == 0) {
    if (isNew)
      sequences.try_emplace(seq);
    return Status::ok();
  }

  static const Sequence empty;
  const Sequence &s = isNew ? empty : found->second;
  const int64_t d = dim(), hCount = heads();
  const AppendSplit split = splitAppend(s.buffer.count, n, config.bufferTokens);
  const int64_t leave = split.leave, fromOld = split.fromOld,
                fromNew = split.fromNew, toBuffer = split.toBuffer;

  // Where the leaving tokens go: the rest of the last page if it has the
  // current k, then fresh pages.
  const Page *last = s.pages.empty() ? nullptr : &s.pages.back();
  int64_t intoLast = 0;
  const SparseEncoding keyEncoding = keyEncodingFor(kKey);
  const SparseEncoding valueEncoding = encodingFor(kValue);
  if (last && last->kKey == kKey && last->kValue == kValue &&
      last->keyEncoding == keyEncoding && last->valueEncoding == valueEncoding)
    intoLast = std::min(leave, last->capacity - last->used);
  const int64_t pageCap = config.pageTokens;
  const int64_t freshPages = (leave - intoLast + pageCap - 1) / pageCap;

  // Allocate everything before touching the sequence; scratch first, as it
  // grows fastest with n (an absurd n fails here, before any page exists).
  int64_t scratchRows = std::max(leave, toBuffer);
  auto scratch = allocateArray<float>(scratchRows * d);
  auto rotated = allocateArray<float>(toBuffer * d);
  auto stagedKeys = allocateArray<char>(hCount * toBuffer * d * element());
  auto stagedValues = allocateArray<char>(hCount * toBuffer * d * element());
  if (!scratch || !rotated || !stagedKeys || !stagedValues)
    return outOfMemory((scratchRows + toBuffer) * d * sizeof(float) +
                           2 * hCount * toBuffer * d * element(),
                       "append scratch space");
  std::vector<Page> fresh(freshPages);
  for (Page &page : fresh) {
    page.capacity = pageCap;
    page.kKey = kKey;
    page.kValue = kValue;
    page.keyEncoding = keyEncoding;
    page.valueEncoding = valueEncoding;
    page.bytes = pageBytes(pageCap, kKey, kValue, keyEncoding, valueEncoding);
    page.memory = allocateArray<char>(page.bytes);
    if (!page.memory)
      return outOfMemory(page.bytes, "a sparse page");
  }
  DenseBuffer newBuffer;
  if (!s.buffer.memory) {
    newBuffer.capacity = bufferCapacity();
    newBuffer.bytes = 2 * hCount * newBuffer.capacity * d * element();
    newBuffer.memory = allocateArray<char>(newBuffer.bytes);
    if (!newBuffer.memory)
      return outOfMemory(newBuffer.bytes, "the dense buffer");
  }
  const DenseBuffer &buffer = s.buffer.memory ? s.buffer : newBuffer;
  // Checked after the allocations, so that an absurd n fails there first.
  if (std::string bad = nonFiniteInput(keys, values, n, heads() * dim());
      !bad.empty())
    return Status::error(StatusCode::InvalidArgument, bad);
  double maxKeyNorm = 0.0;
  for (int64_t row = 0; row < n * heads(); ++row)
    maxKeyNorm = std::max(maxKeyNorm, rowNorm(keys + row * dim(), dim()));

  auto pageSlot = [&](int64_t j) -> std::pair<const Page *, int64_t> {
    if (j < intoLast)
      return {last, last->used + j};
    j -= intoLast;
    return {&fresh[j / pageCap], j % pageCap};
  };
  // Finite inputs can still overflow once rotated and stored: |x·R| reaches
  // ‖x‖, beyond fp16's 65504 (or f32's range).
  // `winnowed`: the overflow is in an int8 row's f32 scale.
  auto storageOverflow = [&](bool isKey, int64_t h, bool winnowed = false) {
    bool f16 = config.storage == StorageType::F16 && !winnowed;
    return Status::error(
        StatusCode::InvalidArgument,
        (llvm::Twine(isKey ? "keys" : "values") + " of head " + llvm::Twine(h) +
         ": a rotated component overflows the " + (f16 ? "fp16" : "f32") +
         (winnowed ? " scale of its int8 row" : " storage") + " (|x·R| > " +
         (f16 ? "65504" : "FLT_MAX") + ")")
            .str());
  };
  // Winnows scratch rows [0, count), which are leaving tokens
  // [first, first + count), into their page slots, one kernel call per page.
  auto compressInto = [&](int64_t h, bool isKey, int64_t first, int64_t count,
                          const float *rotation) -> Status {
    for (int64_t j = first; j < first + count;) {
      auto [page, slot] = pageSlot(j);
      int64_t run = std::min(first + count - j, page->capacity - slot);
      const float *rows = scratch.get() + (j - first) * d;
      float *scales =
          isKey ? keyScales(*page, h, slot) : valueScales(*page, h, slot);
      llvm::Error e = isKey
                          ? kernels->compress(rows, run, rotation, page->kKey,
                                              keyValues(*page, h, slot),
                                              keyPositions(*page, h, slot),
                                              page->keyEncoding, scales)
                          : kernels->compress(rows, run, rotation, page->kValue,
                                              valueValues(*page, h, slot),
                                              valuePositions(*page, h, slot),
                                              page->valueEncoding, scales);
      if (e)
        return internal(std::move(e), "compress");
      // int8 values are finite by construction; their scales carry the
      // magnitude.
      int32_t k = isKey ? page->kKey : page->kValue;
      bool overflow = scales
                          ? firstNonFinite(scales, run, StorageType::F32) >= 0
                          : firstNonFinite(isKey ? keyValues(*page, h, slot)
                                                 : valueValues(*page, h, slot),
                                           run * k, config.storage) >= 0;
      if (overflow)
        return storageOverflow(isKey, h, scales != nullptr);
      j += run;
    }
    return Status::ok();
  };
  auto gatherNew = [&](const float *src, int64_t h, int64_t first,
                       int64_t count) {
    for (int64_t t = 0; t < count; ++t)
      std::memcpy(scratch.get() + t * d, src + ((first + t) * hCount + h) * d,
                  d * sizeof(float));
  };

  for (int64_t h = 0; h < hCount; ++h) {
    for (bool isKey : {true, false}) {
      const float *input = isKey ? keys : values;
      // Buffer rows are stored rotated already, so they are winnowed with
      // the identity: keeping unrotated copies would double the buffer.
      if (fromOld > 0) {
        for (int64_t t = 0; t < fromOld; ++t) {
          int64_t row = buffer.start + t;
          loadRows(isKey ? bufferKeys(buffer, h, row)
                         : bufferValues(buffer, h, row),
                   scratch.get() + t * d, d, config.storage);
        }
        if (Status st = compressInto(h, isKey, 0, fromOld, identity.data());
            !st.isOk())
          return st;
      }
      if (fromNew > 0) {
        gatherNew(input, h, 0, fromNew);
        const float *rotation =
            isKey ? keyRotation(h)
                  : (config.valuesPrerotated ? identity.data()
                                             : valueRotation(h));
        if (Status st = compressInto(h, isKey, fromOld, fromNew, rotation);
            !st.isOk())
          return st;
      }
      if (toBuffer > 0) {
        gatherNew(input, h, fromNew, toBuffer);
        const float *rows = scratch.get();
        if (isKey || !config.valuesPrerotated) {
          if (llvm::Error e = kernels->rotate(
                  scratch.get(), toBuffer,
                  isKey ? keyRotation(h) : valueRotation(h), rotated.get()))
            return internal(std::move(e), "rotate");
          rows = rotated.get();
        }
        char *staged = (isKey ? stagedKeys : stagedValues).get() +
                       h * toBuffer * d * element();
        storeRows(rows, staged, toBuffer * d, config.storage);
        if (firstNonFinite(staged, toBuffer * d, config.storage) >= 0)
          return storageOverflow(isKey, h);
      }
    }
  }

  // Commit: nothing below can fail except bookkeeping allocations.
  Sequence &target = isNew ? sequences[seq] : found->second;
  target.pages.reserve(target.pages.size() + fresh.size());
  if (intoLast > 0)
    target.pages.back().used += intoLast;
  int64_t rest = leave - intoLast;
  for (Page &page : fresh) {
    page.used = std::min(rest, page.capacity);
    rest -= page.used;
    target.pages.push_back(std::move(page));
  }
  target.sparseTokens += leave;
  target.maxKeyNorm = std::max(target.maxKeyNorm, maxKeyNorm);

  DenseBuffer &buf = target.buffer;
  if (!buf.memory)
    buf = std::move(newBuffer);
  buf.start += fromOld;
  buf.count -= fromOld;
  if (buf.start + buf.count + toBuffer > buf.capacity) {
    for (int64_t h = 0; h < hCount; ++h) {
      std::memmove(bufferKeys(buf, h, 0), bufferKeys(buf, h, buf.start),
                   buf.count * d * element());
      std::memmove(bufferValues(buf, h, 0), bufferValues(buf, h, buf.start),
                   buf.count * d * element());
    }
    buf.start = 0;
  }
  for (int64_t h = 0; h < hCount; ++h) {
    int64_t row = buf.start + buf.count;
    std::memcpy(bufferKeys(buf, h, row),
                stagedKeys.get() + h * toBuffer * d * element(),
                toBuffer * d * element());
    std::memcpy(bufferValues(buf, h, row),
                stagedValues.get() + h * toBuffer * d * element(),
                toBuffer * d * element());
  }
  buf.count += toBuffer;
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Re-winnowing
//===----------------------------------------------------------------------===//

/// swan::keepLargest on a stored row (of the storage type, or int8 under
/// SWAN-Q8, whose scale stays valid: the largest entry is kept), the kept
/// values then moved to `outValues` (at or below `values`: rows move down
/// in place).
static void keepLargestStored(char *values, uint8_t *indices, int32_t k,
                              int32_t keep, StorageType storage,
                              WinnowedStorage winnowed, char *outValues) {
  if (winnowed == WinnowedStorage::Int8)
    keepLargest(reinterpret_cast<int8_t *>(values), indices, k, keep);
  else if (storage == StorageType::F16)
    keepLargest(reinterpret_cast<_Float16 *>(values), indices, k, keep);
  else
    keepLargest(reinterpret_cast<float *>(values), indices, k, keep);
  std::memmove(outValues, values,
               keep * winnowedElementBytes(storage, winnowed));
}

/// keepLargestStored on a row whose positions are a `dim`-bit occupancy mask:
/// the stored values ascend with the dimension just as with indices, so the
/// same selection applies; the mask is rewritten in place with only the kept
/// bits.
static void keepLargestMasked(char *values, uint8_t *mask, int64_t dim,
                              int32_t k, int32_t keep, StorageType storage,
                              WinnowedStorage winnowed, char *outValues) {
  uint8_t dims[kMaxHeadDim] = {};
  maskIndices(mask, dim, dims);
  keepLargestStored(values, dims, k, keep, storage, winnowed, outValues);
  indicesMask(dims, keep, dim, mask);
}

/// Lowers a page to (kKey, kValue) in place and gives the tail back with
/// realloc. Every section and row moves to a lower address, in increasing
/// order, so no row is overwritten before it is read; kept positions first
/// go to their own old row (indices to its front). Nothing here can fail:
/// if realloc cannot shrink, the page keeps its old (still valid, still
/// counted) block.
///
/// A mask page stays a mask page even when the new k is at most D/8, where
/// indices would be smaller: its mask rows are rewritten within themselves,
/// with no re-encoding pass and nothing that can fail, and the price is
/// bounded by D/8 bytes per row. This holds for key masks and value masks
/// alike; pages created afterwards get the encodings that suit the new k.
void HostStore::shrinkPage(Page &page, int32_t kKey, int32_t kValue) const {
  const int32_t newKKey = std::min(page.kKey, kKey);
  const int32_t newKValue = std::min(page.kValue, kValue);
  if (newKKey == page.kKey && newKValue == page.kValue)
    return;
  const int64_t hCount = heads(), cap = page.capacity;
  const size_t e = winnowedElement();
  // The scale sections lead the page and keep their place and size.
  char *base = page.memory.get() + scaleSectionBytes(cap);
  auto rows = [&](auto &&visit) {
    for (int64_t h = 0; h < hCount; ++h)
      for (int64_t t = 0; t < page.used; ++t)
        visit(h * cap + t);
  };
  // 1. key values to their new rows; kept key positions within their own
  // old rows (indices to the front, masks with only the kept bits).
  char *oldKeyPos = base + hCount * cap * (page.kKey + page.kValue) * e;
  const int64_t oldKeyRow = positionBytes(page.keyEncoding, dim(), page.kKey);
  const int64_t newKeyRow = positionBytes(page.keyEncoding, dim(), newKKey);
  char *oldValuePos = oldKeyPos + hCount * cap * oldKeyRow;
  const int64_t oldValueRow =
      positionBytes(page.valueEncoding, dim(), page.kValue);
  const int64_t newValueRow =
      positionBytes(page.valueEncoding, dim(), newKValue);
  auto keepRow = [&](char *values, char *positions, SparseEncoding encoding,
                     int32_t k, int32_t keep, char *outValues) {
    auto *bytes = reinterpret_cast<uint8_t *>(positions);
    if (encoding == SparseEncoding::Mask)
      keepLargestMasked(values, bytes, dim(), k, keep, config.storage,
                        config.winnowed, outValues);
    else
      keepLargestStored(values, bytes, k, keep, config.storage, config.winnowed,
                        outValues);
  };
  rows([&](int64_t r) {
    keepRow(base + r * page.kKey * e, oldKeyPos + r * oldKeyRow,
            page.keyEncoding, page.kKey, newKKey, base + r * newKKey * e);
  });
  // 2. value values likewise.
  char *oldValues = base + hCount * cap * page.kKey * e;
  char *newValues = base + hCount * cap * newKKey * e;
  rows([&](int64_t r) {
    keepRow(oldValues + r * page.kValue * e, oldValuePos + r * oldValueRow,
            page.valueEncoding, page.kValue, newKValue,
            newValues + r * newKValue * e);
  });
  // 3, 4. the position sections; mask rows keep their size, so only their
  // section moves.
  char *newKeyPos = base + hCount * cap * (newKKey + newKValue) * e;
  rows([&](int64_t r) {
    std::memmove(newKeyPos + r * newKeyRow, oldKeyPos + r * oldKeyRow,
                 newKeyRow);
  });
  char *newValuePos = newKeyPos + hCount * cap * newKeyRow;
  rows([&](int64_t r) {
    std::memmove(newValuePos + r * newValueRow, oldValuePos + r * oldValueRow,
                 newValueRow);
  });
  page.kKey = newKKey;
  page.kValue = newKValue;
  size_t newBytes =
      pageBytes(cap, newKKey, newKValue, page.keyEncoding, page.valueEncoding);
  if (void *smaller = std::realloc(page.memory.get(), newBytes)) {
    (void)page.memory.release();
    page.memory.reset(static_cast<char *>(smaller));
    page.bytes = newBytes;
  }
}

Status HostStore::rewinnow(int32_t kKey, int32_t kValue) {
  for (auto &entry : sequences)
    for (Page &page : entry.second.pages)
      shrinkPage(page, kKey, kValue);
#ifdef __GLIBC__
  // Small pages live in malloc's heap; hand its free tail to the system.
  malloc_trim(0);
#endif
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// The CPU kernels over every page and buffer of the batch.
Status HostStore::attention(const int32_t *seqs, int64_t count, const float *q,
                            float scale, float *out) {
  std::vector<const Sequence *> batch;
  size_t blocks = 0;
  for (int64_t i = 0; i < count; ++i) {
    batch.push_back(&sequences.at(seqs[i]));
    blocks += batch.back()->pages.size();
  }
  const int64_t d = dim(), hCount = heads(), g = config.groupSize;
  std::vector<SparseBlock> sparse;
  sparse.reserve(blocks * hCount);
  std::vector<AttentionWork> work;
  work.reserve(batch.size() * hCount);
  for (size_t i = 0; i < batch.size(); ++i) {
    const Sequence &s = *batch[i];
    for (int64_t h = 0; h < hCount; ++h) {
      size_t first = sparse.size();
      for (const Page &p : s.pages)
        sparse.push_back({keyValues(p, h, 0), keyPositions(p, h, 0), p.kKey,
                          valueValues(p, h, 0), valuePositions(p, h, 0),
                          p.kValue, p.used, p.valueEncoding, p.keyEncoding,
                          keyScales(p, h, 0), valueScales(p, h, 0)});
      AttentionWork w;
      w.query = q + (i * hCount + h) * g * d;
      w.keyRotation = keyRotation(h);
      w.valueRotation = valueRotation(h);
      w.sparse = llvm::ArrayRef<SparseBlock>(sparse.data() + first,
                                             sparse.size() - first);
      w.buffer = {bufferKeys(s.buffer, h, s.buffer.start),
                  bufferValues(s.buffer, h, s.buffer.start), s.buffer.count};
      w.out = out + (i * hCount + h) * g * d;
      work.push_back(w);
    }
  }
  if (llvm::Error e = kernels->attention(work, scale, config.outputRotated))
    return internal(std::move(e), "attention");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Sequences and accounting
//===----------------------------------------------------------------------===//

StoredSequence HostStore::sequence(int32_t seq) const {
  const Sequence &s = sequences.at(seq);
  StoredSequence stored;
  stored.bufferTokens = s.buffer.count;
  stored.sparseTokens = s.sparseTokens;
  stored.pages = s.pages.size();
  stored.maskPages =
      std::count_if(s.pages.begin(), s.pages.end(), [](const Page &page) {
        return page.valueEncoding == SparseEncoding::Mask;
      });
  stored.keyMaskPages =
      std::count_if(s.pages.begin(), s.pages.end(), [](const Page &page) {
        return page.keyEncoding == SparseEncoding::Mask;
      });
  stored.bytes = s.bytes();
  stored.maxKeyNorm = s.maxKeyNorm;
  return stored;
}

size_t HostStore::bytes() const {
  size_t total = 0;
  for (const auto &entry : sequences)
    total += entry.second.bytes();
  return total;
}

Status HostStore::decompress(int32_t seq, SequenceRows &out) const {
  const Sequence &s = sequences.at(seq);
  const int64_t d = dim(), hCount = heads();
  const StorageType st = config.storage;
  out = SequenceRows();
  out.tokens = s.sparseTokens + s.buffer.count;
  out.keys.assign(out.tokens * hCount * d, 0.0f);
  out.values.assign(out.tokens * hCount * d, 0.0f);
  int64_t token = 0;
  for (const Page &p : s.pages) {
    for (int64_t t = 0; t < p.used; ++t, ++token) {
      out.keyK.push_back(p.kKey);
      out.valueK.push_back(p.kValue);
      out.inBuffer.push_back(false);
      for (int64_t h = 0; h < hCount; ++h) {
        float *key = out.keys.data() + (token * hCount + h) * d;
        float *value = out.values.data() + (token * hCount + h) * d;
        scatterRow(keyValues(p, h, t), keyPositions(p, h, t), p.kKey,
                   p.keyEncoding, d, st, key, keyScales(p, h, t));
        scatterRow(valueValues(p, h, t), valuePositions(p, h, t), p.kValue,
                   p.valueEncoding, d, st, value, valueScales(p, h, t));
      }
    }
  }
  for (int64_t t = 0; t < s.buffer.count; ++t, ++token) {
    out.keyK.push_back(d);
    out.valueK.push_back(d);
    out.inBuffer.push_back(true);
    for (int64_t h = 0; h < hCount; ++h) {
      loadRows(bufferKeys(s.buffer, h, s.buffer.start + t),
               out.keys.data() + (token * hCount + h) * d, d, st);
      loadRows(bufferValues(s.buffer, h, s.buffer.start + t),
               out.values.data() + (token * hCount + h) * d, d, st);
    }
  }
  return Status::ok();
}
