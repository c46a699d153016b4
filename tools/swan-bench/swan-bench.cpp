//===- swan-bench.cpp - decode attention against the memory roofline ------===//
//
// Times the JIT-compiled kernels with Google Benchmark and relates every
// decode-attention row to the machine's read bandwidth, measured by the tool
// itself in the same run (a streaming read on all cores). Prints figures and
// asserts nothing: a benchmark is not a test.
//
//   swan-bench [--quick | --smoke] [Google Benchmark flags, e.g.
//              --benchmark_filter=swan --benchmark_out=run.json
//              --benchmark_out_format=json]
//
// --quick: the headline rows in about a minute; --smoke: tiny sizes, for the
// test suite (checks that every row runs, measures nothing meaningful).
//
// Data are random (uniform winnowed indices, Gaussian values): decode
// attention's cost depends on the bytes it reads, not on the values.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CostModel.h"
#include "swan/Runtime/CPU/Kernels.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace swan;

namespace {

/// The dense buffer's capacity b (docs/DESIGN.md §1 default).
constexpr int64_t kBuffer = 128;

/// The read bandwidth of this machine in bytes per second, measured in
/// main() before any benchmark runs.
double measuredBandwidth = 0.0;

//===----------------------------------------------------------------------===//
// Streaming read on all cores
//===----------------------------------------------------------------------===//

/// Sums `words` 64-bit words as `Streams` interleaved sequential streams
/// with independent accumulators, so that the loop is bound by loads, not by
/// the add chain. Kernels read several streams at once (keys, values,
/// indices), and hardware prefetchers serve several streams per core better
/// than one, so the roofline is the best over a few stream counts.
template <int Streams> uint64_t sumStreams(const uint64_t *data, size_t words) {
  const size_t part = words / Streams;
  uint64_t sums[Streams][8] = {};
  for (size_t i = 0; i + 8 <= part; i += 8)
    for (int s = 0; s < Streams; ++s)
      for (int j = 0; j < 8; ++j)
        sums[s][j] += data[s * part + i + j];
  uint64_t total = 0;
  for (int s = 0; s < Streams; ++s)
    for (int j = 0; j < 8; ++j)
      total += sums[s][j];
  return total;
}

class StreamBuffer {
public:
  explicit StreamBuffer(size_t bytes) : words(bytes / sizeof(uint64_t)) {
    data.reset(new uint64_t[words]);
    // Touch every page so that the timed reads hit memory, not page faults.
    for (size_t i = 0; i < words; ++i)
      data[i] = i;
  }

  /// Seconds for one read of the whole buffer by `threads` threads, each
  /// reading its slice as `streams` (1, 2 or 4) interleaved streams.
  double readOnce(unsigned threads, int streams) const {
    std::vector<std::thread> pool;
    std::vector<uint64_t> sums(threads);
    size_t slice = words / threads;
    auto start = std::chrono::steady_clock::now();
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        const uint64_t *begin = data.get() + t * slice;
        sums[t] = streams == 4   ? sumStreams<4>(begin, slice)
                  : streams == 2 ? sumStreams<2>(begin, slice)
                                 : sumStreams<1>(begin, slice);
      });
    for (std::thread &thread : pool)
      thread.join();
    auto stop = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(sums.data());
    return std::chrono::duration<double>(stop - start).count();
  }

  /// Bytes read by readOnce (whole 8-word groups of every stream).
  size_t bytes() const { return words * sizeof(uint64_t); }

private:
  size_t words;
  std::unique_ptr<uint64_t[]> data;
};

unsigned coreCount() {
  return std::max(1u, std::thread::hardware_concurrency());
}

/// Best over repeats and stream counts of a full read on all cores: the
/// bandwidth the hardware can deliver (the honest denominator).
double measureReadBandwidth(const StreamBuffer &buffer, int repeats) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r)
    for (int streams : {1, 2, 4})
      best = std::min(best, buffer.readOnce(coreCount(), streams));
  return buffer.bytes() / best;
}

//===----------------------------------------------------------------------===//
// Decode attention data
//===----------------------------------------------------------------------===//

struct Layer {
  int32_t heads;
  int32_t group;
  int32_t dim;
};

std::string layerName(const Layer &layer) {
  return "H" + std::to_string(layer.heads) + "_G" +
         std::to_string(layer.group) + "_D" + std::to_string(layer.dim);
}

uint16_t halfBits(float value) {
  _Float16 half = static_cast<_Float16>(value);
  uint16_t bits;
  std::memcpy(&bits, &half, sizeof(bits));
  return bits;
}

/// How a row of the sweep stores its winnowed keys and values: positions
/// in `keys` and `values`, values in f16 or (SWAN-Q8) int8 with an f32
/// scale per row.
struct Encodings {
  SparseEncoding keys, values;
  WinnowedStorage winnowed = WinnowedStorage::AsStorage;
};

/// The kernels of a layer, its buffer in f16.
KernelKey kernelKey(const Layer &layer,
                    WinnowedStorage winnowed = WinnowedStorage::AsStorage) {
  return {layer.dim, layer.group, StorageType::F16, winnowed};
}

/// One decode step's inputs for a batch of sequences of `length` tokens:
/// winnowed with k (the last b tokens dense in the buffer; positions as
/// `encodings` says), or, for the dense baseline, all `length` tokens dense.
class DecodeData {
public:
  DecodeData(const Layer &layer, int64_t length, int32_t k, int batch,
             bool dense, Encodings encodings)
      : layer(layer) {
    std::mt19937_64 rng(length * 131 + k * 7 + batch);
    std::normal_distribution<float> normal;
    const int64_t dim = layer.dim;
    const int64_t items = int64_t(batch) * layer.heads;
    sparseTokens = dense ? 0 : std::max<int64_t>(0, length - kBuffer);
    bufferTokens = length - sparseTokens;

    auto fillHalf = [&](std::vector<uint16_t> &values, size_t count) {
      values.resize(count);
      for (uint16_t &value : values)
        value = halfBits(normal(rng));
    };
    const bool q8 = encodings.winnowed == WinnowedStorage::Int8;
    auto fillWinnowed = [&](std::vector<uint16_t> &values,
                            std::vector<float> &scales) {
      size_t count = items * sparseTokens * k;
      if (!q8)
        return fillHalf(values, count);
      // int8 values packed two to a uint16_t, one scale per row.
      values.resize((count + 1) / 2);
      auto *bytes = reinterpret_cast<int8_t *>(values.data());
      for (size_t i = 0; i < count; ++i)
        bytes[i] = int8_t(int(rng() % 255) - 127);
      scales.resize(items * sparseTokens);
      for (float &scale : scales)
        scale = std::fabs(normal(rng)) / 127;
    };
    fillWinnowed(keyValues, keyScales);
    fillWinnowed(valueValues, valueScales);
    fillHalf(bufferKeys, items * bufferTokens * dim);
    fillHalf(bufferValues, items * bufferTokens * dim);
    keyIndices.resize(items * sparseTokens * k);
    valueIndices.resize(items * sparseTokens * k);
    std::vector<uint8_t> all(dim);
    std::iota(all.begin(), all.end(), 0);
    for (std::vector<uint8_t> *indices : {&keyIndices, &valueIndices})
      for (int64_t row = 0; row < items * sparseTokens; ++row) {
        // A uniform k-subset, ascending.
        for (int32_t j = 0; j < k; ++j)
          std::swap(all[j], all[j + rng() % (dim - j)]);
        std::sort(all.begin(), all.begin() + k);
        std::copy(all.begin(), all.begin() + k, indices->data() + row * k);
      }
    const int64_t keyRowBytes = positionBytes(encodings.keys, dim, k);
    const int64_t valueRowBytes = positionBytes(encodings.values, dim, k);
    auto toMasks = [&](std::vector<uint8_t> &indices) {
      const int64_t maskBytes = positionBytes(SparseEncoding::Mask, dim, k);
      std::vector<uint8_t> masks(items * sparseTokens * maskBytes);
      for (int64_t row = 0; row < items * sparseTokens; ++row)
        indicesMask(indices.data() + row * k, k, dim,
                    masks.data() + row * maskBytes);
      indices = std::move(masks);
    };
    if (encodings.keys == SparseEncoding::Mask)
      toMasks(keyIndices);
    if (encodings.values == SparseEncoding::Mask)
      toMasks(valueIndices);

    queries.resize(items * layer.group * dim);
    for (float &q : queries)
      q = normal(rng);
    rotations.resize(2 * layer.heads * dim * dim);
    for (float &r : rotations)
      r = normal(rng) / std::sqrt(float(dim));
    out.resize(items * layer.group * dim);

    blocks.resize(items);
    const int64_t valueBytes = q8 ? 1 : 2;
    for (int64_t item = 0; item < items; ++item) {
      int64_t head = item % layer.heads;
      int64_t sparse = item * sparseTokens * k * valueBytes;
      blocks[item] = {
          reinterpret_cast<const uint8_t *>(keyValues.data()) + sparse,
          keyIndices.data() + item * sparseTokens * keyRowBytes,
          k,
          reinterpret_cast<const uint8_t *>(valueValues.data()) + sparse,
          valueIndices.data() + item * sparseTokens * valueRowBytes,
          k,
          sparseTokens,
          encodings.values,
          encodings.keys,
          q8 ? keyScales.data() + item * sparseTokens : nullptr,
          q8 ? valueScales.data() + item * sparseTokens : nullptr};
      int64_t buffered = item * bufferTokens * dim;
      AttentionWork w;
      w.query = queries.data() + item * layer.group * dim;
      w.keyRotation = rotations.data() + (2 * head) * dim * dim;
      w.valueRotation = rotations.data() + (2 * head + 1) * dim * dim;
      w.sparse = sparseTokens > 0 ? llvm::ArrayRef<SparseBlock>(blocks[item])
                                  : llvm::ArrayRef<SparseBlock>();
      w.buffer = {bufferKeys.data() + buffered, bufferValues.data() + buffered,
                  bufferTokens};
      w.out = out.data() + item * layer.group * dim;
      work.push_back(w);
    }

    // What one step must read: every cached byte (f16 or int8 values and
    // f32 scales, uint8 indices or masks, dense rows), each head's R_K and
    // R_V (f32), the queries.
    sparseTokenBytes = 2 * k * valueBytes + 2 * rowScaleBytes(encodings.winnowed) +
                       keyRowBytes + valueRowBytes;
    bytesRead =
        items * (sparseTokens * sparseTokenBytes + bufferTokens * 2 * dim * 2) +
        int64_t(rotations.size()) * 4 + int64_t(queries.size()) * 4;
  }

  Layer layer;
  int64_t sparseTokens, bufferTokens, sparseTokenBytes, bytesRead;
  std::vector<uint16_t> keyValues, valueValues, bufferKeys, bufferValues;
  std::vector<uint8_t> keyIndices, valueIndices;
  std::vector<float> keyScales, valueScales; // SWAN-Q8 only
  std::vector<float> queries, rotations, out;
  std::vector<SparseBlock> blocks;
  std::vector<AttentionWork> work;
};

/// Google Benchmark calls a benchmark function once per repetition; keep the
/// last data set so that it is built once per row.
std::shared_ptr<DecodeData> dataFor(const std::string &name, const Layer &layer,
                                    int64_t length, int32_t k, int batch,
                                    bool dense, Encodings encodings) {
  static std::string cachedName;
  static std::shared_ptr<DecodeData> cached;
  if (cachedName != name) {
    cached.reset();
    cached = std::make_shared<DecodeData>(layer, length, k, batch, dense,
                                          encodings);
    cachedName = name;
  }
  return cached;
}

/// Seconds per step of the dense row of each shape ("H8_G4_D128/L4096/B1"),
/// set when that row runs (it is registered, so run, before the SWAN rows of
/// its shape) and read by them for their speed-up; likewise of each f16
/// SWAN row, read by its SWAN-Q8 twin.
std::map<std::string, double> denseSeconds, f16Seconds;

/// Rows time every iteration themselves (manual time) so that the figures
/// below can be computed from the same wall-clock seconds the table shows.
class IterationTimer {
public:
  void start() { begin = std::chrono::steady_clock::now(); }
  void stop(benchmark::State &state) {
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - begin)
            .count();
    total += seconds;
    fastest = iterations ? std::min(fastest, seconds) : seconds;
    ++iterations;
    state.SetIterationTime(seconds);
  }
  double secondsPerIteration() const {
    return iterations ? total / iterations : 0.0;
  }
  double fastestIteration() const { return iterations ? fastest : 0.0; }

private:
  std::chrono::steady_clock::time_point begin;
  double total = 0.0, fastest = 0.0;
  int64_t iterations = 0;
};

void reportBytes(benchmark::State &state, const IterationTimer &timer,
                 int64_t bytes, int64_t tokens) {
  double seconds = timer.secondsPerIteration();
  if (seconds <= 0.0)
    return;
  double bytesPerSecond = double(bytes) / seconds;
  state.counters["GB/s"] = bytesPerSecond / 1e9;
  state.counters["%bw"] = 100.0 * bytesPerSecond / measuredBandwidth;
  // The bandwidth is a best over repeats; so is this, for a like-for-like
  // figure on a machine whose neighbours slow some steps down.
  state.counters["best_ms"] = timer.fastestIteration() * 1e3;
  state.counters["%bw_best"] =
      100.0 * double(bytes) / timer.fastestIteration() / measuredBandwidth;
  state.counters["Mtok/s"] = double(tokens) / seconds / 1e6;
  state.counters["MB"] = double(bytes) / 1e6;
  state.counters["compiles"] = double(KernelSet::compileCount());
}

/// Seconds per step of every call of each decode row, in call order. Google
/// Benchmark makes its trial calls (to pick an iteration count) before the
/// first repetition only, so a row's last `repetitions` calls are the
/// repetitions its median in the table is taken over.
std::map<std::string, std::vector<double>> rowCalls;

/// Median of the last `repetitions` calls of a row; 0 when it did not run.
double medianSeconds(const std::string &row, int repetitions) {
  auto found = rowCalls.find(row);
  if (found == rowCalls.end() || found->second.empty())
    return 0.0;
  const std::vector<double> &calls = found->second;
  std::vector<double> last(
      calls.end() - std::min<size_t>(calls.size(), repetitions), calls.end());
  std::sort(last.begin(), last.end());
  size_t n = last.size();
  return n % 2 ? last[n / 2] : (last[n / 2 - 1] + last[n / 2]) / 2;
}

/// `f16Twin`: for a SWAN-Q8 row, the f16 row of the same shape, k and
/// encodings, whose time gives x_f16.
void decodeAttention(benchmark::State &state, const std::string &name,
                     const std::string &shape, Layer layer, int64_t length,
                     int32_t k, int batch, bool dense, Encodings encodings,
                     const std::string &f16Twin) {
  auto kernels = KernelSet::get(kernelKey(layer, encodings.winnowed));
  if (!kernels) {
    state.SkipWithError(llvm::toString(kernels.takeError()).c_str());
    return;
  }
  std::shared_ptr<DecodeData> data =
      dataFor(name, layer, length, k, batch, dense, encodings);
  const float scale = 1.0f / std::sqrt(float(layer.dim));
  IterationTimer timer;
  for (auto _ : state) {
    timer.start();
    llvm::Error error = (*kernels)->attention(data->work, scale, false);
    timer.stop(state);
    if (error) {
      state.SkipWithError(llvm::toString(std::move(error)).c_str());
      return;
    }
  }
  reportBytes(state, timer, data->bytesRead,
              int64_t(batch) * layer.heads * length);
  double seconds = timer.secondsPerIteration();
  rowCalls[name].push_back(seconds);
  if (dense) {
    denseSeconds[shape] = seconds;
    return;
  }
  auto found = denseSeconds.find(shape);
  if (found != denseSeconds.end() && seconds > 0.0)
    state.counters["x_dense"] = found->second / seconds;
  if (f16Twin.empty())
    f16Seconds[name] = seconds;
  else if (auto twin = f16Seconds.find(f16Twin);
           twin != f16Seconds.end() && seconds > 0.0)
    state.counters["x_f16"] = twin->second / seconds;
  // The speed-up that the bytes alone would give (dense bytes / SWAN bytes).
  int64_t items = int64_t(batch) * layer.heads;
  double denseBytes = double(items) * length * 2 * layer.dim * 2 +
                      double(data->bytesRead) -
                      double(items) *
                          (data->sparseTokens * data->sparseTokenBytes +
                           data->bufferTokens * 2 * layer.dim * 2);
  state.counters["x_bytes"] = denseBytes / double(data->bytesRead);
  if (length < computeBreakEvenTokens(layer.dim, k, k, kBuffer))
    state.counters["below_break_even"] = 1;
}

void compress(benchmark::State &state, Layer layer, int64_t rows, int32_t k) {
  auto kernels = KernelSet::get(kernelKey(layer));
  if (!kernels) {
    state.SkipWithError(llvm::toString(kernels.takeError()).c_str());
    return;
  }
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> x(rows * layer.dim), rotation(layer.dim * layer.dim);
  for (float &v : x)
    v = normal(rng);
  for (float &v : rotation)
    v = normal(rng);
  std::vector<uint16_t> values(rows * k);
  std::vector<uint8_t> indices(rows * k);
  IterationTimer timer;
  for (auto _ : state) {
    timer.start();
    llvm::Error error = (*kernels)->compress(x.data(), rows, rotation.data(), k,
                                             values.data(), indices.data());
    timer.stop(state);
    if (error) {
      state.SkipWithError(llvm::toString(std::move(error)).c_str());
      return;
    }
  }
  if (timer.secondsPerIteration() > 0.0)
    state.counters["Mtok/s"] = double(rows) / timer.secondsPerIteration() / 1e6;
}

void streamRead(benchmark::State &state, const StreamBuffer *buffer,
                int streams) {
  double total = 0.0;
  int64_t iterations = 0;
  for (auto _ : state) {
    double seconds = buffer->readOnce(coreCount(), streams);
    state.SetIterationTime(seconds);
    total += seconds;
    ++iterations;
  }
  if (total > 0.0)
    state.counters["GB/s"] = double(buffer->bytes()) * iterations / total / 1e9;
}

/// One SWAN row of the sweep and the dense row of its shape.
struct SweepRow {
  std::string group; ///< layer, batch and k: "H8_G4_D128 B1 k=32"
  int64_t length;
  int64_t modelBreakEven;
  std::string dense, swan;
};

/// Per (layer, batch, k): the shortest L of the sweep at which SWAN's median
/// beats the dense median of the same shape, next to the cost model's
/// compute break-even. Decode attention is bound by memory, so the measured
/// crossover may sit well below the arithmetic one.
void reportCrossovers(const std::vector<SweepRow> &rows, int repetitions) {
  std::vector<std::string> groups;
  std::map<std::string, std::vector<const SweepRow *>> byGroup;
  for (const SweepRow &row : rows) {
    if (!byGroup.count(row.group))
      groups.push_back(row.group);
    byGroup[row.group].push_back(&row);
  }
  llvm::outs() << "measured crossover (shortest L of the sweep where SWAN's "
                  "median beats dense's) against the compute break-even "
                  "(docs/DESIGN.md §6):\n";
  for (const std::string &group : groups) {
    bool ran = false, losesAgain = false;
    int64_t crossover = 0, model = byGroup[group].front()->modelBreakEven;
    for (const SweepRow *row : byGroup[group]) {
      double dense = medianSeconds(row->dense, repetitions);
      double swan = medianSeconds(row->swan, repetitions);
      if (dense <= 0.0 || swan <= 0.0)
        continue;
      ran = true;
      if (!crossover && swan < dense)
        crossover = row->length;
      else if (crossover && swan >= dense)
        losesAgain = true;
    }
    if (!ran)
      continue;
    // A crossover that does not hold at every longer L is within the noise.
    llvm::outs() << "  " << group << ": measured "
                 << (crossover ? "L=" + std::to_string(crossover)
                               : std::string("none in the sweep"))
                 << (losesAgain ? " (but not at every longer L)" : "")
                 << ", model "
                 << (model == std::numeric_limits<int64_t>::max()
                         ? std::string("never")
                         : "L>=" + std::to_string(model))
                 << "\n";
  }
}

/// Compiles each specialisation once, timing it: the first request per
/// process compiles, every later one hits the cache.
void reportCompileTimes(const std::vector<Layer> &layers) {
  for (const Layer &layer : layers) {
    auto start = std::chrono::steady_clock::now();
    auto kernels = KernelSet::get(kernelKey(layer));
    double ms = std::chrono::duration<double, std::milli>(
                    std::chrono::steady_clock::now() - start)
                    .count();
    if (!kernels) {
      llvm::errs() << "swan-bench: " << llvm::toString(kernels.takeError())
                   << "\n";
      continue;
    }
    llvm::outs() << "JIT compile G=" << layer.group << " D=" << layer.dim
                 << " f16: " << llvm::format("%.1f", ms) << " ms\n";
  }
  llvm::outs() << "compilations so far: " << KernelSet::compileCount() << "\n";
}

} // namespace

int main(int argc, char **argv) {
  bool quick = false, smoke = false;
  std::vector<char *> arguments;
  for (int i = 0; i < argc; ++i) {
    if (std::string(argv[i]) == "--quick")
      quick = true;
    else if (std::string(argv[i]) == "--smoke")
      smoke = true;
    else
      arguments.push_back(argv[i]);
    // Google Benchmark prints its own flags after these and exits.
    if (std::string(argv[i]) == "--help")
      llvm::outs()
          << "swan-bench: SWAN and dense decode attention against the "
             "measured memory roofline\n\n"
             "  --quick   the headline rows, about a minute\n"
             "  --smoke   tiny sizes (the CTest smoke run)\n"
             "  (none)    the whole sweep of k, L, shapes and batch sizes\n\n"
             "Google Benchmark's flags:\n";
  }
  int count = static_cast<int>(arguments.size());
  benchmark::Initialize(&count, arguments.data());

  const Layer llama{8, 4, 128}, small{8, 1, 64};
  reportCompileTimes(smoke ? std::vector<Layer>{llama}
                           : std::vector<Layer>{llama, small});

  const StreamBuffer stream(smoke ? size_t(64) << 20 : size_t(1) << 30);
  measuredBandwidth = measureReadBandwidth(stream, quick || smoke ? 3 : 6);
  llvm::outs() << "measured read bandwidth (" << coreCount() << " threads, "
               << (stream.bytes() >> 20)
               << " MiB, best of 1/2/4 streams per thread): "
               << llvm::format("%.2f", measuredBandwidth / 1e9) << " GB/s\n";

  for (int streams : {1, 2, 4})
    benchmark::RegisterBenchmark(
        ("stream_read/streams" + std::to_string(streams)).c_str(), streamRead,
        &stream, streams)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);

  std::vector<Layer> layers = {llama};
  std::vector<int64_t> lengths = {4096, 32768};
  std::vector<int32_t> ks = {32};
  std::vector<int> batches = {1};
  int repetitions = 3;
  if (smoke) {
    lengths = {200};
    batches = {1, 2};
    repetitions = 1;
  } else if (!quick) {
    layers.push_back(small);
    // 256 sits below the compute break-even of every k at D = 128, so the
    // measured crossover has a row on either side of the model's figure.
    lengths = {256, 1024, 4096, 16384, 32768, 65536};
    ks = {16, 32, 48, 64, 0 /* = D */};
    batches = {1, 8};
    repetitions = 5;
  }

  for (const Layer &layer : layers) {
    llvm::outs() << "compute break-even (docs/DESIGN.md §6) at D=" << layer.dim
                 << ":";
    for (int32_t k : {16, 32, 48, 64})
      if (k < layer.dim)
        llvm::outs() << " k=" << k << " L>="
                     << computeBreakEvenTokens(layer.dim, k, k, kBuffer);
    llvm::outs() << "; shorter rows are marked below_break_even\n";
  }
  llvm::outs().flush();

  std::vector<SweepRow> sweep;
  for (const Layer &layer : layers)
    for (int batch : batches)
      for (int64_t length : lengths) {
        // Keep batch 8 within a few GB of memory.
        if (batch > 1 && length > 16384)
          continue;
        std::string shape = layerName(layer) + "/L" + std::to_string(length) +
                            "/B" + std::to_string(batch);
        auto add = [&](const std::string &name, int32_t k, bool dense,
                       Encodings encodings, std::string f16Twin = {}) {
          auto *row = benchmark::RegisterBenchmark(
              name.c_str(), decodeAttention, name, shape, layer, length, k,
              batch, dense, encodings, f16Twin);
          row->UseManualTime()->Unit(benchmark::kMillisecond);
          if (smoke)
            row->Iterations(2);
          else
            row->Repetitions(repetitions)->ReportAggregatesOnly(true);
        };
        add("dense/" + shape, layer.dim, /*dense=*/true,
            {SparseEncoding::Indices, SparseEncoding::Indices});
        std::vector<int32_t> kept;
        for (int32_t k : ks) {
          int32_t value = k == 0 ? layer.dim : k;
          if (value <= layer.dim &&
              std::find(kept.begin(), kept.end(), value) == kept.end())
            kept.push_back(value);
        }
        // Keys and values by indices ("k32"), values as masks ("k32+mask"),
        // both as masks ("k32+masks"); SWAN-Q8 after its f16 twin
        // ("k32+q8" after "k32").
        const WinnowedStorage q8 = WinnowedStorage::Int8;
        const std::tuple<const char *, Encodings, const char *> variants[] = {
            {"", {SparseEncoding::Indices, SparseEncoding::Indices}, nullptr},
            {"+mask", {SparseEncoding::Indices, SparseEncoding::Mask}, nullptr},
            {"+masks", {SparseEncoding::Mask, SparseEncoding::Mask}, nullptr},
            {"+q8", {SparseEncoding::Indices, SparseEncoding::Indices, q8}, ""},
            {"+masks+q8", {SparseEncoding::Mask, SparseEncoding::Mask, q8},
             "+masks"}};
        for (int32_t k : kept)
          for (const auto &[suffix, encodings, twin] : variants) {
            std::string label = "k" + std::to_string(k) + suffix;
            std::string swan = "swan/" + shape + "/" + label;
            add(swan, k, /*dense=*/false, encodings,
                twin ? "swan/" + shape + "/k" + std::to_string(k) + twin
                     : std::string());
            sweep.push_back({layerName(layer) + " B" + std::to_string(batch) +
                                 " " + label,
                             length,
                             computeBreakEvenTokens(layer.dim, k, k, kBuffer),
                             "dense/" + shape, swan});
          }
      }
  for (const Layer &layer : layers) {
    auto *row = benchmark::RegisterBenchmark(
        ("compress/" + layerName(layer) + "/k32").c_str(), compress, layer,
        smoke ? int64_t(300) : int64_t(16384), 32);
    row->UseManualTime()->Unit(benchmark::kMillisecond);
    if (smoke)
      row->Iterations(2);
  }

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  // The table went through std::cout; keep the lines below after it.
  std::cout.flush();
  reportCrossovers(sweep, repetitions);
  llvm::outs() << "compilations after the sweep: " << KernelSet::compileCount()
               << " (one per specialisation)\n";
  return 0;
}
