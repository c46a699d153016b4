//===- ModelCalibration.cpp - rotations from a model's own stories --------===//

#include "swan/Runtime/Eval/ModelCalibration.h"
#include "swan/Runtime/Eval/Calibration.h"
#include "swan/Runtime/Eval/KVDump.h"
#include "swan/Runtime/Eval/Safetensors.h"
#include "swan/Runtime/Model/Attention.h"
#include "swan/Runtime/Model/Tokenizer.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/xxhash.h"

#include <map>
#include <optional>

using namespace swan;
using namespace swan::model;

llvm::Expected<std::vector<int32_t>>
swan::sampleStory(const Transformer &transformer, uint64_t seed,
                  float temperature) {
  const ModelConfig &c = transformer.config();
  DenseAttention cache(c);
  std::mt19937_64 rng(seed);
  std::vector<int32_t> story = {Tokenizer::kBos};
  while (static_cast<int32_t>(story.size()) < c.seqLen) {
    auto logits = transformer.forward(story.back(), story.size() - 1, cache);
    if (!logits)
      return logits.takeError();
    int32_t next = sample(*logits, temperature, rng);
    if (next == Tokenizer::kBos || next == Tokenizer::kEos)
      break;
    story.push_back(next);
  }
  return story;
}

llvm::Expected<ModelRotations>
swan::calibrateModel(const Transformer &transformer, int64_t stories,
                     const std::function<void(int64_t)> &progress) {
  const ModelConfig &c = transformer.config();
  std::vector<SecondMoment> keys, values;
  for (int32_t l = 0; l < c.layers; ++l) {
    keys.emplace_back(c.kvHeads, c.headDim());
    values.emplace_back(c.kvHeads, c.headDim());
  }
  for (int64_t s = 0; s < stories; ++s) {
    auto story = sampleStory(transformer, kCalibrationSeedBase + s);
    if (!story)
      return story.takeError();
    // The story's keys and values, as its dense cache holds them.
    DenseAttention cache(c);
    if (auto logits = transformer.forward(*story, 0, cache); !logits)
      return logits.takeError();
    for (int32_t l = 0; l < c.layers; ++l) {
      if (llvm::Error e = keys[l].add(cache.keys(l).data(), cache.tokens()))
        return e;
      if (llvm::Error e = values[l].add(cache.values(l).data(), cache.tokens()))
        return e;
    }
    if (progress)
      progress(s + 1);
  }
  ModelRotations r;
  for (int32_t l = 0; l < c.layers; ++l) {
    auto rk = computeRotations(keys[l]);
    if (!rk)
      return rk.takeError();
    auto rv = computeRotations(values[l]);
    if (!rv)
      return rv.takeError();
    r.keys.push_back(std::move(rk->matrices));
    r.values.push_back(std::move(rv->matrices));
  }
  return r;
}

namespace {

/// A cheap fingerprint of a model file: its size and a hash of 8 bytes in
/// every 4 KiB, so that another model of the same size (a fine-tune) does
/// not reuse these rotations.
llvm::Expected<std::string> fingerprint(llvm::StringRef path) {
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                          /*RequiresNullTerminator=*/false);
  if (!file)
    return llvm::createStringError(file.getError(),
                                   path + ": " + file.getError().message());
  llvm::StringRef bytes = (*file)->getBuffer();
  std::string sample;
  for (size_t at = 0; at < bytes.size(); at += 4096)
    sample += bytes.substr(at, 8);
  sample += bytes.take_back(8);
  return std::to_string(bytes.size()) + " bytes, xxh3 of a byte sample " +
         llvm::utohexstr(
             llvm::xxh3_64bits(llvm::arrayRefFromStringRef(sample)));
}

/// What a cached rotation file must say it was made from.
std::map<std::string, std::string>
provenance(const ModelConfig &c, llvm::StringRef modelPrint, int64_t stories) {
  return {{"format", "swan rotations: x' = x · R, R[kv_head][i][j]"},
          {"calibrated_from",
           "the model's own stories: " + std::to_string(stories) +
               " sampled from BOS at temperature 1, seeds " +
               std::to_string(kCalibrationSeedBase) + " on"},
          {"model", "dim " + std::to_string(c.dim) + ", " +
                        std::to_string(c.layers) + " layers, " +
                        modelPrint.str()}};
}

std::optional<ModelRotations>
readCached(llvm::StringRef path, const ModelConfig &c,
           const std::map<std::string, std::string> &meta) {
  auto file = safetensors::File::open(path);
  if (!file) {
    llvm::consumeError(file.takeError());
    return std::nullopt;
  }
  if (file->metadata() != meta)
    return std::nullopt;
  const std::vector<int64_t> shape = {c.kvHeads, c.headDim(), c.headDim()};
  ModelRotations r;
  for (int32_t l = 0; l < c.layers; ++l)
    for (auto part : {kvdump::Part::KeyRotation, kvdump::Part::ValueRotation}) {
      const safetensors::TensorInfo *t =
          file->find(kvdump::tensorName(l, part));
      if (!t || t->shape != shape)
        return std::nullopt;
      auto data = file->readAll(*t);
      if (!data) {
        llvm::consumeError(data.takeError());
        return std::nullopt;
      }
      Rotations check;
      check.kvHeads = c.kvHeads;
      check.headDim = c.headDim();
      check.matrices = *data;
      if (llvm::Error e = checkOrthogonal(check)) {
        llvm::consumeError(std::move(e));
        return std::nullopt;
      }
      (part == kvdump::Part::KeyRotation ? r.keys : r.values)
          .push_back(std::move(*data));
    }
  return r;
}

} // namespace

llvm::Expected<ModelRotations>
swan::cachedModelRotations(const Transformer &transformer,
                           llvm::StringRef modelPath, int64_t stories,
                           const std::function<void(int64_t)> &progress) {
  const ModelConfig &c = transformer.config();
  auto print = fingerprint(modelPath);
  if (!print)
    return print.takeError();
  const std::string path = (modelPath + ".rotations.safetensors").str();
  const auto meta = provenance(c, *print, stories);
  if (std::optional<ModelRotations> cached = readCached(path, c, meta))
    return std::move(*cached);

  auto r = calibrateModel(transformer, stories, progress);
  if (!r)
    return r.takeError();
  std::vector<safetensors::TensorDecl> decls;
  std::vector<const std::vector<float> *> data;
  for (int32_t l = 0; l < c.layers; ++l) {
    decls.push_back({kvdump::tensorName(l, kvdump::Part::KeyRotation),
                     safetensors::DType::F32,
                     {c.kvHeads, c.headDim(), c.headDim()}});
    data.push_back(&r->keys[l]);
    decls.push_back({kvdump::tensorName(l, kvdump::Part::ValueRotation),
                     safetensors::DType::F32,
                     {c.kvHeads, c.headDim(), c.headDim()}});
    data.push_back(&r->values[l]);
  }
  // Written under a name of this process, then renamed: a reader never sees
  // half a file, and two processes calibrating at once do not mix theirs.
  const std::string partial =
      path + ".partial-" + std::to_string(llvm::sys::Process::getProcessId());
  if (llvm::Error e = safetensors::write(partial, decls, data, meta)) {
    llvm::consumeError(std::move(e));
    return r;
  }
  if (llvm::sys::fs::rename(partial, path))
    llvm::sys::fs::remove(partial);
  return r;
}
