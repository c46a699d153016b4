//===- swan-calibrate.cpp - offline rotations from K/V sample files -------===//
//
// swan-calibrate INPUT.safetensors... -o OUTPUT.safetensors
//
// Reads tensors layers.<i>.keys / layers.<i>.values [tokens, kv_heads,
// head_dim] (keys after RoPE) from one or more files, streams them a block of
// tokens at a time into per-head second moments, and writes
// layers.<i>.rot_k / layers.<i>.rot_v [kv_heads, D, D] (x' = x · R), each
// checked orthogonal. Prints the energy each k keeps, per layer and head.
//
// swan-calibrate --generate -o SAMPLES.safetensors writes generated LLM-like
// samples instead (labelled "generated" in the file's metadata).
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/Eval/Calibration.h"
#include "swan/Runtime/Eval/Generator.h"
#include "swan/Runtime/Eval/KVDump.h"
#include "swan/Runtime/Eval/Safetensors.h"
#include "swan/Tools/ProgressBar.h"
#include "swan/Tools/ToolError.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

namespace cl = llvm::cl;
namespace st = swan::safetensors;
namespace kvdump = swan::kvdump;
using swan::tools::ProgressBar;
using swan::tools::toolError;

namespace {

cl::OptionCategory category("swan-calibrate options");

cl::list<std::string> inputs(cl::Positional, cl::desc("<input.safetensors>..."),
                             cl::cat(category));
cl::opt<std::string> output("o", cl::desc("Output safetensors file"),
                            cl::value_desc("file"), cl::Required,
                            cl::cat(category));
cl::opt<bool> winnowedEnergy(
    "winnowed-energy",
    cl::desc("Also report the energy a per-token top-k keeps after rotation "
             "(a second pass over the inputs)"),
    cl::cat(category));
cl::opt<bool> noProgress("no-progress", cl::desc("Never draw a progress bar"),
                         cl::cat(category));
cl::opt<int64_t> blockTokens("block-tokens",
                             cl::desc("Tokens converted per read"),
                             cl::init(4096), cl::cat(category));

cl::OptionCategory generateCategory(
    "--generate: write generated LLM-like samples to -o instead");
cl::opt<bool> generate("generate",
                       cl::desc("Write generated samples (see Generator.h)"),
                       cl::cat(generateCategory));
cl::opt<int64_t> genLayers("layers", cl::desc("Layers to generate"),
                           cl::init(2), cl::cat(generateCategory));
cl::opt<int64_t> genTokens("tokens", cl::desc("Tokens per layer"),
                           cl::init(4096), cl::cat(generateCategory));
cl::opt<int64_t> genKVHeads("kv-heads", cl::desc("KV heads"), cl::init(2),
                            cl::cat(generateCategory));
cl::opt<int64_t> genHeadDim("head-dim", cl::desc("Head dimension"),
                            cl::init(128), cl::cat(generateCategory));
cl::opt<uint64_t> genModelSeed("model-seed",
                               cl::desc("Seed of the generated model"),
                               cl::init(1), cl::cat(generateCategory));
cl::opt<uint64_t> genSequenceSeed("sequence-seed",
                                  cl::desc("Seed of the generated tokens"),
                                  cl::init(1), cl::cat(generateCategory));
cl::opt<bool> genQueries(
    "queries",
    cl::desc("Also write layers.<i>.queries [tokens, kv_heads * group, "
             "head_dim] (decode queries, for swan-quality --kv)"),
    cl::cat(generateCategory));
cl::opt<int64_t> genGroup("group", cl::desc("Query heads per KV head"),
                          cl::init(4), cl::cat(generateCategory));
cl::opt<std::string> genDType("dtype", cl::desc("F32, F16 or BF16"),
                              cl::init("F16"), cl::cat(generateCategory));

/// One tensor of samples in one input file.
struct Source {
  const st::File *file;
  const st::TensorInfo *tensor;
};

/// All samples of one layer's keys or values, possibly over several files.
struct SampleSet {
  int64_t kvHeads = 0, headDim = 0, tokens = 0;
  std::vector<Source> sources;
};

/// Output is written beside its destination and renamed only once complete,
/// so a failure never leaves a truncated file under the requested name.
std::string partialPath() { return output + ".partial"; }

llvm::Error publishOutput() {
  if (std::error_code ec = llvm::sys::fs::rename(partialPath(), output))
    return toolError("cannot rename " + partialPath() + " to " + output + ": " +
                     ec.message());
  return llvm::Error::success();
}

llvm::Error collect(const st::File &file, std::map<int64_t, SampleSet> &keys,
                    std::map<int64_t, SampleSet> &values) {
  for (const st::TensorInfo &info : file.tensors()) {
    std::optional<kvdump::TensorName> sample =
        kvdump::parseTensorName(info.name);
    if (!sample || (sample->part != kvdump::Part::Keys &&
                    sample->part != kvdump::Part::Values))
      continue;
    if (info.shape.size() != 3 || info.shape[1] < 1 || info.shape[2] < 1)
      return toolError(file.name() + ": tensor '" + info.name +
                       "' must be [tokens, kv_heads, head_dim]");
    SampleSet &set =
        (sample->part == kvdump::Part::Keys ? keys : values)[sample->layer];
    if (set.sources.empty()) {
      set.kvHeads = info.shape[1];
      set.headDim = info.shape[2];
    } else if (set.kvHeads != info.shape[1] || set.headDim != info.shape[2]) {
      return toolError(llvm::formatv(
          "{0}: tensor '{1}' is [*, {2}, {3}] but earlier inputs hold "
          "[*, {4}, {5}]",
          file.name(), info.name, info.shape[1], info.shape[2], set.kvHeads,
          set.headDim));
    }
    set.tokens += info.shape[0];
    set.sources.push_back({&file, &info});
  }
  return llvm::Error::success();
}

/// Streams a sample set through `consume(block, tokens)`.
template <typename Consume>
llvm::Error stream(const SampleSet &set, ProgressBar &progress,
                   llvm::StringRef what, Consume consume) {
  std::vector<float> block(blockTokens * set.kvHeads * set.headDim);
  for (const Source &source : set.sources) {
    int64_t rows = source.tensor->shape[0];
    for (int64_t first = 0; first < rows; first += blockTokens) {
      int64_t n = std::min<int64_t>(blockTokens, rows - first);
      if (llvm::Error e =
              source.file->readRows(*source.tensor, first, n, block.data()))
        return e;
      if (llvm::Error e = consume(block.data(), n))
        return e;
      progress.advance(n, what);
    }
  }
  return llvm::Error::success();
}

void printEnergyTable(llvm::raw_ostream &os, llvm::StringRef title,
                      const swan::Rotations &r, const SampleSet &set,
                      const std::vector<double> *winnowed) {
  std::vector<int64_t> ks = swan::energyTableKs(r.headDim);
  os << title << ": " << set.tokens << " samples, " << r.kvHeads
     << " KV heads, D = " << r.headDim << "\n";
  auto header = [&](llvm::StringRef label) {
    os << "  " << label << "\n  head";
    for (int64_t k : ks)
      os << llvm::formatv("{0,8}", ("k=" + llvm::Twine(k)).str());
    os << "\n";
  };
  auto rows = [&](auto value) {
    std::vector<double> mean(ks.size(), 0.0);
    for (int64_t h = 0; h < r.kvHeads; ++h) {
      os << llvm::formatv("  {0,4}", h);
      for (size_t i = 0; i < ks.size(); ++i) {
        double v = value(h, i);
        mean[i] += v / r.kvHeads;
        os << llvm::formatv("{0,8:f3}", v);
      }
      os << "\n";
    }
    if (r.kvHeads > 1) {
      os << "  mean";
      for (double v : mean)
        os << llvm::formatv("{0,8:f3}", v);
      os << "\n";
    }
  };
  header("energy in the first k rotated coordinates (eigenvalue share)");
  rows([&](int64_t h, size_t i) { return r.energyFraction(h, ks[i]); });
  if (winnowed) {
    header("energy in each token's k largest rotated coordinates "
           "(what winnowing keeps)");
    rows([&](int64_t h, size_t i) { return (*winnowed)[h * ks.size() + i]; });
  }
}

llvm::Error writeGenerated() {
  std::optional<st::DType> dtype;
  for (st::DType d : {st::DType::F32, st::DType::F16, st::DType::BF16})
    if (llvm::StringRef(genDType).equals_insensitive(st::dtypeName(d)))
      dtype = d;
  if (!dtype)
    return toolError("--dtype must be F32, F16 or BF16, not '" + genDType +
                     "'");
  if (genLayers < 1 || genTokens < 1)
    return toolError("--layers and --tokens must be positive");
  if (genGroup < 1)
    return toolError("--group must be positive");
  using kvdump::Part;
  std::vector<Part> parts = {Part::Keys, Part::Values};
  if (genQueries)
    parts.push_back(Part::Queries);
  std::vector<st::TensorDecl> decls;
  for (int64_t l = 0; l < genLayers; ++l)
    for (Part p : parts)
      decls.push_back(
          {kvdump::tensorName(l, p),
           *dtype,
           {genTokens, genKVHeads * (p == Part::Queries ? genGroup : 1),
            genHeadDim}});
  std::map<std::string, std::string> metadata = {
      {"generator", "swan::generateKV (runtime/include/swan/Runtime/"
                    "Eval/Generator.h)"},
      {"model_seed", std::to_string(genModelSeed)},
      {"sequence_seed", std::to_string(genSequenceSeed)},
      {"keys", "post-RoPE"}};
  kvdump::markGenerated(metadata);
  llvm::Expected<st::Writer> writer =
      st::Writer::create(partialPath(), std::move(decls), metadata);
  if (!writer)
    return writer.takeError();

  // Chunks of positions keep memory bounded for long sequences; each chunk
  // has its own sequence seed so tokens never repeat. Queries attend to
  // earlier tokens of their own call, so with queries a layer is one chunk.
  const int64_t chunk =
      genQueries ? genTokens.getValue() : std::max<int64_t>(blockTokens, 1);
  ProgressBar progress("", genLayers * genTokens * parts.size(), !noProgress);
  for (int64_t l = 0; l < genLayers; ++l) {
    for (Part part : parts) {
      for (int64_t first = 0; first < genTokens; first += chunk) {
        swan::KVGeneratorConfig config;
        config.tokens = std::min(chunk, genTokens - first);
        config.kvHeads = genKVHeads;
        config.headDim = genHeadDim;
        config.queryGroup = genGroup;
        config.layer = l;
        config.firstPosition = first;
        config.modelSeed = genModelSeed;
        config.sequenceSeed = genSequenceSeed * 1000003 + first / chunk;
        config.withQueries = part == Part::Queries;
        llvm::Expected<swan::GeneratedKV> kv = swan::generateKV(config);
        if (!kv)
          return kv.takeError();
        const std::vector<float> &data = part == Part::Keys     ? kv->keys
                                         : part == Part::Values ? kv->values
                                                                : kv->queries;
        if (llvm::Error e = writer->append(data.data(), data.size()))
          return e;
        progress.advance(
            config.tokens,
            llvm::formatv("layer {0} {1}", l, kvdump::partName(part)).str());
      }
    }
  }
  progress.keep();
  if (llvm::Error e = writer->finish())
    return e;
  if (llvm::Error e = publishOutput())
    return e;
  llvm::outs() << "wrote generated samples: " << genLayers << " layers x "
               << genTokens << " tokens x " << genKVHeads << " KV heads x "
               << genHeadDim << (genQueries ? " with decode queries" : "")
               << " to " << output << "\n";
  return llvm::Error::success();
}

llvm::Error calibrateInputs() {
  if (inputs.empty())
    return toolError("no input files (see --help)");
  if (blockTokens < 1)
    return toolError("--block-tokens must be positive");
  std::vector<st::File> files;
  files.reserve(inputs.size());
  for (const std::string &path : inputs) {
    llvm::Expected<st::File> file = st::File::open(path);
    if (!file)
      return file.takeError();
    files.push_back(std::move(*file));
  }
  std::map<int64_t, SampleSet> keys, values;
  bool anyGenerated = false;
  for (const st::File &file : files) {
    if (llvm::Error e = collect(file, keys, values))
      return e;
    anyGenerated |= kvdump::isGenerated(file);
  }
  if (keys.empty() && values.empty())
    return toolError("no tensors named layers.<i>.keys or layers.<i>.values "
                     "in the inputs");

  std::vector<st::TensorDecl> decls;
  int64_t totalTokens = 0;
  for (auto *sets : {&keys, &values})
    for (auto &[layer, set] : *sets)
      totalTokens += set.tokens * (winnowedEnergy ? 2 : 1);
  std::vector<std::pair<int64_t, bool>> order; // (layer, isKeys)
  for (auto &[layer, set] : keys)
    order.push_back({layer, true});
  for (auto &[layer, set] : values)
    order.push_back({layer, false});
  llvm::sort(order, [](auto a, auto b) {
    return std::make_pair(a.first, !a.second) <
           std::make_pair(b.first, !b.second);
  });
  for (auto [layer, isKeys] : order) {
    const SampleSet &set = (isKeys ? keys : values)[layer];
    decls.push_back(
        {kvdump::tensorName(layer, isKeys ? kvdump::Part::KeyRotation
                                          : kvdump::Part::ValueRotation),
         st::DType::F32,
         {set.kvHeads, set.headDim, set.headDim}});
  }
  std::map<std::string, std::string> metadata = {
      {"format", "swan rotations: x' = x · R, R[kv_head][i][j]"},
      {"calibrated_from", llvm::join(inputs, ",")}};
  if (anyGenerated)
    kvdump::markGenerated(metadata);
  llvm::Expected<st::Writer> writer =
      st::Writer::create(partialPath(), std::move(decls), metadata);
  if (!writer)
    return writer.takeError();

  ProgressBar progress("", totalTokens, !noProgress);
  std::string report;
  llvm::raw_string_ostream os(report);
  if (anyGenerated)
    os << "(inputs are generated data, not a real model's cache)\n";
  for (auto [layer, isKeys] : order) {
    const SampleSet &set = (isKeys ? keys : values)[layer];
    std::string what = llvm::formatv(
        "layer {0} {1}", layer,
        kvdump::partName(isKeys ? kvdump::Part::Keys : kvdump::Part::Values));
    swan::SecondMoment moment(set.kvHeads, set.headDim);
    if (llvm::Error e =
            stream(set, progress, what, [&](const float *block, int64_t n) {
              return moment.add(block, n);
            }))
      return e;
    llvm::Expected<swan::Rotations> r = swan::computeRotations(moment);
    if (!r)
      return toolError(what + ": " + llvm::toString(r.takeError()));
    std::vector<double> winnowed;
    if (winnowedEnergy) {
      swan::WinnowedEnergy energy(*r);
      if (llvm::Error e = stream(set, progress, what + " (top-k)",
                                 [&](const float *block, int64_t n) {
                                   energy.add(block, n);
                                   return llvm::Error::success();
                                 }))
        return e;
      winnowed = energy.fractions();
    }
    printEnergyTable(os, what, *r, set, winnowedEnergy ? &winnowed : nullptr);
    if (llvm::Error e = writer->append(r->matrices.data(), r->matrices.size()))
      return e;
  }
  progress.keep();
  if (llvm::Error e = writer->finish())
    return e;
  if (llvm::Error e = publishOutput())
    return e;
  llvm::outs() << report << "wrote " << order.size()
               << " rotations (orthogonal to 1e-5) to " << output << "\n";
  return llvm::Error::success();
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&category, &generateCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "swan-calibrate: per-head rotations R_K, R_V from K/V samples\n\n"
      "  swan-calibrate INPUT.safetensors... -o ROTATIONS.safetensors\n"
      "  swan-calibrate --generate [--layers N --tokens N ...] -o "
      "SAMPLES.safetensors\n\n"
      "Inputs hold layers.<i>.keys and layers.<i>.values [tokens, kv_heads, "
      "head_dim]\n(keys after RoPE), F32, F16 or BF16; the output holds "
      "layers.<i>.rot_k and\nlayers.<i>.rot_v [kv_heads, head_dim, head_dim] "
      "in F32, with x' = x · R.\n");
  llvm::Error e = generate && !inputs.empty()
                      ? toolError("--generate takes no input files")
                  : generate ? writeGenerated()
                             : calibrateInputs();
  if (e) {
    llvm::sys::fs::remove(partialPath());
    return swan::tools::reportError("swan-calibrate", std::move(e));
  }
  return 0;
}
