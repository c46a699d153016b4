//===- Kernels.cpp - JIT-compiled SWAN kernels on plain buffers -----------===//
//
// KernelSet compiles the entry points of docs/KERNELS.md once per key and
// process, and runs them over caller buffers on a process-wide thread pool.
// Decode attention is flash-decoding: the rotated queries, one partial per
// token chunk (blocks are cut into chunks of about equal bytes so that one
// long sequence fills every core), and one merge per work item, run by
// whichever thread finishes that item's last partial.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CPU/Kernels.h"

#include "swan/Runtime/CPU/JitEngine.h"
#include "swan/Runtime/CPU/KernelModule.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/Threading.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

using llvm::ArrayRef;
using llvm::Error;

namespace swan {

/// D ≤ kMaxHeadDim (RowLayout.h); the lowering works on whole vectors of 16
/// f32 lanes (one AVX-512 register).
constexpr int32_t kHeadDimMultiple = 16;
constexpr int32_t kMaxGroupSize = 64;

/// Work is cut into about this many pieces per worker so that uneven pieces
/// still balance, but never below a size where call overhead dominates.
constexpr int64_t kPiecesPerWorker = 8;
constexpr int64_t kMinChunkBytes = 64 * 1024;
constexpr int64_t kMinChunkRows = 32;
/// Below this many multiply-adds, the calling thread rotates the queries
/// itself.
constexpr int64_t kInlineMultiplies = int64_t(1) << 19;

/// No cache holds 2^40 tokens per block; the bound keeps every byte count
/// below comfortably inside int64_t.
constexpr int64_t kMaxTokens = int64_t(1) << 40;

namespace {

using FloatVector = StridedMemRefType<float, 1>;
using FloatRows = StridedMemRefType<float, 2>;
using FloatBlocks = StridedMemRefType<float, 3>;
/// Storage values (f32 or f16 bits) and uint8 indices. A descriptor holds
/// only pointers, an offset, sizes and strides, so its layout does not
/// depend on the element type and one byte-typed descriptor serves them all.
using ByteRows = StridedMemRefType<uint8_t, 2>;

/// A contiguous row-major descriptor over caller memory. The kernels only
/// read their inputs, hence the const_cast.
template <typename T, int N>
StridedMemRefType<T, N> describe(const void *data,
                                 std::array<int64_t, N> sizes) {
  StridedMemRefType<T, N> descriptor;
  descriptor.basePtr = descriptor.data =
      static_cast<T *>(const_cast<void *>(data));
  descriptor.offset = 0;
  int64_t stride = 1;
  for (int dim = N - 1; dim >= 0; --dim) {
    descriptor.sizes[dim] = sizes[dim];
    descriptor.strides[dim] = stride;
    stride *= sizes[dim];
  }
  return descriptor;
}

const uint8_t *advance(const void *data, int64_t bytes) {
  return static_cast<const uint8_t *>(data) + bytes;
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

llvm::ThreadPoolInterface &kernelThreadPool() {
  // Leaked on purpose: joining workers during static destruction would race
  // with the rest of process teardown.
  static auto *pool = new llvm::DefaultThreadPool(llvm::hardware_concurrency());
  return *pool;
}

int64_t workerCount() { return kernelThreadPool().getMaxConcurrency(); }

/// Runs body(i) for every i in [0, count) on the pool and the calling
/// thread; each worker takes the next index until none is left.
template <typename Body> void parallelFor(int64_t count, const Body &body) {
  if (count <= 0)
    return;
  llvm::ThreadPoolInterface &pool = kernelThreadPool();
  int64_t helpers = std::min<int64_t>(pool.getMaxConcurrency(), count) - 1;
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < count;
         i = next.fetch_add(1, std::memory_order_relaxed))
      body(i);
  };
  if (helpers <= 0) {
    worker();
    return;
  }
  llvm::ThreadPoolTaskGroup group(pool);
  for (int64_t helper = 0; helper < helpers; ++helper)
    group.async(worker);
  worker();
  group.wait();
}

/// One partial of one work item: a chunk of a sparse block, or (block ==
/// nullptr) a chunk of the dense buffer.
struct PartialTask {
  int32_t work;
  int32_t slot;
  const SparseBlock *block;
  int64_t begin;
  int64_t tokens;
};

/// Buffers one calling thread reuses across attention calls, so that a
/// decode step allocates nothing once they have grown. Every task writes
/// only its own slots.
struct AttentionScratch {
  std::vector<PartialTask> tasks;
  std::vector<int64_t> firstSlot;
  std::vector<float> rotatedQueries;
  std::vector<float> maxes;
  std::vector<float> sums;
  std::vector<float> accumulators;
  std::unique_ptr<std::atomic<int32_t>[]> pending;
  size_t pendingCapacity = 0;

  void reservePending(size_t count) {
    if (count <= pendingCapacity)
      return;
    pending.reset(new std::atomic<int32_t>[count]);
    pendingCapacity = count;
  }
};

using CacheKey = std::tuple<int32_t, int32_t, int, int, std::string>;

std::atomic<int64_t> compileCounter{0};

} // namespace

/// The entry points of one specialisation, resolved once after compilation.
class CompiledKernels {
public:
  void (*rotate)(FloatRows *, FloatRows *, FloatRows *) = nullptr;
  using Compress = void (*)(FloatRows *, FloatRows *, int64_t, ByteRows *,
                            ByteRows *);
  using PartialSparse = void (*)(FloatRows *, float, ByteRows *, ByteRows *,
                                 ByteRows *, ByteRows *, FloatVector *,
                                 FloatVector *, FloatRows *);
  /// SWAN-Q8 (WinnowedStorage::Int8): int8 values, each operand followed by
  /// its rows' scales.
  using CompressQ8 = void (*)(FloatRows *, FloatRows *, int64_t, ByteRows *,
                              ByteRows *, FloatVector *);
  using PartialSparseQ8 = void (*)(FloatRows *, float, ByteRows *, ByteRows *,
                                   FloatVector *, ByteRows *, ByteRows *,
                                   FloatVector *, FloatVector *, FloatVector *,
                                   FloatRows *);
  /// Indexed by SparseEncoding: the positions' encoding; partials by the
  /// keys' encoding, then the values'. A key fills the plain or the Q8
  /// entry points, as its WinnowedStorage says.
  std::array<Compress, 2> compress = {};
  std::array<std::array<PartialSparse, 2>, 2> partialSparse = {};
  std::array<CompressQ8, 2> compressQ8 = {};
  std::array<std::array<PartialSparseQ8, 2>, 2> partialSparseQ8 = {};
  void (*partialDense)(FloatRows *, float, ByteRows *, ByteRows *,
                       FloatVector *, FloatVector *, FloatRows *) = nullptr;
  void (*merge)(FloatRows *, FloatRows *, FloatBlocks *, FloatRows *,
                FloatRows *) = nullptr;
  void (*mergeRotated)(FloatRows *, FloatRows *, FloatBlocks *,
                       FloatRows *) = nullptr;

  static llvm::Expected<std::unique_ptr<CompiledKernels>>
  compile(const KernelKey &key);

private:
  /// One entry point and the member that receives its address.
  struct Binding {
    const char *name;
    std::function<void(void *)> store;
  };
  template <typename Function>
  static Binding bind(const char *name, Function &member) {
    return {name, [&member](void *address) {
              member = reinterpret_cast<Function>(address);
            }};
  }

  /// One engine per entry point: each is lowered and compiled on its own,
  /// so that the entry points compile in parallel.
  std::vector<std::unique_ptr<JitEngine>> engines;
};

/// Lowers and compiles the entry point `name` of `key` alone, in a context
/// of its own (contexts are not shared across threads).
static llvm::Expected<std::unique_ptr<JitEngine>>
compileEntryPoint(const KernelKey &key, const char *name) {
  mlir::DialectRegistry registry;
  JitEngine::registerJitDialects(registry);
  // The module is small; the context's own thread pool would only cost.
  mlir::MLIRContext context(registry, mlir::MLIRContext::Threading::DISABLED);
  auto module = buildKernelModule(context, key, name);
  if (!module)
    return module.takeError();
  return JitEngine::compile(**module);
}

llvm::Expected<std::unique_ptr<CompiledKernels>>
CompiledKernels::compile(const KernelKey &key) {
  auto kernels = std::make_unique<CompiledKernels>();
  CompiledKernels &k = *kernels;
  constexpr size_t indices = size_t(SparseEncoding::Indices);
  constexpr size_t mask = size_t(SparseEncoding::Mask);
  // The costliest to compile first, so that the workers finish together.
  std::vector<Binding> bindings = {bind(entry::kPartialDense, k.partialDense)};
  auto bindWinnowed = [&](auto &compress, auto &partialSparse) {
    bindings.insert(
        bindings.end(),
        {bind(entry::kCompress, compress[indices]),
         bind(entry::kCompressMask, compress[mask]),
         bind(entry::kPartialSparseMasks, partialSparse[mask][mask]),
         bind(entry::kPartialSparseKeyMask, partialSparse[mask][indices]),
         bind(entry::kPartialSparseMask, partialSparse[indices][mask]),
         bind(entry::kPartialSparse, partialSparse[indices][indices])});
  };
  if (key.winnowed == WinnowedStorage::Int8)
    bindWinnowed(k.compressQ8, k.partialSparseQ8);
  else
    bindWinnowed(k.compress, k.partialSparse);
  bindings.insert(bindings.end(),
                  {bind(entry::kRotate, k.rotate), bind(entry::kMerge, k.merge),
                   bind(entry::kMergeRotated, k.mergeRotated)});
  const int64_t count = bindings.size();
  k.engines.resize(count);
  std::vector<std::string> errors(count);
  // Each worker compiles whole entry points, the lookup included: LLVM
  // generates the code at the first lookup.
  parallelFor(count, [&](int64_t i) {
    auto engine = compileEntryPoint(key, bindings[i].name);
    if (!engine) {
      errors[i] = llvm::toString(engine.takeError());
      return;
    }
    llvm::Expected<void *> address =
        (*engine)->lookupCInterface(bindings[i].name);
    if (!address) {
      errors[i] = llvm::toString(address.takeError());
      return;
    }
    bindings[i].store(*address);
    k.engines[i] = std::move(*engine);
  });
  for (int64_t i = 0; i < count; ++i)
    if (!errors[i].empty())
      return llvm::createStringError(llvm::Twine(bindings[i].name) + ": " +
                                     errors[i]);
  return std::move(kernels);
}

KernelSet::KernelSet(const KernelKey &key,
                     std::unique_ptr<CompiledKernels> kernels)
    : keyValue(key), kernels(std::move(kernels)) {}

KernelSet::~KernelSet() = default;

const KernelKey &KernelSet::key() const { return keyValue; }

int64_t KernelSet::compileCount() {
  return compileCounter.load(std::memory_order_relaxed);
}

static Error validateKey(const KernelKey &key) {
  if (key.headDim < kHeadDimMultiple || key.headDim > kMaxHeadDim ||
      key.headDim % kHeadDimMultiple != 0)
    return llvm::createStringError(
        "kernel key: headDim = %d must be a multiple of %d in [%d, %d]",
        key.headDim, kHeadDimMultiple, kHeadDimMultiple, kMaxHeadDim);
  if (key.groupSize < 1 || key.groupSize > kMaxGroupSize)
    return llvm::createStringError(
        "kernel key: groupSize = %d is outside [1, %d]", key.groupSize,
        kMaxGroupSize);
  if (key.storage != StorageType::F32 && key.storage != StorageType::F16)
    return llvm::createStringError("kernel key: unknown storage type %d",
                                   static_cast<int>(key.storage));
  if (key.winnowed != WinnowedStorage::AsStorage &&
      key.winnowed != WinnowedStorage::Int8)
    return llvm::createStringError("kernel key: unknown winnowed storage %d",
                                   static_cast<int>(key.winnowed));
  return Error::success();
}

llvm::Expected<std::shared_ptr<const KernelSet>>
KernelSet::get(const KernelKey &key) {
  if (Error error = validateKey(key))
    return std::move(error);
  // Leaked on purpose, like the pool: compiled code must outlive every
  // static destructor that might still call into it.
  static std::mutex *mutex = new std::mutex;
  static auto *cache = new std::map<CacheKey, std::shared_ptr<const KernelSet>>;
  CacheKey cacheKey(key.headDim, key.groupSize, static_cast<int>(key.storage),
                    static_cast<int>(key.winnowed), JitEngine::hostTarget());

  // Compiling under the lock makes concurrent first requests for one key
  // compile it once; compilations are rare and short.
  std::lock_guard<std::mutex> lock(*mutex);
  auto found = cache->find(cacheKey);
  if (found != cache->end())
    return found->second;
  compileCounter.fetch_add(1, std::memory_order_relaxed);
  auto kernels = CompiledKernels::compile(key);
  if (!kernels)
    return kernels.takeError();
  auto set = std::make_shared<const KernelSet>(key, std::move(*kernels));
  cache->emplace(cacheKey, set);
  return set;
}

Error KernelSet::rotate(const float *x, int64_t rows, const float *rotation,
                        float *out) const {
  if (rows < 0 || rows > kMaxTokens)
    return llvm::createStringError("rotate: rows = %lld is outside [0, 2^40]",
                                   static_cast<long long>(rows));
  if (rows == 0)
    return Error::success();
  if (!x || !rotation || !out)
    return llvm::createStringError("rotate: %s is null", !x ? "x"
                                                         : !rotation
                                                             ? "rotation"
                                                             : "out");
  const int64_t dim = keyValue.headDim;
  int64_t chunk =
      std::max(kMinChunkRows, ceilDiv(rows, workerCount() * kPiecesPerWorker));
  auto *kernel = kernels->rotate;
  parallelFor(ceilDiv(rows, chunk), [&](int64_t piece) {
    int64_t begin = piece * chunk;
    int64_t count = std::min(chunk, rows - begin);
    auto input = describe<float, 2>(x + begin * dim, {count, dim});
    auto matrix = describe<float, 2>(rotation, {dim, dim});
    auto output = describe<float, 2>(out + begin * dim, {count, dim});
    kernel(&input, &matrix, &output);
  });
  return Error::success();
}

Error KernelSet::compress(const float *x, int64_t rows, const float *rotation,
                          int32_t k, void *values, uint8_t *positions,
                          SparseEncoding encoding, float *scales) const {
  const int64_t dim = keyValue.headDim;
  if (k < 1 || k > dim)
    return llvm::createStringError("compress: k = %d is outside [1, %lld]", k,
                                   static_cast<long long>(dim));
  if (rows < 0 || rows > kMaxTokens)
    return llvm::createStringError("compress: rows = %lld is outside [0, 2^40]",
                                   static_cast<long long>(rows));
  if (rows == 0)
    return Error::success();
  if (encoding != SparseEncoding::Indices && encoding != SparseEncoding::Mask)
    return llvm::createStringError("compress: unknown encoding %d",
                                   static_cast<int>(encoding));
  if (!x || !rotation || !values || !positions)
    return llvm::createStringError("compress: %s is null",
                                   !x          ? "x"
                                   : !rotation ? "rotation"
                                   : !values   ? "values"
                                               : "positions");
  const bool quantised = keyValue.winnowed == WinnowedStorage::Int8;
  if (quantised && !scales)
    return llvm::createStringError(
        "compress: scales is null (int8 winnowed values need them)");
  if (!quantised && scales)
    return llvm::createStringError(
        "compress: scales given, but winnowed values are not int8");
  const int64_t elementSize =
      winnowedElementBytes(keyValue.storage, keyValue.winnowed);
  int64_t chunk =
      std::max(kMinChunkRows, ceilDiv(rows, workerCount() * kPiecesPerWorker));
  const int64_t rowBytes = positionBytes(encoding, dim, k);
  auto *kernel = kernels->compress[size_t(encoding)];
  auto *kernelQ8 = kernels->compressQ8[size_t(encoding)];
  parallelFor(ceilDiv(rows, chunk), [&](int64_t piece) {
    int64_t begin = piece * chunk;
    int64_t count = std::min(chunk, rows - begin);
    auto input = describe<float, 2>(x + begin * dim, {count, dim});
    auto matrix = describe<float, 2>(rotation, {dim, dim});
    auto kept = describe<uint8_t, 2>(advance(values, begin * k * elementSize),
                                     {count, k});
    auto keptPositions =
        describe<uint8_t, 2>(positions + begin * rowBytes, {count, rowBytes});
    if (!quantised)
      return kernel(&input, &matrix, k, &kept, &keptPositions);
    auto rowScales = describe<float, 1>(scales + begin, {count});
    kernelQ8(&input, &matrix, k, &kept, &keptPositions, &rowScales);
  });
  return Error::success();
}

/// Checks every argument of an attention call before anything runs.
static Error validateAttention(ArrayRef<AttentionWork> work, float scale,
                               bool rotatedOutput, int64_t dim,
                               bool quantised) {
  if (work.empty())
    return llvm::createStringError("attention: work is empty");
  if (!std::isfinite(scale))
    return llvm::createStringError("attention: scale is not finite");
  if (work.size() > static_cast<size_t>(INT32_MAX))
    return llvm::createStringError("attention: too many work items");
  for (size_t w = 0; w < work.size(); ++w) {
    const AttentionWork &item = work[w];
    auto fail = [&](const llvm::Twine &what) {
      return llvm::createStringError("attention: work[" + llvm::Twine(w) +
                                     "]." + what);
    };
    if (!item.query)
      return fail("query is null");
    if (!item.keyRotation)
      return fail("keyRotation is null");
    if (!item.valueRotation && !rotatedOutput)
      return fail("valueRotation is null (needed unless rotatedOutput)");
    if (!item.out)
      return fail("out is null");
    int64_t tokens = 0;
    for (size_t s = 0; s < item.sparse.size(); ++s) {
      const SparseBlock &block = item.sparse[s];
      std::string where = "sparse[" + std::to_string(s) + "].";
      if (block.keyK < 1 || block.keyK > dim)
        return fail(where + "keyK = " + llvm::Twine(block.keyK) +
                    " is outside [1, " + llvm::Twine(dim) + "]");
      if (block.valueK < 1 || block.valueK > dim)
        return fail(where + "valueK = " + llvm::Twine(block.valueK) +
                    " is outside [1, " + llvm::Twine(dim) + "]");
      if (block.tokens < 0 || block.tokens > kMaxTokens)
        return fail(where + "tokens = " + llvm::Twine(block.tokens) +
                    " is outside [0, 2^40]");
      if (block.valueEncoding != SparseEncoding::Indices &&
          block.valueEncoding != SparseEncoding::Mask)
        return fail(where + "valueEncoding is unknown");
      if (block.keyEncoding != SparseEncoding::Indices &&
          block.keyEncoding != SparseEncoding::Mask)
        return fail(where + "keyEncoding is unknown");
      if (block.tokens == 0)
        continue;
      if (!block.keyValues)
        return fail(where + "keyValues is null");
      if (!block.keyIndices)
        return fail(where + "keyIndices is null");
      if (!block.valueValues)
        return fail(where + "valueValues is null");
      if (!block.valueIndices)
        return fail(where + "valueIndices is null");
      if (quantised && !block.keyScales)
        return fail(where + "keyScales is null (int8 winnowed values)");
      if (quantised && !block.valueScales)
        return fail(where + "valueScales is null (int8 winnowed values)");
      if (!quantised && (block.keyScales || block.valueScales))
        return fail(where + (block.keyScales ? "keyScales" : "valueScales") +
                    " given, but winnowed values are not int8");
      tokens += block.tokens;
    }
    if (item.buffer.tokens < 0 || item.buffer.tokens > kMaxTokens)
      return fail("buffer.tokens = " + llvm::Twine(item.buffer.tokens) +
                  " is outside [0, 2^40]");
    if (item.buffer.tokens > 0 && !item.buffer.keys)
      return fail("buffer.keys is null");
    if (item.buffer.tokens > 0 && !item.buffer.values)
      return fail("buffer.values is null");
    if (tokens + item.buffer.tokens == 0)
      return fail("holds no tokens");
  }
  return Error::success();
}

Error KernelSet::attention(ArrayRef<AttentionWork> work, float scale,
                           bool rotatedOutput) const {
  const int64_t dim = keyValue.headDim;
  const int64_t group = keyValue.groupSize;
  const bool quantised = keyValue.winnowed == WinnowedStorage::Int8;
  if (Error error =
          validateAttention(work, scale, rotatedOutput, dim, quantised))
    return error;
  const int64_t elementSize = elementBytes(keyValue.storage);
  const int64_t winnowedSize =
      winnowedElementBytes(keyValue.storage, keyValue.winnowed);

  // Attention reads memory at a few bytes per multiply, so cut every block
  // into chunks of about equal bytes, enough of them to keep every worker
  // busy even for a single long sequence.
  const int64_t denseTokenBytes = 2 * dim * elementSize;
  auto sparseTokenBytes = [&](const SparseBlock &block) {
    return (block.keyK + block.valueK) * winnowedSize +
           2 * rowScaleBytes(keyValue.winnowed) +
           positionBytes(block.keyEncoding, dim, block.keyK) +
           positionBytes(block.valueEncoding, dim, block.valueK);
  };
  int64_t totalBytes = 0;
  for (const AttentionWork &item : work) {
    for (const SparseBlock &block : item.sparse)
      totalBytes += block.tokens * sparseTokenBytes(block);
    totalBytes += item.buffer.tokens * denseTokenBytes;
  }
  const int64_t chunkBytes = std::max(
      kMinChunkBytes, ceilDiv(totalBytes, workerCount() * kPiecesPerWorker));

  // Named through a local reference: the tasks below run on other threads,
  // where the name of a thread_local would mean their own instance.
  thread_local AttentionScratch callerScratch;
  AttentionScratch &scratch = callerScratch;
  scratch.tasks.clear();
  scratch.firstSlot.assign(1, 0);
  int32_t slot = 0;
  auto addChunks = [&](int32_t w, const SparseBlock *block, int64_t tokens,
                       int64_t tokenBytes) {
    int64_t chunk = std::max<int64_t>(1, chunkBytes / tokenBytes);
    for (int64_t begin = 0; begin < tokens; begin += chunk)
      scratch.tasks.push_back(
          {w, slot++, block, begin, std::min(chunk, tokens - begin)});
  };
  for (size_t w = 0; w < work.size(); ++w) {
    auto workIndex = static_cast<int32_t>(w);
    for (const SparseBlock &block : work[w].sparse)
      addChunks(workIndex, &block, block.tokens, sparseTokenBytes(block));
    addChunks(workIndex, nullptr, work[w].buffer.tokens, denseTokenBytes);
    scratch.firstSlot.push_back(slot);
  }
  scratch.rotatedQueries.resize(work.size() * group * dim);
  scratch.maxes.resize(slot * group);
  scratch.sums.resize(slot * group);
  scratch.accumulators.resize(slot * group * dim);
  scratch.reservePending(work.size());
  for (size_t w = 0; w < work.size(); ++w)
    scratch.pending[w].store(
        static_cast<int32_t>(scratch.firstSlot[w + 1] - scratch.firstSlot[w]),
        std::memory_order_relaxed);

  const CompiledKernels &kernels = *this->kernels;
  float *rotatedQueries = scratch.rotatedQueries.data();
  float *maxes = scratch.maxes.data();
  float *sums = scratch.sums.data();
  float *accumulators = scratch.accumulators.data();

  auto rotateQuery = [&](int64_t w) {
    auto query = describe<float, 2>(work[w].query, {group, dim});
    auto rotation = describe<float, 2>(work[w].keyRotation, {dim, dim});
    auto rotated =
        describe<float, 2>(rotatedQueries + w * group * dim, {group, dim});
    kernels.rotate(&query, &rotation, &rotated);
  };
  // A decode step's query rotations take microseconds: waking the pool for
  // them would cost more than it saves.
  if (int64_t(work.size()) * group * dim * dim <= kInlineMultiplies) {
    for (size_t w = 0; w < work.size(); ++w)
      rotateQuery(w);
  } else {
    parallelFor(work.size(), rotateQuery);
  }

  auto mergeWork = [&](int32_t w) {
    int64_t first = scratch.firstSlot[w];
    int64_t blocks = scratch.firstSlot[w + 1] - first;
    auto blockMaxes =
        describe<float, 2>(maxes + first * group, {blocks, group});
    auto blockSums = describe<float, 2>(sums + first * group, {blocks, group});
    auto blockAccumulators = describe<float, 3>(
        accumulators + first * group * dim, {blocks, group, dim});
    auto out = describe<float, 2>(work[w].out, {group, dim});
    if (rotatedOutput) {
      kernels.mergeRotated(&blockMaxes, &blockSums, &blockAccumulators, &out);
      return;
    }
    auto rotation = describe<float, 2>(work[w].valueRotation, {dim, dim});
    kernels.merge(&blockMaxes, &blockSums, &blockAccumulators, &rotation, &out);
  };

  const PartialTask *tasks = scratch.tasks.data();
  std::atomic<int32_t> *pending = scratch.pending.get();
  parallelFor(scratch.tasks.size(), [&](int64_t t) {
    const PartialTask &task = tasks[t];
    auto query = describe<float, 2>(rotatedQueries + task.work * group * dim,
                                    {group, dim});
    auto max = describe<float, 1>(maxes + task.slot * group, {group});
    auto sum = describe<float, 1>(sums + task.slot * group, {group});
    auto accumulator = describe<float, 2>(
        accumulators + int64_t(task.slot) * group * dim, {group, dim});
    if (const SparseBlock *block = task.block) {
      int64_t keyK = block->keyK, valueK = block->valueK;
      auto keyValues = describe<uint8_t, 2>(
          advance(block->keyValues, task.begin * keyK * winnowedSize),
          {task.tokens, keyK});
      int64_t keyRowBytes = positionBytes(block->keyEncoding, dim, keyK);
      auto keyPositions =
          describe<uint8_t, 2>(block->keyIndices + task.begin * keyRowBytes,
                               {task.tokens, keyRowBytes});
      auto valueValues = describe<uint8_t, 2>(
          advance(block->valueValues, task.begin * valueK * winnowedSize),
          {task.tokens, valueK});
      int64_t valueRowBytes = positionBytes(block->valueEncoding, dim, valueK);
      auto valuePositions =
          describe<uint8_t, 2>(block->valueIndices + task.begin * valueRowBytes,
                               {task.tokens, valueRowBytes});
      size_t keyEncoding = size_t(block->keyEncoding);
      size_t valueEncoding = size_t(block->valueEncoding);
      if (quantised) {
        auto keyScales =
            describe<float, 1>(block->keyScales + task.begin, {task.tokens});
        auto valueScales =
            describe<float, 1>(block->valueScales + task.begin, {task.tokens});
        kernels.partialSparseQ8[keyEncoding][valueEncoding](
            &query, scale, &keyValues, &keyPositions, &keyScales, &valueValues,
            &valuePositions, &valueScales, &max, &sum, &accumulator);
      } else {
        kernels.partialSparse[keyEncoding][valueEncoding](
            &query, scale, &keyValues, &keyPositions, &valueValues,
            &valuePositions, &max, &sum, &accumulator);
      }
    } else {
      const DenseBlock &buffer = work[task.work].buffer;
      int64_t offset = task.begin * dim * elementSize;
      auto keys = describe<uint8_t, 2>(advance(buffer.keys, offset),
                                       {task.tokens, dim});
      auto values = describe<uint8_t, 2>(advance(buffer.values, offset),
                                         {task.tokens, dim});
      kernels.partialDense(&query, scale, &keys, &values, &max, &sum,
                           &accumulator);
    }
    // The last partial of a work item merges it; acq_rel makes the other
    // partials' results visible here.
    if (pending[task.work].fetch_sub(1, std::memory_order_acq_rel) == 1)
      mergeWork(task.work);
  });
  return Error::success();
}

} // namespace swan
