//===- swan-generate.cpp - a llama2.c model writing through SWAN caches ---===//
//
// Generates text with a llama2.c checkpoint whose every layer keeps its keys
// and values in a swan::Cache (or, with --dense, in a plain float cache).
// The generated text goes to stdout as it is produced; everything else to
// stderr, so that scripts can take the text alone.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/Eval/KVDump.h"
#include "swan/Runtime/Eval/ModelCalibration.h"
#include "swan/Runtime/Eval/Safetensors.h"
#include "swan/Runtime/Model/Attention.h"
#include "swan/Runtime/Model/ModelFiles.h"
#include "swan/Runtime/Model/Tokenizer.h"
#include "swan/Tools/CacheOptions.h"
#include "swan/Tools/Clock.h"
#include "swan/Tools/ToolError.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

namespace cl = llvm::cl;
using namespace swan;
using namespace swan::model;
using tools::seconds;
using tools::toolError;

namespace {

cl::OptionCategory modelCategory("Model");
cl::opt<std::string> modelPath("model",
                               cl::desc("llama2.c checkpoint (default: the "
                                        "stories15M that scripts/setup "
                                        "fetched)"),
                               cl::value_desc("file"), cl::cat(modelCategory));
cl::opt<std::string> tokenizerPath("tokenizer",
                                   cl::desc("llama2.c tokenizer (default: "
                                            "the one beside stories15M)"),
                                   cl::value_desc("file"),
                                   cl::cat(modelCategory));

cl::OptionCategory generationCategory("Generation");
cl::opt<std::string> prompt("prompt",
                            cl::desc("Text to continue (default: none; "
                                     "generation starts from BOS)"),
                            cl::cat(generationCategory));
cl::opt<int32_t> steps("steps",
                       cl::desc("Tokens to generate (at most the context "
                                "left after the prompt)"),
                       cl::init(256), cl::cat(generationCategory));
cl::opt<bool> greedy("greedy",
                     cl::desc("Take the most likely token (the "
                              "default)"),
                     cl::cat(generationCategory));
cl::opt<float> temperature("temperature",
                           cl::desc("Sample at this temperature instead"),
                           cl::init(0.0f), cl::cat(generationCategory));
cl::opt<uint64_t> seed("seed", cl::desc("Seed of the sampling"), cl::init(0),
                       cl::cat(generationCategory));

cl::OptionCategory cacheCategory("Cache (one swan::Cache per layer)");
cl::opt<int32_t> kKey("k-key",
                      cl::desc("Components kept per winnowed key (default: "
                               "the head dimension, i.e. all)"),
                      cl::init(0), cl::cat(cacheCategory));
cl::opt<int32_t> kValue("k-value",
                        cl::desc("Components kept per winnowed value "
                                 "(default: the head dimension)"),
                        cl::init(0), cl::cat(cacheCategory));
cl::opt<int32_t> buffer("buffer", cl::desc("Newest tokens kept dense"),
                        cl::init(32), cl::cat(cacheCategory));
cl::opt<int32_t> pageTokens("page-tokens", cl::desc("Tokens per sparse page"),
                            cl::init(16), cl::cat(cacheCategory));
cl::opt<std::string> dtype("dtype", cl::desc("Cache storage: f16 or f32"),
                           cl::init("f16"), cl::cat(cacheCategory));
cl::opt<WinnowedStorage> winnowed(tools::kWinnowedFlag,
                                  cl::desc(tools::kWinnowedHelp),
                                  tools::winnowedStorageValues(),
                                  cl::init(WinnowedStorage::AsStorage),
                                  cl::cat(cacheCategory));
cl::opt<int32_t> calibrationStories(
    "calibration-stories",
    cl::desc("Stories the model samples to calibrate its rotations on "
             "(cached beside the model)"),
    cl::init(16), cl::cat(cacheCategory));
cl::opt<std::string> kvDump(
    "kv-dump",
    cl::desc("Also write every layer's queries, keys and values of the whole "
             "text (prompt and generated) as a K/V dump for swan-calibrate "
             "and swan-quality --kv"),
    cl::value_desc("file.safetensors"), cl::cat(cacheCategory));
cl::opt<bool> dense("dense",
                    cl::desc("Keep every key and value in a plain float32 "
                             "cache instead (the baseline)"),
                    cl::cat(cacheCategory));

/// Passes every call on, keeping a copy of the queries, keys and values.
class RecordingAttention : public LayerAttention {
public:
  RecordingAttention(LayerAttention &inner, const ModelConfig &c)
      : inner(inner), cfg(c), queries(c.layers), keys(c.layers),
        values(c.layers) {}

  llvm::Error attend(int32_t layer, int64_t first, int64_t n, const float *q,
                     const float *k, const float *v, float *out) override {
    const int64_t qRow = int64_t(cfg.heads) * cfg.headDim(),
                  kvRow = cfg.kvDim();
    queries[layer].insert(queries[layer].end(), q, q + n * qRow);
    keys[layer].insert(keys[layer].end(), k, k + n * kvRow);
    values[layer].insert(values[layer].end(), v, v + n * kvRow);
    return inner.attend(layer, first, n, q, k, v, out);
  }

  llvm::Error write(llvm::StringRef path, llvm::StringRef source) const {
    namespace st = swan::safetensors;
    const int64_t tokens = keys[0].size() / cfg.kvDim();
    std::vector<st::TensorDecl> decls;
    std::vector<const std::vector<float> *> data;
    for (int32_t l = 0; l < cfg.layers; ++l) {
      decls.push_back({kvdump::tensorName(l, kvdump::Part::Queries),
                       st::DType::F32,
                       {tokens, cfg.heads, cfg.headDim()}});
      data.push_back(&queries[l]);
      decls.push_back({kvdump::tensorName(l, kvdump::Part::Keys),
                       st::DType::F32,
                       {tokens, cfg.kvHeads, cfg.headDim()}});
      data.push_back(&keys[l]);
      decls.push_back({kvdump::tensorName(l, kvdump::Part::Values),
                       st::DType::F32,
                       {tokens, cfg.kvHeads, cfg.headDim()}});
      data.push_back(&values[l]);
    }
    return st::write(path, decls, data, {{"source", source.str()}});
  }

private:
  LayerAttention &inner;
  ModelConfig cfg;
  std::vector<std::vector<float>> queries, keys, values;
};

llvm::Error run() {
  if (greedy && temperature > 0.0f)
    return toolError("--greedy and --temperature exclude each other");
  if (temperature < 0.0f)
    return toolError("--temperature must be positive");
  if (dtype != "f16" && dtype != "f32")
    return toolError("--dtype must be f16 or f32, not '" + dtype + "'");
  const std::string model =
      modelPath.empty() ? defaultModelPath() : std::string(modelPath);
  auto checkpoint = Checkpoint::load(model);
  if (!checkpoint)
    return checkpoint.takeError();
  const ModelConfig &c = checkpoint->config();
  auto tokenizer =
      Tokenizer::load(tokenizerPath.empty() ? defaultTokenizerPath()
                                            : std::string(tokenizerPath),
                      c.vocab);
  if (!tokenizer)
    return tokenizer.takeError();
  Transformer transformer(*checkpoint);

  std::unique_ptr<LayerAttention> attention;
  CacheAttention *swanCache = nullptr;
  if (dense) {
    attention = std::make_unique<DenseAttention>(c);
  } else {
    auto rotations =
        cachedModelRotations(transformer, model, calibrationStories);
    if (!rotations)
      return rotations.takeError();
    CacheConfig config;
    config.kKey = kKey > 0 ? kKey : c.headDim();
    config.kValue = kValue > 0 ? kValue : c.headDim();
    config.bufferTokens = buffer;
    config.pageTokens = pageTokens;
    config.maxSequences = 1;
    config.storage = dtype == "f16" ? StorageType::F16 : StorageType::F32;
    config.winnowed = winnowed;
    auto cache =
        CacheAttention::create(c, config, rotations->keys, rotations->values);
    if (!cache)
      return cache.takeError();
    auto owned = std::make_unique<CacheAttention>(std::move(*cache));
    swanCache = owned.get();
    attention = std::move(owned);
  }

  std::unique_ptr<RecordingAttention> recorder;
  if (!kvDump.empty()) {
    recorder = std::make_unique<RecordingAttention>(*attention, c);
  }
  LayerAttention &layers = recorder ? *recorder : *attention;

  std::vector<int32_t> tokens = tokenizer->encode(prompt, /*bos=*/true);
  if (static_cast<int64_t>(tokens.size()) >= c.seqLen)
    return toolError("--prompt takes " + llvm::Twine(tokens.size()) +
                     " tokens; the model's context is " +
                     llvm::Twine(c.seqLen));
  std::mt19937_64 rng(seed);
  const double start = seconds();
  auto logits = transformer.forward(tokens, 0, layers);
  if (!logits)
    return logits.takeError();
  const double prefilled = seconds();
  int64_t generated = 0;
  while (generated < steps && static_cast<int32_t>(tokens.size()) < c.seqLen) {
    int32_t next = temperature > 0.0f ? sample(*logits, temperature, rng)
                                      : argmax(*logits);
    if (next == Tokenizer::kBos || next == Tokenizer::kEos)
      break;
    llvm::outs() << tokenizer->decode(tokens.back(), next);
    llvm::outs().flush();
    tokens.push_back(next);
    ++generated;
    if (static_cast<int32_t>(tokens.size()) == c.seqLen || generated == steps)
      break;
    logits = transformer.forward(next, tokens.size() - 1, layers);
    if (!logits)
      return logits.takeError();
  }
  llvm::outs() << "\n";
  llvm::outs().flush();
  const double end = seconds();
  llvm::errs() << llvm::formatv(
      "swan-generate: {0} prompt tokens in {1:F1} ms, {2} generated at "
      "{3:F2} ms/token",
      tokens.size() - generated, (prefilled - start) * 1e3, generated,
      generated ? (end - prefilled) * 1e3 / generated : 0.0);
  if (swanCache)
    llvm::errs() << llvm::formatv(
        "; SWAN cache (k_K {0}, k_V {1}, buffer {2}, {3}) holds {4} bytes, "
        "a dense fp16 cache {5}\n",
        swanCache->cache(0).kKey(), swanCache->cache(0).kValue(),
        int32_t(buffer), std::string(dtype), swanCache->bytes(),
        size_t(tokens.size()) * c.layers * 2 * c.kvDim() * 2);
  else
    llvm::errs() << "; dense float32 cache\n";
  if (recorder) {
    // Its last token was never run: the dump holds the tokens the model read.
    if (llvm::Error e = recorder->write(kvDump, model))
      return e;
    llvm::errs() << "swan-generate: wrote the K/V dump " << kvDump << "\n";
  }
  return llvm::Error::success();
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(
      {&modelCategory, &generationCategory, &cacheCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "swan-generate: text from a llama2.c model, every layer's keys and\n"
      "values in a SWAN cache\n\n"
      "  The prompt is attended densely and appended to the caches in bulk;\n"
      "  each generated token is appended and attends through them. The\n"
      "  text goes to stdout, statistics to stderr.\n");
  if (llvm::Error e = run())
    return tools::reportError("swan-generate", std::move(e));
  return 0;
}
