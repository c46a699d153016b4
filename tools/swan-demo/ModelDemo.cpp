//===- ModelDemo.cpp - swan-demo's main job: a real model writing ---------===//

#include "ModelDemo.h"

#include "swan/Runtime/Eval/ModelCalibration.h"
#include "swan/Runtime/Model/Attention.h"
#include "swan/Runtime/Model/Tokenizer.h"
#include "swan/Tools/Clock.h"
#include "swan/Tools/ProgressBar.h"
#include "swan/Tools/ToolError.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

using namespace swan;
using namespace swan::model;
using namespace swan::tools;

namespace {

struct Phase {
  std::string name;
  int32_t kKey = 0, kValue = 0;
  int64_t tokens = 0, steps = 0;
  size_t bytes = 0, denseBytes = 0;
  double kl = 0.0, worstKl = 0.0;
  int64_t agree = 0;
  double swanSeconds = 0.0, denseSeconds = 0.0;

  void compare(llvm::ArrayRef<float> swanLogits,
               llvm::ArrayRef<float> denseLogits) {
    double d = klDivergence(softmax(denseLogits), softmax(swanLogits));
    kl += d;
    worstKl = std::max(worstKl, d);
    agree += argmax(swanLogits) == argmax(denseLogits);
  }
};

void printPhases(const std::vector<Phase> &phases) {
  llvm::outs() << llvm::formatv(
      "\n{0,-16} {1,7} {2,7} {3,10} {4,10} {5,6} {6,17} {7,7} {8,9} "
      "{9,9}\n",
      "phase", "k_K/k_V", "tokens", "swan B", "fp16 B", "saved", "KL mean/max",
      "top-1", "swan ms", "dense ms");
  for (const Phase &p : phases) {
    const double n = std::max<int64_t>(p.steps, 1);
    llvm::outs() << llvm::formatv(
        "{0,-16} {1,7} {2,7} {3,10} {4,10} {5,5:f1}% {6,8:e1}/{7,8:e1} "
        "{8,6:f1}% {9,9:f2} {10,9:f2}\n",
        p.name, std::to_string(p.kKey) + "/" + std::to_string(p.kValue),
        p.tokens, p.bytes, p.denseBytes,
        100.0 * (1.0 - double(p.bytes) / double(p.denseBytes)), p.kl / n,
        p.worstKl, 100.0 * p.agree / n, 1e3 * p.swanSeconds / n,
        1e3 * p.denseSeconds / n);
  }
  llvm::outs()
      << "\nswan B: every layer's swan::Cache (buffers, winnowed values, "
         "indices or masks, as allocated); fp16 B: the same tokens in a dense "
         "fp16 cache.\nKL: KL(dense ‖ swan) of the next-token distributions, "
         "in nats; top-1: the same most likely token. Both runs read the same "
         "tokens.\nms: per token, the whole model (prompt: per prompt token); "
         "dense = the same forward pass over a float32 cache.\n";
}

} // namespace

llvm::Error swan::tools::runModelDemo(const ModelDemoOptions &o) {
  if (o.kKey.empty() || o.kKey.size() != o.kValue.size())
    return toolError("--k and --k-value need the same number of phases");
  auto checkpoint = Checkpoint::load(o.model);
  if (!checkpoint)
    return checkpoint.takeError();
  const ModelConfig &c = checkpoint->config();
  auto tokenizer = Tokenizer::load(o.tokenizer, c.vocab);
  if (!tokenizer)
    return tokenizer.takeError();
  Transformer transformer(*checkpoint);

  llvm::outs() << llvm::formatv(
      "swan-demo: {0}\n  dim {1}, {2} layers, {3} query heads over {4} KV "
      "heads of D = {5}, context {6}: a swan::Cache per layer ({7}{10}, "
      "buffer {8}, pages of {9}) beside a dense float32 cache\n",
      o.model, c.dim, c.layers, c.heads, c.kvHeads, c.headDim(), c.seqLen,
      o.storage == StorageType::F16 ? "f16" : "f32", o.buffer, o.pageTokens,
      o.winnowed == WinnowedStorage::Int8 ? ", winnowed as int8" : "");
  llvm::outs().flush();
  ModelRotations rotations;
  {
    ProgressBar bar("calibrating on the model's own stories",
                    o.calibrationStories, o.progress);
    auto r = cachedModelRotations(transformer, o.model, o.calibrationStories,
                                  [&](int64_t done) { bar.update(done); });
    if (!r)
      return r.takeError();
    rotations = std::move(*r);
  }
  CacheConfig config;
  config.kKey = o.kKey[0];
  config.kValue = o.kValue[0];
  config.bufferTokens = o.buffer;
  config.pageTokens = o.pageTokens;
  config.maxSequences = 1;
  config.storage = o.storage;
  config.valueEncoding = o.valueEncoding;
  config.winnowed = o.winnowed;
  auto swanCache =
      CacheAttention::create(c, config, rotations.keys, rotations.values);
  if (!swanCache)
    return swanCache.takeError();
  DenseAttention dense(c);

  std::vector<int32_t> tokens = tokenizer->encode(o.prompt, /*bos=*/true);
  if (static_cast<int64_t>(tokens.size()) >= c.seqLen)
    return toolError("--prompt takes " + llvm::Twine(tokens.size()) +
                     " tokens; the context is " + llvm::Twine(c.seqLen));
  const int64_t room = c.seqLen - static_cast<int64_t>(tokens.size());
  const int64_t steps = o.steps >= 0 ? std::min<int64_t>(o.steps, room) : room;
  const int64_t phases = o.kKey.size();
  std::vector<Phase> report;
  auto fillBytes = [&](Phase &p) {
    p.tokens = dense.tokens();
    p.bytes = swanCache->bytes();
    p.denseBytes = dense.fp16Bytes();
  };

  llvm::outs() << "\n" << tokenizer->decode(tokens);
  llvm::outs().flush();
  Phase prompt;
  prompt.name = "prompt";
  prompt.kKey = o.kKey[0];
  prompt.kValue = o.kValue[0];
  double t0 = seconds();
  auto swanLogits = transformer.forward(tokens, 0, *swanCache);
  double t1 = seconds();
  if (!swanLogits)
    return swanLogits.takeError();
  auto denseLogits = transformer.forward(tokens, 0, dense);
  double t2 = seconds();
  if (!denseLogits)
    return denseLogits.takeError();
  prompt.steps = tokens.size();
  prompt.swanSeconds = t1 - t0;
  prompt.denseSeconds = t2 - t1;
  // One comparison, counted as if for every prompt token (all identical:
  // the prompt attends densely), so that the columns read per token.
  prompt.compare(*swanLogits, *denseLogits);
  prompt.kl *= prompt.steps;
  prompt.agree *= prompt.steps;
  fillBytes(prompt);
  report.push_back(prompt);

  std::mt19937_64 rng(o.seed);
  auto choose = [&](llvm::ArrayRef<float> logits) {
    return o.temperature > 0.0f ? sample(logits, o.temperature, rng)
                                : argmax(logits);
  };
  int32_t next = choose(*swanLogits);
  int64_t done = 0;
  for (int64_t p = 0; p < phases; ++p) {
    Phase phase;
    phase.kKey = o.kKey[p];
    phase.kValue = o.kValue[p];
    if (p == 0) {
      phase.name = "decode";
    } else if (p + 1 < phases) {
      phase.name = "decode, set_k";
      if (llvm::Error e = swanCache->setK(phase.kKey, phase.kValue))
        return e;
    } else {
      phase.name = "decode, rewinnow";
      if (llvm::Error e = swanCache->rewinnow(phase.kKey, phase.kValue))
        return e;
    }
    const int64_t until = steps * (p + 1) / phases;
    for (; done < until; ++done) {
      // BOS ends a story; the model goes on with a new one.
      llvm::outs() << (next == Tokenizer::kBos
                           ? std::string("\n\n")
                           : tokenizer->decode(tokens.back(), next));
      llvm::outs().flush();
      tokens.push_back(next);
      const int64_t at = tokens.size() - 1;
      t0 = seconds();
      swanLogits = transformer.forward(next, at, *swanCache);
      t1 = seconds();
      if (!swanLogits)
        return swanLogits.takeError();
      denseLogits = transformer.forward(next, at, dense);
      t2 = seconds();
      if (!denseLogits)
        return denseLogits.takeError();
      phase.swanSeconds += t1 - t0;
      phase.denseSeconds += t2 - t1;
      phase.compare(*swanLogits, *denseLogits);
      ++phase.steps;
      next = choose(*swanLogits);
    }
    fillBytes(phase);
    report.push_back(phase);
  }
  llvm::outs() << "\n";
  printPhases(report);
  return llvm::Error::success();
}
