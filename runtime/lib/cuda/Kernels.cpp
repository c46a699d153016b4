//===- Kernels.cpp - SWAN kernels on a CUDA GPU ---------------------------===//

#include "swan/Runtime/CUDA/Kernels.h"

#include "swan/Codegen/GPU/KernelABI.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

using namespace swan::cuda;
using swan::SparseEncoding;
using swan::StorageType;
namespace abi = swan::gpu_abi;

namespace {
#include "CudaPTX.inc"

const char *storageName(StorageType storage) {
  return storage == StorageType::F16 ? "f16" : "f32";
}

const EmbeddedPtx *findPtx(int64_t dim, int64_t group, StorageType storage) {
  for (const EmbeddedPtx &entry : kEmbeddedPtx)
    if (entry.dim == dim && entry.group == group &&
        std::strcmp(entry.storage, storageName(storage)) == 0)
      return &entry;
  return nullptr;
}

/// The entry point (Kernels.mlir.in) of a decode step's kernels.
const char *decodeEntry(SparseEncoding encoding, bool rotatedOutput) {
  if (encoding == SparseEncoding::Mask)
    return rotatedOutput ? "decode_attention_masks_rotated"
                         : "decode_attention_masks";
  return rotatedOutput ? "decode_attention_rotated" : "decode_attention";
}

Status invalid(const std::string &message) {
  return Status::error(StatusCode::InvalidArgument, message);
}

/// Rejects a launch whose device range is smaller than its shape says. An
/// empty array needs no memory, so it may come without any.
Status checkSize(DeviceRange range, size_t bytes, const char *what) {
  if (bytes == 0)
    return Status::ok();
  if (!range.address)
    return invalid(std::string(what) + " is missing");
  if (range.bytes < bytes)
    return invalid(std::string(what) + " holds " + std::to_string(range.bytes) +
                   " bytes, needs " + std::to_string(bytes));
  return Status::ok();
}
/// Mask rows are read as D/32 words in one access (KernelABI.h): their
/// ranges must start on a multiple of that access, as cuMemAlloc's do.
Status checkMaskAlignment(std::initializer_list<DeviceRange> masks, int64_t dim,
                          const std::string &who = "") {
  const uint64_t alignment = std::min<uint64_t>(16, dim / 8);
  for (DeviceRange range : masks)
    if (range.address % alignment != 0)
      return invalid(who + "sparse masks must start on a multiple of " +
                     std::to_string(alignment) + " bytes");
  return Status::ok();
}

struct SizeCheck {
  DeviceRange range;
  size_t bytes;
  const char *what;
};

/// The first range too small for its bytes, as an error prefixed by `who`.
Status checkSizes(std::initializer_list<SizeCheck> checks,
                  const std::string &who = "") {
  for (const SizeCheck &c : checks)
    if (Status s = checkSize(c.range, c.bytes, c.what); !s.isOk())
      return invalid(who + s.message());
  return Status::ok();
}
} // namespace

bool DeviceKernels::available(int64_t dim, int64_t group, StorageType storage) {
  return findPtx(dim, group, storage) != nullptr;
}

std::vector<Specialisation> DeviceKernels::specialisations() {
  std::vector<Specialisation> all;
  for (const EmbeddedPtx &entry : kEmbeddedPtx)
    all.push_back({entry.dim, entry.group,
                   std::strcmp(entry.storage, "f16") == 0 ? StorageType::F16
                                                          : StorageType::F32});
  return all;
}

Status DeviceKernels::load(Device &device, int64_t dim, int64_t group,
                           StorageType storage,
                           std::unique_ptr<DeviceKernels> &out) {
  const EmbeddedPtx *entry = findPtx(dim, group, storage);
  if (!entry)
    return Status::error(
        StatusCode::Unsupported,
        "no CUDA kernels built for D = " + std::to_string(dim) +
            ", G = " + std::to_string(group) + ", " + storageName(storage) +
            " (see SWAN_CUDA_HEAD_DIMS / SWAN_CUDA_GROUPS)");
  std::unique_ptr<DeviceKernels> set(new DeviceKernels(device));
  set->dim_ = dim;
  set->group_ = group;
  set->storage_ = storage;
  if (Status s = device.loadModule(entry->ptx, set->module_); !s.isOk())
    return s;
  for (SparseEncoding encoding :
       {SparseEncoding::Indices, SparseEncoding::Mask})
    for (bool rotated : {false, true})
      for (bool paged : {false, true}) {
        std::string kernel =
            std::string(decodeEntry(encoding, rotated)) +
            (paged ? abi::kPagedPartialSuffix : abi::kPartialSuffix);
        if (Status s = device.residentBlocks(
                set->module_, kernel.c_str(), abi::kPartialThreads,
                set->residentPartials_[encoding == SparseEncoding::Mask]
                                      [rotated][paged]);
            !s.isOk())
          return s;
      }
  out = std::move(set);
  return Status::ok();
}

Status DeviceKernels::rotate(DeviceRange x, int64_t rows, DeviceRange rotation,
                             DeviceRange out) {
  if (rows <= 0)
    return rows == 0 ? Status::ok() : invalid("negative row count");
  size_t rowBytes = dim_ * sizeof(float);
  if (Status s = checkSize(x, rows * rowBytes, "rotate input"); !s.isOk())
    return s;
  if (Status s = checkSize(rotation, dim_ * rowBytes, "rotation"); !s.isOk())
    return s;
  if (Status s = checkSize(out, rows * rowBytes, "rotate output"); !s.isOk())
    return s;
  KernelArguments args;
  args.addMemRef(x.address, {rows, dim_});
  args.addMemRef(rotation.address, {dim_, dim_});
  args.addMemRef(out.address, {rows, dim_});
  LaunchShape shape;
  shape.grid[0] = static_cast<unsigned>(rows);
  shape.block[0] = static_cast<unsigned>(dim_);
  return device_.launch(module_, "rotate", shape, args);
}

Status DeviceKernels::compress(DeviceRange x, int64_t rows,
                               DeviceRange rotation, int64_t k,
                               DeviceRange values, DeviceRange indices,
                               SparseEncoding encoding, int64_t width) {
  return launchCompress(encoding == SparseEncoding::Mask ? "compress_mask"
                                                         : "compress",
                        x, rows * dim_ * sizeof(float), rows, rotation, k,
                        values, indices, encoding, width);
}

Status DeviceKernels::compressStored(DeviceRange x, int64_t rows,
                                     DeviceRange rotation, int64_t k,
                                     DeviceRange values, DeviceRange indices,
                                     SparseEncoding encoding, int64_t width) {
  return launchCompress(encoding == SparseEncoding::Mask
                            ? "compress_stored_mask"
                            : "compress_stored",
                        x, rows * dim_ * elementBytes(storage_), rows, rotation,
                        k, values, indices, encoding, width);
}

Status DeviceKernels::launchCompress(const char *kernel, DeviceRange x,
                                     size_t xBytes, int64_t rows,
                                     DeviceRange rotation, int64_t k,
                                     DeviceRange values, DeviceRange indices,
                                     SparseEncoding encoding, int64_t width) {
  if (k < 1 || k > dim_)
    return invalid("k = " + std::to_string(k) + " is outside [1, D]");
  if (width == 0)
    width = k;
  // Index rows are exactly k wide: every slot names a dimension.
  if (encoding == SparseEncoding::Indices && width != k)
    return invalid("index rows are k = " + std::to_string(k) + " wide, not " +
                   std::to_string(width));
  if (width < k || width > dim_)
    return invalid("row width " + std::to_string(width) +
                   " is outside [k, D] for k = " + std::to_string(k));
  if (rows <= 0)
    return rows == 0 ? Status::ok() : invalid("negative row count");
  if (Status s = checkSize(x, xBytes, "compress input"); !s.isOk())
    return s;
  if (Status s = checkSize(rotation, dim_ * dim_ * sizeof(float), "rotation");
      !s.isOk())
    return s;
  const int64_t positions = positionBytes(encoding, dim_, k);
  if (Status s = checkSize(values, rows * width * elementBytes(storage_),
                           "compressed values");
      !s.isOk())
    return s;
  if (Status s =
          checkSize(indices, rows * positions,
                    encoding == SparseEncoding::Mask ? "compressed masks"
                                                     : "compressed indices");
      !s.isOk())
    return s;
  KernelArguments args;
  args.addMemRef(x.address, {rows, dim_});
  args.addMemRef(rotation.address, {dim_, dim_});
  args.addIndex(k);
  args.addMemRef(values.address, {rows, width});
  args.addMemRef(indices.address, {rows, positions});
  LaunchShape shape;
  shape.grid[0] = static_cast<unsigned>(rows);
  shape.block[0] = static_cast<unsigned>(dim_);
  return device_.launch(module_, kernel, shape, args);
}

int64_t DeviceKernels::chooseSplits(const DecodeProblem &problem) const {
  return chooseSplits(problem.batch * problem.kvHeads, problem.sparseCapacity,
                      residentPartials(problem.encoding, problem.rotatedOutput,
                                       /*paged=*/false));
}

int64_t DeviceKernels::chooseSplits(int64_t units, int64_t sparseCapacity,
                                    int resident) const {
  units = std::max<int64_t>(1, units);
  // One more block than fits would cost a whole extra wave; each (sequence,
  // head) also has its buffer's block.
  int64_t wanted =
      std::max(1, resident) * device_.multiprocessorCount() / units - 1;
  // A split shorter than one chunk wastes its block's setup.
  int64_t most = std::max<int64_t>(
      1, (sparseCapacity + abi::kTokensPerChunk - 1) / abi::kTokensPerChunk);
  return std::clamp<int64_t>(std::min(wanted, most), 1,
                             abi::kMaxPartialBlocks - 1);
}

Status DeviceKernels::ensureWorkspace(size_t maxBytes, size_t accBytes,
                                      size_t countBytes) {
  // Each buffer is checked on its own: an allocation that failed last time
  // may have left one grown and the next not.
  const std::pair<Buffer *, size_t> wanted[] = {{&partialMax_, maxBytes},
                                                {&partialSum_, maxBytes},
                                                {&partialAcc_, accBytes},
                                                {&finished_, countBytes}};
  // A larger workspace replaces one that launches already enqueued may still
  // use, and freeing device memory is not guaranteed to wait for them.
  for (auto [buffer, bytes] : wanted)
    if (buffer->address() && buffer->bytes() < bytes) {
      if (Status s = device_.synchronize(); !s.isOk())
        return s;
      break;
    }
  for (auto [buffer, bytes] : wanted)
    if (buffer->bytes() < bytes) {
      if (buffer == &finished_)
        finishedCleared_ = false;
      if (Status s = device_.allocate(bytes, *buffer); !s.isOk())
        return s;
    }
  // The counts start at zero; each launch's merging blocks leave them so.
  if (!finishedCleared_) {
    std::vector<uint8_t> zeros(finished_.bytes(), 0);
    if (Status s = device_.copyToDevice(finished_, zeros.data(), zeros.size());
        !s.isOk())
      return s;
    finishedCleared_ = true;
  }
  return Status::ok();
}

Status DeviceKernels::decodeAttention(const DecodeProblem &p,
                                      const DecodeBuffers &b) {
  const int64_t D = dim_, G = group_, B = p.batch, H = p.kvHeads;
  const int64_t L = p.sparseCapacity, bufferSlots = p.bufferCapacity;
  if (B < 1 || H < 1 || L < 0 || bufferSlots < 0)
    return invalid("decode attention needs B >= 1, H >= 1, L >= 0, b >= 0");
  if (p.keyK < 1 || p.keyK > D || p.valueK < 1 || p.valueK > D)
    return invalid("k outside [1, D]");
  const size_t elem = elementBytes(storage_);
  const size_t f32 = sizeof(float);
  const bool masks = p.encoding == SparseEncoding::Mask;
  const int64_t keyPositions = positionBytes(p.encoding, D, p.keyK);
  const int64_t valuePositions = positionBytes(p.encoding, D, p.valueK);
  if (Status s = checkSizes({
          {b.query, size_t(B * H * G * D) * f32, "query"},
          {b.keyRotation, size_t(H * D * D) * f32, "key rotation"},
          {b.valueRotation, p.rotatedOutput ? 0 : size_t(H * D * D) * f32,
           "value rotation"},
          {b.keyValues, size_t(B * H * L * p.keyK) * elem, "sparse key values"},
          {b.keyIndices, size_t(B * H * L * keyPositions),
           masks ? "sparse key masks" : "sparse key indices"},
          {b.valueValues, size_t(B * H * L * p.valueK) * elem,
           "sparse value values"},
          {b.valueIndices, size_t(B * H * L * valuePositions),
           masks ? "sparse value masks" : "sparse value indices"},
          {b.bufferKeys, size_t(B * H * bufferSlots * D) * elem, "buffer keys"},
          {b.bufferValues, size_t(B * H * bufferSlots * D) * elem,
           "buffer values"},
          {b.sparseLengths, size_t(B) * 4, "sparse lengths"},
          {b.bufferLengths, size_t(B) * 4, "buffer lengths"},
          {b.out, size_t(B * H * G * D) * f32, "output"},
      });
      !s.isOk())
    return s;

  if (masks)
    if (Status s = checkMaskAlignment({b.keyIndices, b.valueIndices}, D);
        !s.isOk())
      return s;
  const int64_t splits = p.splits > 0 ? p.splits : chooseSplits(p);
  KernelArguments partial;
  partial.addMemRef(b.query.address, {B, H * G, D});
  partial.addF32(p.scale);
  partial.addMemRef(b.keyRotation.address, {H, D, D});
  partial.addMemRef(b.keyValues.address, {B, H, L, p.keyK});
  partial.addMemRef(b.keyIndices.address, {B, H, L, keyPositions});
  partial.addMemRef(b.valueValues.address, {B, H, L, p.valueK});
  partial.addMemRef(b.valueIndices.address, {B, H, L, valuePositions});
  partial.addMemRef(b.bufferKeys.address, {B, H, bufferSlots, D});
  partial.addMemRef(b.bufferValues.address, {B, H, bufferSlots, D});
  partial.addMemRef(b.sparseLengths.address, {B});
  partial.addMemRef(b.bufferLengths.address, {B});
  return launchDecode(decodeEntry(p.encoding, p.rotatedOutput),
                      abi::kPartialSuffix, partial, B, H, splits,
                      p.rotatedOutput, b.valueRotation, b.out);
}

Status DeviceKernels::decodeAttention(const PagedDecodeStep &step,
                                      const DecodeSequence *sequences,
                                      int64_t count) {
  const int64_t D = dim_, G = group_, H = step.kvHeads;
  if (count < 1 || H < 1)
    return invalid("decode attention needs at least one sequence and H >= 1");
  const size_t elem = elementBytes(storage_), f32 = sizeof(float);
  const size_t rows = size_t(count * H * G * D) * f32;
  if (Status s = checkSizes({
          {step.query, rows, "query"},
          {step.out, rows, "output"},
          {step.keyRotation, size_t(H * D * D) * f32, "key rotation"},
          {step.valueRotation, step.rotatedOutput ? 0 : size_t(H * D * D) * f32,
           "value rotation"},
      });
      !s.isOk())
    return s;

  std::vector<int64_t> table(count * abi::kSequenceFields);
  int64_t longest = 0;
  for (int64_t i = 0; i < count; ++i) {
    const DecodeSequence &q = sequences[i];
    const std::string which = "sequence " + std::to_string(i) + ": ";
    if (q.capacity < 0 || q.bufferCapacity < 0 || q.sparseLength < 0 ||
        q.sparseLength > q.capacity || q.bufferLength < 0 ||
        q.bufferLength > q.bufferCapacity)
      return invalid(which + "lengths must lie in [0, capacity]");
    if (q.keyK < 1 || q.keyK > D || q.valueK < 1 || q.valueK > D)
      return invalid(which + "k outside [1, D]");
    const size_t keySlots = size_t(H * q.capacity * q.keyK);
    const size_t valueSlots = size_t(H * q.capacity * q.valueK);
    const size_t bufferSlots = size_t(H * q.bufferCapacity * D);
    const bool masks = step.encoding == SparseEncoding::Mask;
    const size_t keyPositions =
        size_t(H * q.capacity * positionBytes(step.encoding, D, q.keyK));
    const size_t valuePositions =
        size_t(H * q.capacity * positionBytes(step.encoding, D, q.valueK));
    if (Status s = checkSizes(
            {
                {q.keyValues, keySlots * elem, "sparse key values"},
                {q.keyIndices, keyPositions,
                 masks ? "sparse key masks" : "sparse key indices"},
                {q.valueValues, valueSlots * elem, "sparse value values"},
                {q.valueIndices, valuePositions,
                 masks ? "sparse value masks" : "sparse value indices"},
                {q.bufferKeys, bufferSlots * elem, "buffer keys"},
                {q.bufferValues, bufferSlots * elem, "buffer values"},
            },
            which);
        !s.isOk())
      return s;
    if (masks)
      if (Status s =
              checkMaskAlignment({q.keyIndices, q.valueIndices}, D, which);
          !s.isOk())
        return s;
    int64_t *row = &table[i * abi::kSequenceFields];
    row[abi::kKeyValues] = q.keyValues.address;
    row[abi::kKeyIndices] = q.keyIndices.address;
    row[abi::kValueValues] = q.valueValues.address;
    row[abi::kValueIndices] = q.valueIndices.address;
    row[abi::kBufferKeys] = q.bufferKeys.address;
    row[abi::kBufferValues] = q.bufferValues.address;
    row[abi::kCapacity] = q.capacity;
    row[abi::kKeyK] = q.keyK;
    row[abi::kValueK] = q.valueK;
    row[abi::kBufferCapacity] = q.bufferCapacity;
    row[abi::kSparseLength] = q.sparseLength;
    row[abi::kBufferLength] = q.bufferLength;
    longest = std::max(longest, q.sparseLength);
  }

  const size_t tableBytes = table.size() * sizeof(int64_t);
  if (sequenceTable_.bytes() < tableBytes) {
    // Launches already enqueued may still read the table it replaces.
    if (sequenceTable_.address())
      if (Status s = device_.synchronize(); !s.isOk())
        return s;
    if (Status s = device_.allocate(tableBytes, sequenceTable_); !s.isOk())
      return s;
  }
  if (Status s = device_.copyToDevice(sequenceTable_, table.data(), tableBytes);
      !s.isOk())
    return s;

  const int64_t splits =
      step.splits > 0
          ? step.splits
          : chooseSplits(count * H, longest,
                         residentPartials(step.encoding, step.rotatedOutput,
                                          /*paged=*/true));
  KernelArguments partial;
  partial.addMemRef(step.query.address, {count, H * G, D});
  partial.addF32(step.scale);
  partial.addMemRef(step.keyRotation.address, {H, D, D});
  partial.addMemRef(sequenceTable_.address(), {count, abi::kSequenceFields});
  return launchDecode(decodeEntry(step.encoding, step.rotatedOutput),
                      abi::kPagedPartialSuffix, partial, count, H, splits,
                      step.rotatedOutput, step.valueRotation, step.out);
}

Status DeviceKernels::launchDecode(const char *name, const char *partialSuffix,
                                   KernelArguments &partial, int64_t B,
                                   int64_t H, int64_t splits,
                                   bool rotatedOutput,
                                   DeviceRange valueRotation, DeviceRange out) {
  const int64_t D = dim_, G = group_;
  const int64_t blocks = splits + 1; // + the dense buffer's block
  if (blocks > abi::kMaxPartialBlocks)
    return invalid("at most " + std::to_string(abi::kMaxPartialBlocks - 1) +
                   " splits");
  const size_t f32 = sizeof(float);
  if (Status s = ensureWorkspace(size_t(B * H * blocks * G) * f32,
                                 size_t(B * H * blocks * G * D) * f32,
                                 size_t(B * H) * sizeof(int32_t));
      !s.isOk())
    return s;

  partial.addMemRef(partialMax_.address(), {B, H, blocks, G});
  partial.addMemRef(partialSum_.address(), {B, H, blocks, G});
  partial.addMemRef(partialAcc_.address(), {B, H, blocks, G, D});
  partial.addMemRef(finished_.address(), {B, H});
  if (!rotatedOutput)
    partial.addMemRef(valueRotation.address, {H, D, D});
  partial.addMemRef(out.address, {B, H * G, D});
  LaunchShape shape;
  shape.grid[0] = static_cast<unsigned>(blocks);
  shape.grid[1] = static_cast<unsigned>(H);
  shape.grid[2] = static_cast<unsigned>(B);
  shape.block[0] = static_cast<unsigned>(abi::kPartialThreads);
  Status s = device_.launch(
      module_, (std::string(name) + partialSuffix).c_str(), shape, partial);
  // A launch that failed may have stopped with some counts taken.
  if (!s.isOk())
    finishedCleared_ = false;
  return s;
}
