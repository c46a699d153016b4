//===- swan-demo.cpp - SWAN attention end to end --------------------------===//
//
// The main job. By default a real model (stories15M, ModelDemo.cpp) writes
// a story through a swan::Cache per layer while k is lowered at run time.
//
// With --generated or --kv-file, one attention layer instead: calibrates
// rotations, prefills a long prompt into a SWAN cache, decodes while
// lowering k (set_k, then rewinnow), and prints per phase: tokens, bytes
// held against a dense fp16 cache, attention error against uncompressed
// float64 attention, and time per decode step against the project's own
// dense kernel (the same JIT kernels over all tokens dense). Its data is
// generated LLM-like K/V (docs/DESIGN.md §7, labelled as such), or a user's
// safetensors dump.
//
//===----------------------------------------------------------------------===//

#include "ModelDemo.h"

#include "swan/Cache.h"
#include "swan/Runtime/CPU/Kernels.h"
#include "swan/Runtime/Eval/Calibration.h"
#include "swan/Runtime/Eval/Generator.h"
#include "swan/Runtime/Eval/KVDump.h"
#include "swan/Runtime/Eval/Reference.h"
#include "swan/Runtime/Eval/Safetensors.h"
#include "swan/Runtime/Model/ModelFiles.h"
#include "swan/Tools/CacheOptions.h"
#include "swan/Tools/Clock.h"
#include "swan/Tools/ProgressBar.h"
#include "swan/Tools/ToolError.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstring>

namespace cl = llvm::cl;
using namespace swan;
using tools::ProgressBar;
using tools::seconds;
using tools::toolError;

namespace {

cl::OptionCategory modelCategory("The real model (the default)");
cl::opt<std::string> modelPath("model",
                               cl::desc("llama2.c checkpoint (default: the "
                                        "stories15M scripts/setup fetched)"),
                               cl::value_desc("file"), cl::cat(modelCategory));
cl::opt<std::string> tokenizerPath("tokenizer",
                                   cl::desc("llama2.c tokenizer (default: the "
                                            "one beside stories15M)"),
                                   cl::value_desc("file"),
                                   cl::cat(modelCategory));
cl::opt<std::string> promptText("prompt",
                                cl::desc("Text the story starts with "
                                         "(default: none, from BOS)"),
                                cl::cat(modelCategory));
cl::opt<float> temperature("temperature",
                           cl::desc("Sample at this temperature (default: "
                                    "greedy)"),
                           cl::init(0.0f), cl::cat(modelCategory));
cl::opt<int32_t> calibrationStories(
    "calibration-stories",
    cl::desc("Stories the model samples to calibrate on (cached beside it)"),
    cl::init(16), cl::cat(modelCategory));

cl::OptionCategory generatedCategory("One layer of generated K/V instead");
cl::opt<bool> generated("generated",
                        cl::desc("Run one attention layer on generated "
                                 "LLM-like K/V instead of the model"),
                        cl::cat(generatedCategory));

cl::OptionCategory shapeCategory("Layer shape with --generated (default: "
                                 "Llama-3.1-8B)");
cl::opt<int32_t> kvHeads("kv-heads", cl::desc("KV heads H"), cl::init(8),
                         cl::cat(shapeCategory));
cl::opt<int32_t> group("group", cl::desc("Query heads per KV head G"),
                       cl::init(4), cl::cat(shapeCategory));
cl::opt<int32_t> headDim("head-dim",
                         cl::desc("Head dimension D (a multiple of 16, "
                                  "at most 256)"),
                         cl::init(128), cl::cat(shapeCategory));

cl::OptionCategory runCategory("Run");
cl::opt<std::string> dtype("dtype", cl::desc("Cache storage: f16 or f32"),
                           cl::init("f16"), cl::cat(runCategory));
cl::opt<int32_t> sequences("sequences",
                           cl::desc("Sequences decoded together; their "
                                    "prompts shrink by 1/(2S) each "
                                    "(--generated)"),
                           cl::init(2), cl::cat(runCategory));
cl::opt<int32_t> promptTokens("prompt-tokens",
                              cl::desc("Prompt tokens, longest (--generated)"),
                              cl::init(4096), cl::cat(runCategory));
cl::opt<int32_t> decodeSteps("steps",
                             cl::desc("Decode steps, split evenly over the "
                                      "k phases (default: the rest of the "
                                      "model's context; 300 with "
                                      "--generated)"),
                             cl::init(300), cl::cat(runCategory));
cl::list<int32_t>
    kSchedule("k",
              cl::desc("k per phase, comma separated (k_K = k_V): the first "
                       "for the prompt and first decode phase, the middle "
                       "ones applied with set_k, the last with rewinnow "
                       "(default 32,24,16 for the model, 64,48,32 with "
                       "--generated)"),
              cl::CommaSeparated, cl::cat(runCategory));
cl::list<int32_t> kValueSchedule(
    "k-value",
    cl::desc("k_V per phase when it should differ from --k (as many "
             "entries as --k)"),
    cl::CommaSeparated, cl::cat(runCategory));
cl::opt<int32_t> bufferTokens("buffer",
                              cl::desc("Dense buffer tokens b (default: 32 "
                                       "for the model, 128 with --generated)"),
                              cl::init(128), cl::cat(runCategory));
cl::opt<int32_t> pageTokens("page-tokens",
                            cl::desc("Tokens per sparse page (default: 16 "
                                     "for the model, 256 with --generated)"),
                            cl::init(256), cl::cat(runCategory));
cl::opt<ValueEncoding> valueEncoding(
    "value-encoding",
    cl::desc("How winnowed values record their kept components"),
    cl::values(clEnumValN(ValueEncoding::Auto, "auto",
                          "per page, the smaller at its k_V (default)"),
               clEnumValN(ValueEncoding::Indices, "indices",
                          "k uint8 indices"),
               clEnumValN(ValueEncoding::Mask, "mask", "a D-bit mask")),
    cl::init(ValueEncoding::Auto), cl::cat(runCategory));
cl::opt<WinnowedStorage> winnowed(tools::kWinnowedFlag,
                                  cl::desc(tools::kWinnowedHelp),
                                  tools::winnowedStorageValues(),
                                  cl::init(WinnowedStorage::AsStorage),
                                  cl::cat(runCategory));
cl::opt<uint64_t> seed("seed",
                       cl::desc("Seed of the sampling with "
                                "--temperature, or of the generated "
                                "model and sequences"),
                       cl::init(1), cl::cat(runCategory));
cl::opt<int32_t> calibrationTokens(
    "calibration-tokens",
    cl::desc("Tokens of a separate generated sequence used to calibrate"),
    cl::init(2048), cl::cat(runCategory));
cl::opt<int32_t> checkEvery("check-every",
                            cl::desc("Compare with float64 attention every N "
                                     "decode steps"),
                            cl::init(10), cl::cat(runCategory));
cl::opt<bool> noProgress("no-progress", cl::desc("Never draw progress bars"),
                         cl::cat(runCategory));

cl::OptionCategory fileCategory("Your own K/V instead of generated data");
cl::opt<std::string> kvFile(
    "kv-file",
    cl::desc("safetensors file with layers.<L>.keys and layers.<L>.values "
             "[tokens, kv_heads, head_dim] (keys after RoPE) and optionally "
             "layers.<L>.queries [tokens, kv_heads*G, head_dim]; sets the "
             "shape, runs one sequence, calibrates on its prompt"),
    cl::value_desc("file"), cl::cat(fileCategory));
cl::opt<int32_t> layer("layer", cl::desc("Layer L to read from --kv-file"),
                       cl::init(0), cl::cat(fileCategory));

/// One layer's inputs: K/V [tokens][H][D] (keys after RoPE), decode queries
/// [tokens][H*G][D] (row t attends tokens 0..t).
struct SequenceData {
  int64_t tokens = 0;
  std::vector<float> keys, values, queries;
};

struct Workload {
  int32_t h = 0, g = 0, d = 0;
  std::string label;
  std::vector<SequenceData> sequences;
  std::vector<int64_t> prompts;
  Rotations rotK, rotV;
};

llvm::Expected<Workload> generatedWorkload() {
  Workload w;
  w.h = kvHeads;
  w.g = group;
  w.d = headDim;
  w.label = "generated LLM-like K/V (docs/DESIGN.md §7), not a real model";
  KVGeneratorConfig gen;
  gen.kvHeads = w.h;
  gen.headDim = w.d;
  gen.queryGroup = w.g;
  gen.modelSeed = seed;
  {
    ProgressBar bar("calibrating", 3, !noProgress);
    bar.update(0);
    gen.tokens = calibrationTokens;
    gen.sequenceSeed = seed * 1000003 + 999;
    gen.withQueries = false;
    auto sample = generateKV(gen);
    if (!sample)
      return sample.takeError();
    bar.update(1);
    auto rk = calibrate(sample->keys.data(), sample->tokens, w.h, w.d);
    if (!rk)
      return rk.takeError();
    bar.update(2);
    auto rv = calibrate(sample->values.data(), sample->tokens, w.h, w.d);
    if (!rv)
      return rv.takeError();
    w.rotK = std::move(*rk);
    w.rotV = std::move(*rv);
  }
  ProgressBar bar("generating sequences", sequences, !noProgress);
  for (int32_t s = 0; s < sequences; ++s) {
    int64_t prompt = promptTokens - int64_t(promptTokens) * s / (2 * sequences);
    gen.tokens = prompt + decodeSteps;
    gen.sequenceSeed = seed * 1000003 + s;
    gen.withQueries = true;
    auto data = generateKV(gen);
    if (!data)
      return data.takeError();
    SequenceData seq;
    seq.tokens = data->tokens;
    seq.keys = std::move(data->keys);
    seq.values = std::move(data->values);
    seq.queries = std::move(data->queries);
    w.sequences.push_back(std::move(seq));
    w.prompts.push_back(prompt);
    bar.update(s + 1);
  }
  return w;
}

llvm::Expected<Workload> fileWorkload() {
  namespace st = swan::safetensors;
  auto file = st::File::open(kvFile);
  if (!file)
    return file.takeError();
  kvdump::LayerTensors tensors = kvdump::findLayer(*file, layer);
  if (!tensors.keys || !tensors.values)
    return toolError("--kv-file: " + kvFile + " has no " +
                     kvdump::tensorName(layer, kvdump::Part::Keys) + " and " +
                     kvdump::tensorName(layer, kvdump::Part::Values) +
                     " tensors");
  if (!tensors.keysValuesAgree())
    return toolError("--kv-file: keys and values must both be [tokens, "
                     "kv_heads, head_dim]");
  if (tensors.queries && !tensors.queriesAgree())
    return toolError(
        "--kv-file: queries must be [tokens, kv_heads*G, head_dim]");
  int64_t tokens = tensors.keys->shape[0];
  if (promptTokens + int64_t(decodeSteps) > tokens)
    return toolError(
        llvm::formatv("--kv-file holds {0} tokens; --prompt-tokens + --steps "
                      "= {1}",
                      tokens, promptTokens + decodeSteps));
  llvm::Expected<kvdump::LayerSamples> samples =
      kvdump::readLayer(*file, tensors, promptTokens + int64_t(decodeSteps));
  if (!samples)
    return samples.takeError();
  Workload w;
  w.h = samples->kvHeads;
  w.d = samples->headDim;
  w.g = tensors.queries ? samples->group : group;
  SequenceData seq;
  seq.tokens = samples->tokens;
  seq.keys = std::move(samples->keys);
  seq.values = std::move(samples->values);
  if (tensors.queries) {
    seq.queries = std::move(samples->queries);
    w.label = "K/V and queries from " + kvFile;
  } else {
    // Without queries, each query head asks with its KV head's own key of
    // that position: attention is then peaked where the key matches.
    seq.queries.resize(seq.tokens * w.h * w.g * w.d);
    for (int64_t t = 0; t < seq.tokens; ++t)
      for (int64_t j = 0; j < w.h * w.g; ++j)
        std::memcpy(&seq.queries[(t * w.h * w.g + j) * w.d],
                    &seq.keys[(t * w.h + j / w.g) * w.d], w.d * sizeof(float));
    w.label = "K/V from " + kvFile +
              " (no queries in the file: each query is its position's key)";
  }
  auto rk = calibrate(seq.keys.data(), promptTokens, w.h, w.d);
  if (!rk)
    return rk.takeError();
  auto rv = calibrate(seq.values.data(), promptTokens, w.h, w.d);
  if (!rv)
    return rv.takeError();
  w.rotK = std::move(*rk);
  w.rotV = std::move(*rv);
  w.sequences.push_back(std::move(seq));
  w.prompts.push_back(promptTokens);
  return w;
}

/// The baseline: every token dense and unrotated, the same JIT kernels with
/// identity rotations and no sparse blocks.
class DenseCache {
public:
  DenseCache(const Workload &w, StorageType storage,
             std::shared_ptr<const KernelSet> kernels)
      : w(w), storage(storage), kernels(std::move(kernels)),
        identity(size_t(w.d) * w.d, 0.0f) {
    for (int32_t i = 0; i < w.d; ++i)
      identity[i * w.d + i] = 1.0f;
    size_t element = elementBytes(storage);
    for (const SequenceData &s : w.sequences) {
      keys.emplace_back(size_t(w.h) * s.tokens * w.d * element);
      values.emplace_back(size_t(w.h) * s.tokens * w.d * element);
    }
    lengths.assign(w.sequences.size(), 0);
  }

  void append(size_t seq, int64_t first, int64_t count) {
    const SequenceData &s = w.sequences[seq];
    for (int64_t t = first; t < first + count; ++t)
      for (int32_t h = 0; h < w.h; ++h) {
        size_t row = (size_t(h) * s.tokens + t) * w.d;
        store(&s.keys[(t * w.h + h) * w.d], keys[seq].data(), row);
        store(&s.values[(t * w.h + h) * w.d], values[seq].data(), row);
      }
    lengths[seq] = first + count;
  }

  llvm::Error attention(const std::vector<const float *> &queries,
                        float scale, float *out) const {
    std::vector<AttentionWork> work;
    size_t element = elementBytes(storage);
    for (size_t s = 0; s < queries.size(); ++s)
      for (int32_t h = 0; h < w.h; ++h) {
        AttentionWork item;
        item.query = queries[s] + size_t(h) * w.g * w.d;
        item.keyRotation = item.valueRotation = identity.data();
        size_t row = size_t(h) * w.sequences[s].tokens * w.d * element;
        item.buffer = {keys[s].data() + row, values[s].data() + row,
                       lengths[s]};
        item.out = out + (s * w.h + h) * w.g * w.d;
        work.push_back(item);
      }
    return kernels->attention(work, scale, /*rotatedOutput=*/false);
  }

private:
  void store(const float *src, char *base, size_t row) {
    if (storage == StorageType::F32) {
      std::memcpy(base + row * 4, src, w.d * sizeof(float));
      return;
    }
    auto *dst = reinterpret_cast<_Float16 *>(base) + row;
    for (int32_t i = 0; i < w.d; ++i)
      dst[i] = static_cast<_Float16>(src[i]);
  }

  const Workload &w;
  StorageType storage;
  std::shared_ptr<const KernelSet> kernels;
  std::vector<float> identity;
  std::vector<std::vector<char>> keys, values; // per sequence [H][T][D]
  std::vector<int64_t> lengths;
};

/// Relative L2 error of every query head's output against float64 softmax
/// attention on the original tokens 0..t.
struct ErrorStats {
  double sum = 0, worst = 0;
  int64_t count = 0;
  void add(double e) {
    sum += e;
    worst = std::max(worst, e);
    ++count;
  }
  double mean() const { return count ? sum / count : 0.0; }
};

void measureError(const Workload &w, size_t seq, int64_t t, const float *out,
                  float scale, ErrorStats &stats) {
  const SequenceData &s = w.sequences[seq];
  const int64_t tokens = t + 1, d = w.d, g = w.g;
  std::vector<double> keys(tokens * d), values(tokens * d);
  for (int32_t h = 0; h < w.h; ++h) {
    for (int64_t i = 0; i < tokens; ++i)
      for (int64_t j = 0; j < d; ++j) {
        keys[i * d + j] = s.keys[(i * w.h + h) * d + j];
        values[i * d + j] = s.values[(i * w.h + h) * d + j];
      }
    const float *q = &s.queries[(t * w.h * g + h * g) * d];
    std::vector<double> query(q, q + g * d);
    auto want = reference::attention(query, g, keys, values, tokens, d, scale);
    for (int64_t r = 0; r < g; ++r) {
      double diff = 0, norm = 0;
      for (int64_t j = 0; j < d; ++j) {
        double e = out[(h * g + r) * d + j] - want[r * d + j];
        diff += e * e;
        norm += want[r * d + j] * want[r * d + j];
      }
      stats.add(std::sqrt(diff / std::max(norm, 1e-300)));
    }
  }
}

struct PhaseReport {
  std::string name;
  int32_t k = 0, kValue = 0;
  int64_t tokens = 0, steps = 0;
  size_t bytes = 0, denseBytes = 0;
  ErrorStats swanError, denseError;
  double swanSeconds = 0, appendSeconds = 0, denseSeconds = 0;
  /// The cache's compute break-even at the end of the phase, and how many
  /// sequences held fewer tokens.
  int64_t breakEven = 0, sequencesBelow = 0;
};

/// Fills in the phase's break-even figures from the cache's own stats.
llvm::Error noteBreakEven(const Cache &cache, size_t batch,
                          PhaseReport &report) {
  report.breakEven = cache.breakEvenTokens();
  report.sequencesBelow = 0;
  for (size_t s = 0; s < batch; ++s) {
    auto stats = cache.stats(s);
    if (!stats)
      return stats.takeError();
    report.sequencesBelow += stats->belowBreakEven;
  }
  return llvm::Error::success();
}

void printReport(const std::vector<PhaseReport> &phases) {
  llvm::outs() << llvm::formatv(
      "\n{0,-16} {1,7} {2,8} {3,11} {4,11} {5,7} {6,19} {7,19} {8,10} {9,10} "
      "{10,10}\n",
      "phase", "k_K/k_V", "tokens", "swan bytes", "fp16 dense", "saved",
      "swan err mean/max", "dense err mean/max", "swan ms", "dense ms",
      "append ms");
  for (const PhaseReport &p : phases) {
    auto perStep = [&](double s) {
      return p.steps ? llvm::formatv("{0,10:f3}", 1e3 * s / p.steps).str()
                     : std::string(10, ' ') ;
    };
    llvm::outs() << llvm::formatv(
        "{0,-16} {1,7} {2,8} {3,11} {4,11} {5,6:f1}% {6,9:e1}/{7,9:e1} "
        "{8,9:e1}/{9,9:e1} {10} {11} {12}\n",
        p.name, std::to_string(p.k) + "/" + std::to_string(p.kValue), p.tokens, p.bytes, p.denseBytes,
        100.0 * (1.0 - double(p.bytes) / double(p.denseBytes)),
        p.swanError.mean(), p.swanError.worst, p.denseError.mean(),
        p.denseError.worst, perStep(p.swanSeconds), perStep(p.denseSeconds),
        perStep(p.appendSeconds));
  }
  llvm::outs()
      << "\nbytes: all sequences, swan = buffers + winnowed values + indices "
         "or masks as allocated; fp16 dense = tokens * H * D * 2 (K,V) * 2 B.\n"
         "err: relative L2 error per query head against float64 attention on "
         "the original, uncompressed K/V.\n"
         "ms: per decode step, all sequences in one batch; swan = cache "
         "attention, dense = the same JIT kernels over every token dense, "
         "append = the swan cache taking the step's tokens.\n";
  // One line, only when some sequence is short enough to matter.
  std::string below;
  for (const PhaseReport &p : phases)
    if (p.sequencesBelow)
      below += llvm::formatv("{0}{1}: {2} sequence(s) < {3} tokens at k "
                             "{4}/{5}",
                             below.empty() ? "" : "; ", p.name,
                             p.sequencesBelow, p.breakEven, p.k, p.kValue)
                   .str();
  if (!below.empty())
    llvm::outs() << "below the compute break-even of docs/DESIGN.md §6 (SWAN "
                    "does more arithmetic than dense; the cache still "
                    "winnows): "
                 << below << "\n";
}

llvm::Error runLayerDemo() {
  if (kSchedule.empty())
    for (int32_t k : {64, 48, 32})
      kSchedule.push_back(k);
  // Defaults of this mode where the flags were not given.
  if (!bufferTokens.getNumOccurrences())
    bufferTokens = 128;
  if (!decodeSteps.getNumOccurrences())
    decodeSteps = 300;
  if (kValueSchedule.empty())
    for (int32_t k : kSchedule)
      kValueSchedule.push_back(k);
  if (kValueSchedule.size() != kSchedule.size())
    return toolError("--k-value needs as many entries as --k");
  StorageType storage;
  if (dtype == "f16")
    storage = StorageType::F16;
  else if (dtype == "f32")
    storage = StorageType::F32;
  else
    return toolError("--dtype must be f16 or f32, not " + dtype);
  if (promptTokens < 1 || decodeSteps < 0 || sequences < 1 || checkEvery < 1)
    return toolError(
        "--prompt-tokens, --sequences and --check-every must be at least 1, "
        "--steps at least 0");

  auto workload = kvFile.empty() ? generatedWorkload() : fileWorkload();
  if (!workload)
    return workload.takeError();
  Workload &w = *workload;
  llvm::outs() << "swan-demo: one attention layer, H = " << w.h
               << " KV heads, G = " << w.g << ", D = " << w.d << ", " << dtype
               << " cache, buffer " << bufferTokens << ", pages of "
               << pageTokens << " tokens\ndata: " << w.label << "\n";
  llvm::outs() << "calibration energy kept by the first k rotated "
                  "coordinates (mean over heads):\n";
  for (int64_t k : energyTableKs(w.d)) {
    double key = 0, value = 0;
    for (int32_t h = 0; h < w.h; ++h) {
      key += w.rotK.energyFraction(h, k) / w.h;
      value += w.rotV.energyFraction(h, k) / w.h;
    }
    llvm::outs() << llvm::formatv("  k = {0,3}: keys {1,6:f2}%  values "
                                  "{2,6:f2}%\n",
                                  k, 100 * key, 100 * value);
  }

  CacheConfig config;
  config.headDim = w.d;
  config.numKvHeads = w.h;
  config.groupSize = w.g;
  config.bufferTokens = bufferTokens;
  config.maxSequences = w.sequences.size();
  config.kKey = kSchedule.front();
  config.kValue = kValueSchedule.front();
  config.storage = storage;
  config.pageTokens = pageTokens;
  config.valueEncoding = valueEncoding;
  config.winnowed = winnowed;
  double compileStart = seconds();
  auto cache = Cache::create(config, w.rotK.matrices, w.rotV.matrices);
  if (!cache)
    return cache.takeError();
  auto kernels = KernelSet::get({w.d, w.g, storage});
  if (!kernels)
    return kernels.takeError();
  llvm::outs() << llvm::formatv("kernels: JIT-compiled in {0:f2} s\n",
                                seconds() - compileStart);
  DenseCache dense(w, storage, *kernels);

  const float scale = 1.0f / std::sqrt(float(w.d));
  const size_t batch = w.sequences.size();
  const size_t outFloats = size_t(w.h) * w.g * w.d;
  std::vector<float> swanOut(batch * outFloats), denseOut(batch * outFloats);
  std::vector<int32_t> ids(batch);
  for (size_t s = 0; s < batch; ++s)
    ids[s] = s;
  std::vector<int64_t> position(batch);

  auto denseBytes = [&] {
    int64_t tokens = 0;
    for (size_t s = 0; s < batch; ++s)
      tokens += cache->tokens(s);
    return std::make_pair(tokens, size_t(tokens) * w.h * w.d * 2 * 2);
  };
  // One attention of the whole batch on query rows `position - 1`, both
  // paths, timed; errors measured when asked.
  auto step = [&](PhaseReport &report, bool check) -> llvm::Error {
    std::vector<float> queries(batch * outFloats);
    std::vector<const float *> queryRows(batch);
    for (size_t s = 0; s < batch; ++s) {
      std::memcpy(&queries[s * outFloats],
                  &w.sequences[s].queries[(position[s] - 1) * outFloats],
                  outFloats * sizeof(float));
      queryRows[s] = &queries[s * outFloats];
    }
    std::fill(swanOut.begin(), swanOut.end(), NAN);
    std::fill(denseOut.begin(), denseOut.end(), NAN);
    double start = seconds();
    if (llvm::Error e = cache->attention(ids, queries.data(), scale,
                                         swanOut.data()))
      return e;
    double middle = seconds();
    if (llvm::Error e = dense.attention(queryRows, scale, denseOut.data()))
      return e;
    report.swanSeconds += middle - start;
    report.denseSeconds += seconds() - middle;
    // Both outputs were poisoned with NaN: every element must be written.
    for (size_t i = 0; i < swanOut.size(); ++i)
      if (!std::isfinite(swanOut[i]) || !std::isfinite(denseOut[i]))
        return toolError(
            llvm::formatv("{0} attention left output element {1} not finite",
                          std::isfinite(swanOut[i]) ? "dense" : "swan", i)
                .str());
    if (check)
      for (size_t s = 0; s < batch; ++s) {
        measureError(w, s, position[s] - 1, &swanOut[s * outFloats], scale,
                     report.swanError);
        measureError(w, s, position[s] - 1, &denseOut[s * outFloats], scale,
                     report.denseError);
      }
    return llvm::Error::success();
  };

  std::vector<PhaseReport> phases;
  {
    PhaseReport prefill;
    prefill.name = "prefill";
    prefill.k = kSchedule.front();
    prefill.kValue = kValueSchedule.front();
    ProgressBar bar("prefill", batch, !noProgress);
    for (size_t s = 0; s < batch; ++s) {
      const SequenceData &data = w.sequences[s];
      if (llvm::Error e = cache->append(s, w.prompts[s], data.keys.data(),
                                        data.values.data()))
        return e;
      dense.append(s, 0, w.prompts[s]);
      position[s] = w.prompts[s];
      bar.update(s + 1);
    }
    // The prompt's last query, as the first decode step would see it.
    if (llvm::Error e = step(prefill, /*check=*/true))
      return e;
    prefill.swanSeconds = prefill.denseSeconds = 0;
    std::tie(prefill.tokens, prefill.denseBytes) = denseBytes();
    prefill.bytes = cache->bytes();
    if (llvm::Error e = noteBreakEven(*cache, batch, prefill))
      return e;
    phases.push_back(std::move(prefill));
  }

  const size_t phaseCount = kSchedule.size();
  for (size_t p = 0; p < phaseCount; ++p) {
    PhaseReport report;
    report.k = kSchedule[p];
    report.kValue = kValueSchedule[p];
    if (p == 0) {
      report.name = "decode";
    } else if (p + 1 < phaseCount) {
      report.name = "decode, set_k";
      if (llvm::Error e = cache->setK(report.k, report.kValue))
        return e;
    } else {
      report.name = "decode, rewinnow";
      if (llvm::Error e = cache->rewinnow(report.k, report.kValue))
        return e;
    }
    int64_t steps = decodeSteps / phaseCount +
                    (int64_t(p) < decodeSteps % int64_t(phaseCount) ? 1 : 0);
    ProgressBar bar(report.name + " k=" + std::to_string(report.k), steps,
                    !noProgress);
    for (int64_t i = 0; i < steps; ++i) {
      double start = seconds();
      for (size_t s = 0; s < batch; ++s) {
        const SequenceData &data = w.sequences[s];
        size_t row = position[s] * size_t(w.h) * w.d;
        if (llvm::Error e = cache->append(s, 1, &data.keys[row],
                                          &data.values[row]))
          return e;
      }
      report.appendSeconds += seconds() - start;
      for (size_t s = 0; s < batch; ++s)
        dense.append(s, position[s]++, 1);
      if (llvm::Error e = step(report, i % checkEvery == 0 || i + 1 == steps))
        return e;
      bar.update(i + 1);
    }
    report.steps = steps;
    std::tie(report.tokens, report.denseBytes) = denseBytes();
    report.bytes = cache->bytes();
    if (llvm::Error e = noteBreakEven(*cache, batch, report))
      return e;
    phases.push_back(std::move(report));
  }
  printReport(phases);
  return llvm::Error::success();
}

llvm::Error run() {
  if (generated || !kvFile.empty())
    return runLayerDemo();
  tools::ModelDemoOptions o;
  o.model =
      modelPath.empty() ? model::defaultModelPath() : std::string(modelPath);
  o.tokenizer = tokenizerPath.empty() ? model::defaultTokenizerPath()
                                      : std::string(tokenizerPath);
  o.prompt = promptText;
  if (decodeSteps.getNumOccurrences()) {
    if (decodeSteps < 0)
      return toolError("--steps must be at least 0");
    o.steps = decodeSteps;
  }
  o.kKey.assign(kSchedule.begin(), kSchedule.end());
  if (o.kKey.empty())
    o.kKey = {32, 24, 16};
  o.kValue.assign(kValueSchedule.begin(), kValueSchedule.end());
  if (o.kValue.empty())
    o.kValue = o.kKey;
  if (bufferTokens.getNumOccurrences())
    o.buffer = bufferTokens;
  // A 256-token context fills few 256-token pages; smaller ones hold what
  // it needs.
  o.pageTokens = pageTokens.getNumOccurrences() ? int32_t(pageTokens) : 16;
  if (dtype != "f16" && dtype != "f32")
    return toolError("--dtype must be f16 or f32, not " + dtype);
  o.storage = dtype == "f16" ? StorageType::F16 : StorageType::F32;
  o.valueEncoding = valueEncoding;
  o.winnowed = winnowed;
  o.calibrationStories = calibrationStories;
  if (temperature < 0.0f)
    return toolError("--temperature must be positive");
  o.temperature = temperature;
  o.seed = seed;
  o.progress = !noProgress;
  return tools::runModelDemo(o);
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&modelCategory, &runCategory, &generatedCategory,
                            &shapeCategory, &fileCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "swan-demo: SWAN attention end to end\n\n"
      "  By default a real model (stories15M) writes a story with a SWAN\n"
      "  cache in every layer while k is lowered at run time (set_k, then\n"
      "  rewinnow), beside the same model over a dense cache fed the same\n"
      "  tokens, and prints per phase the bytes held against a dense fp16\n"
      "  cache, next-token KL(dense || swan), top-1 agreement and time per\n"
      "  token. With --generated (or --kv-file), one attention layer of\n"
      "  generated (or your) K/V: attention error against float64 attention\n"
      "  and time per decode step against the project's dense kernel.\n");
  if (llvm::Error e = run())
    return tools::reportError("swan-demo", std::move(e));
  return 0;
}
