//===- swan-quality.cpp - compression quality at equal memory -------------===//
//
// Compares, at equal bytes per cached token, SWAN (rotation + per-token
// top-k + dense buffer; fp16 or int8 kept values) with SWAN without the
// buffer, top-k without rotation, low-rank truncation, a sliding window and
// per-token int8/6/5/4 and grouped int4 quantisation
// (swan/Runtime/Eval/Quality.h).
//
// End to end (--end-to-end, EndToEnd.cpp), inside a real model: next-token
// KL, top-1 agreement and NLL change against the model's dense run.
// Otherwise on one layer's K/V, scored against uncompressed float64
// attention (swan::reference): relative L2 error of the output and top-1 /
// top-8 agreement of the attention weights, averaged over decode positions
// and query heads; the data is generated LLM-like K/V with rotations
// calibrated on a different generated sequence of the same model (the
// default), or a user dump (--kv) holding layers.<i>.keys, layers.<i>.values
// and layers.<i>.queries. Prints a table; writes CSV and a gnuplot PNG on
// request.
//
//===----------------------------------------------------------------------===//

#include "EndToEnd.h"
#include "Plot.h"

#include "swan/Runtime/Eval/Calibration.h"
#include "swan/Runtime/Eval/Generator.h"
#include "swan/Runtime/Eval/KVDump.h"
#include "swan/Runtime/Eval/Quality.h"
#include "swan/Runtime/Eval/Safetensors.h"
#include "swan/Runtime/Model/ModelFiles.h"
#include "swan/Tools/ToolError.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

namespace cl = llvm::cl;
namespace q = swan::quality;
namespace st = swan::safetensors;
namespace kvdump = swan::kvdump;
using swan::tools::toolError;

namespace {

cl::OptionCategory category("swan-quality options");

cl::opt<std::string>
    kvFile("kv",
           cl::desc("Safetensors dump with layers.<i>.keys/values/queries "
                    "[tokens, heads, head_dim] (default: generated data)"),
           cl::value_desc("file"), cl::cat(category));
cl::opt<int64_t> layer("layer", cl::desc("Layer of --kv to evaluate"),
                       cl::init(0), cl::cat(category));
cl::opt<std::string> rotationsFile(
    "rotations",
    cl::desc("swan-calibrate output for --kv (default: calibrate on the "
             "evaluated data itself, reported as in-sample)"),
    cl::value_desc("file"), cl::cat(category));
cl::opt<std::string>
    budgetList("budgets",
               cl::desc("Bytes per token as fractions of dense fp16 (4·D), "
                        "comma-separated"),
               cl::init("0.125,0.1875,0.25,0.3125,0.375,0.5,0.625,0.75"),
               cl::cat(category));
cl::opt<int64_t> bufferTokens("buffer",
                              cl::desc("SWAN dense buffer tokens (default: "
                                       "128; 32 end to end)"),
                              cl::init(128), cl::cat(category));
cl::opt<int64_t>
    positionCount("positions",
                  cl::desc("Decode positions evaluated: the last N tokens"),
                  cl::init(32), cl::cat(category));
enum class Side { Both, Keys, Values };
cl::opt<Side> compressOnly(
    "only", cl::desc("Compress only one side of the cache (diagnosis)"),
    cl::values(clEnumValN(Side::Both, "both", "keys and values (default)"),
               clEnumValN(Side::Keys, "keys", "keys only, values exact"),
               clEnumValN(Side::Values, "values", "values only, keys exact")),
    cl::init(Side::Both), cl::cat(category));
cl::opt<std::string> csvPath("csv", cl::desc("Write the results as CSV"),
                             cl::value_desc("file"), cl::cat(category));
cl::opt<std::string>
    plotPath("plot",
             cl::desc("Write a PNG plot of error against bytes (gnuplot)"),
             cl::value_desc("file.png"), cl::cat(category));

cl::OptionCategory modelCategory("A real model, end to end");
cl::opt<bool> endToEnd(
    "end-to-end",
    cl::desc("Measure inside a llama2.c model: next-token KL, top-1 and NLL "
             "change on stories it samples (the stories15M scripts/setup "
             "fetched, or --model)"),
    cl::cat(modelCategory));
cl::opt<std::string> modelPath("model",
                               cl::desc("The llama2.c checkpoint to measure "
                                        "in (implies --end-to-end)"),
                               cl::value_desc("file"), cl::cat(modelCategory));
cl::opt<int64_t> storyCount("stories",
                            cl::desc("Stories the model samples and reads"),
                            cl::init(8), cl::cat(modelCategory));
cl::opt<int64_t> calibrationStories(
    "calibration-stories",
    cl::desc("Other stories its rotations are calibrated on (cached beside "
             "the model)"),
    cl::init(16), cl::cat(modelCategory));
cl::opt<std::string> jsonPath("json", cl::desc("Write the results as JSON"),
                              cl::value_desc("file"), cl::cat(modelCategory));
cl::opt<bool> noProgress("no-progress", cl::desc("Never draw progress bars"),
                         cl::cat(modelCategory));

cl::OptionCategory generatedCategory("Generated data (without --kv)");
cl::opt<int64_t> genTokens("tokens", cl::desc("Sequence length"),
                           cl::init(2048), cl::cat(generatedCategory));
cl::opt<int64_t> genKVHeads("kv-heads", cl::desc("KV heads"), cl::init(2),
                            cl::cat(generatedCategory));
cl::opt<int64_t> genHeadDim("head-dim", cl::desc("Head dimension"),
                            cl::init(128), cl::cat(generatedCategory));
cl::opt<int64_t> genGroup("group", cl::desc("Query heads per KV head"),
                          cl::init(4), cl::cat(generatedCategory));
cl::opt<uint64_t> genModelSeed("model-seed", cl::desc("Generated model"),
                               cl::init(1), cl::cat(generatedCategory));
cl::opt<uint64_t> genSequenceSeed("sequence-seed",
                                  cl::desc("Evaluated sequence"), cl::init(1),
                                  cl::cat(generatedCategory));
cl::opt<int64_t> genCalibrationTokens(
    "calibration-tokens",
    cl::desc("Tokens of the separate calibration sequence (default: "
             "--tokens, so it spans the same positions)"),
    cl::init(0), cl::cat(generatedCategory));

struct Row {
  q::Setting setting;
  double budgetFraction; ///< NaN for the fixed-cost methods
  double bytes;
  q::Metrics metrics;
};

llvm::Expected<q::Input> generatedInput(std::string &description) {
  swan::KVGeneratorConfig config;
  config.tokens = genTokens;
  config.kvHeads = genKVHeads;
  config.headDim = genHeadDim;
  config.queryGroup = genGroup;
  config.modelSeed = genModelSeed;
  config.sequenceSeed = genSequenceSeed;
  llvm::Expected<swan::GeneratedKV> kv = swan::generateKV(config);
  if (!kv)
    return kv.takeError();
  // Calibrate on another sequence of the same generated model.
  config.tokens = genCalibrationTokens > 0 ? genCalibrationTokens : genTokens;
  config.sequenceSeed = genSequenceSeed + 1000003;
  config.withQueries = false;
  llvm::Expected<swan::GeneratedKV> calibration = swan::generateKV(config);
  if (!calibration)
    return calibration.takeError();
  llvm::Expected<swan::Rotations> rk = swan::calibrate(
      calibration->keys.data(), config.tokens, genKVHeads, genHeadDim);
  if (!rk)
    return rk.takeError();
  llvm::Expected<swan::Rotations> rv = swan::calibrate(
      calibration->values.data(), config.tokens, genKVHeads, genHeadDim);
  if (!rv)
    return rv.takeError();
  q::Input in;
  in.tokens = kv->tokens;
  in.kvHeads = kv->kvHeads;
  in.headDim = kv->headDim;
  in.queryGroup = kv->queryGroup;
  in.keys = std::move(kv->keys);
  in.values = std::move(kv->values);
  in.queries = std::move(kv->queries);
  in.keyRotations = std::move(*rk);
  in.valueRotations = std::move(*rv);
  description = llvm::formatv(
      "GENERATED data (swan::generateKV, model seed {0}, sequence seed {1}; "
      "rotations calibrated on a separate generated sequence of {2} tokens)",
      genModelSeed, genSequenceSeed, config.tokens);
  return in;
}

/// The tensor `name` of `file`, which must be [*, *, *].
llvm::Expected<const st::TensorInfo *> findTensor(const st::File &file,
                                                  llvm::StringRef name) {
  const st::TensorInfo *info = file.find(name);
  if (!info)
    return toolError(file.name() + ": no tensor '" + name + "'");
  if (info->shape.size() != 3)
    return toolError(file.name() + ": tensor '" + name + "' must have rank 3");
  return info;
}

llvm::Expected<swan::Rotations> readRotations(const st::File &file,
                                              llvm::StringRef name) {
  llvm::Expected<const st::TensorInfo *> info = findTensor(file, name);
  if (!info)
    return info.takeError();
  llvm::Expected<std::vector<float>> data = file.readAll(**info);
  if (!data)
    return data.takeError();
  const std::vector<int64_t> &shape = (*info)->shape;
  if (shape[1] != shape[2])
    return toolError(file.name() + ": tensor '" + name +
                     "' must be [kv_heads, D, D]");
  swan::Rotations r;
  r.kvHeads = shape[0];
  r.headDim = shape[1];
  r.matrices = std::move(*data);
  r.eigenvalues.assign(r.kvHeads * r.headDim, 0.0);
  if (llvm::Error e = swan::checkOrthogonal(r))
    return toolError(file.name() + ": tensor '" + name +
                     "': " + llvm::toString(std::move(e)));
  return r;
}

llvm::Expected<q::Input> dumpInput(std::string &description) {
  llvm::Expected<st::File> file = st::File::open(kvFile);
  if (!file)
    return file.takeError();
  llvm::Expected<const st::TensorInfo *> keys =
      findTensor(*file, kvdump::tensorName(layer, kvdump::Part::Keys));
  if (!keys)
    return keys.takeError();
  llvm::Expected<const st::TensorInfo *> values =
      findTensor(*file, kvdump::tensorName(layer, kvdump::Part::Values));
  if (!values)
    return values.takeError();
  llvm::Expected<const st::TensorInfo *> queries =
      findTensor(*file, kvdump::tensorName(layer, kvdump::Part::Queries));
  if (!queries)
    return toolError(llvm::toString(queries.takeError()) +
                     " (the quality report needs the decode queries too)");
  kvdump::LayerTensors tensors{*keys, *values, *queries};
  if (!tensors.keysValuesAgree() || !tensors.queriesAgree())
    return toolError(kvFile + ": keys, values [tokens, kv_heads, D] and "
                              "queries [tokens, kv_heads * G, D] disagree");
  llvm::Expected<kvdump::LayerSamples> samples =
      kvdump::readLayer(*file, tensors, (*keys)->shape[0]);
  if (!samples)
    return samples.takeError();
  q::Input in;
  in.tokens = samples->tokens;
  in.kvHeads = samples->kvHeads;
  in.headDim = samples->headDim;
  in.queryGroup = samples->group;
  in.keys = std::move(samples->keys);
  in.values = std::move(samples->values);
  in.queries = std::move(samples->queries);
  description =
      (kvdump::isGenerated(*file) ? "GENERATED data from " : "dump ") + kvFile +
      ", layer " + std::to_string(layer);
  if (!rotationsFile.empty()) {
    llvm::Expected<st::File> rotations = st::File::open(rotationsFile);
    if (!rotations)
      return rotations.takeError();
    llvm::Expected<swan::Rotations> rk = readRotations(
        *rotations, kvdump::tensorName(layer, kvdump::Part::KeyRotation));
    if (!rk)
      return rk.takeError();
    llvm::Expected<swan::Rotations> rv = readRotations(
        *rotations, kvdump::tensorName(layer, kvdump::Part::ValueRotation));
    if (!rv)
      return rv.takeError();
    in.keyRotations = std::move(*rk);
    in.valueRotations = std::move(*rv);
    description += "; rotations from " + rotationsFile;
  } else {
    llvm::Expected<swan::Rotations> rk =
        swan::calibrate(in.keys.data(), in.tokens, in.kvHeads, in.headDim);
    if (!rk)
      return rk.takeError();
    llvm::Expected<swan::Rotations> rv =
        swan::calibrate(in.values.data(), in.tokens, in.kvHeads, in.headDim);
    if (!rv)
      return rv.takeError();
    in.keyRotations = std::move(*rk);
    in.valueRotations = std::move(*rv);
    description += "; rotations calibrated IN-SAMPLE on the same data";
  }
  return in;
}

llvm::Error writeCsv(const std::vector<Row> &rows, int64_t tokens, int64_t dim,
                     const std::string &description) {
  std::error_code ec;
  llvm::raw_fd_ostream os(csvPath, ec);
  if (ec)
    return toolError("cannot write " + csvPath + ": " + ec.message());
  os << "# " << description << "\n";
  os << "method,parameter_name,parameter,buffer,budget_fraction,"
        "bytes_per_token,fraction_of_fp16,relative_l2_error,top1_agreement,"
        "top8_agreement,queries\n";
  for (const Row &r : rows) {
    os << q::methodName(r.setting.method) << ","
       << q::parameterName(r.setting.method) << "," << r.setting.parameter
       << "," << r.setting.buffer << ",";
    if (!std::isnan(r.budgetFraction))
      os << llvm::formatv("{0:f4}", r.budgetFraction);
    os << llvm::formatv(",{0:f2},{1:f4},{2:e4},{3:f4},{4:f4},{5}\n", r.bytes,
                        r.bytes / (4.0 * dim), r.metrics.relativeError,
                        r.metrics.top1, r.metrics.top8, r.metrics.queries);
  }
  return llvm::Error::success();
}

llvm::Error writeLayerPlot(const std::vector<Row> &rows, int64_t dim,
                           const std::string &description) {
  std::vector<swan::tools::PlotSeries> series;
  for (q::Method m : q::allMethods()) {
    swan::tools::PlotSeries line{q::methodName(m).str(),
                                 q::isQuantised(m) &&
                                     m != q::Method::Int4Grouped,
                                 {}};
    for (const Row &r : rows)
      if (r.setting.method == m)
        line.xy.push_back({r.bytes / (4.0 * dim), r.metrics.relativeError});
    series.push_back(std::move(line));
  }
  return swan::tools::writePlot(
      plotPath, description, "bytes per token / dense fp16 (4 D)",
      "relative L2 error of the attention output", series);
}

llvm::Error run() {
  std::vector<double> budgets;
  llvm::SmallVector<llvm::StringRef> parts;
  llvm::StringRef(budgetList).split(parts, ',', -1, false);
  for (llvm::StringRef part : parts) {
    double f;
    if (part.trim().getAsDouble(f) || !(f > 0.0) || f > 1.0)
      return toolError("--budgets: '" + part + "' is not a fraction in (0, 1]");
    budgets.push_back(f);
  }
  if (budgets.empty())
    return toolError("--budgets is empty");
  if (endToEnd || !modelPath.empty()) {
    swan::tools::EndToEndOptions o;
    o.model = modelPath.empty() ? swan::model::defaultModelPath()
                                : std::string(modelPath);
    o.stories = storyCount;
    o.calibrationStories = calibrationStories;
    // A 256-token context: a buffer of 128 would leave little to compress.
    o.buffer = bufferTokens.getNumOccurrences() ? int64_t(bufferTokens) : 32;
    o.budgets = budgets;
    o.csvPath = csvPath;
    o.jsonPath = jsonPath;
    o.plotPath = plotPath;
    o.progress = !noProgress;
    return swan::tools::runEndToEnd(o);
  }
  if (bufferTokens < 0 || positionCount < 1)
    return toolError("--buffer must be >= 0 and --positions >= 1");

  std::string description;
  llvm::Expected<q::Input> input =
      kvFile.empty() ? generatedInput(description) : dumpInput(description);
  if (!input)
    return input.takeError();
  const int64_t tokens = input->tokens, dim = input->headDim;
  std::vector<int64_t> positions;
  for (int64_t t = std::max<int64_t>(0, tokens - positionCount); t < tokens;
       ++t)
    positions.push_back(t);
  const int64_t heads = input->kvHeads, group = input->queryGroup;
  llvm::Expected<q::Evaluator> evaluator =
      q::Evaluator::create(std::move(*input), positions);
  if (!evaluator)
    return evaluator.takeError();

  // Budgets are accounted at the longest cache evaluated.
  std::vector<Row> rows;
  for (double fraction : budgets)
    for (q::Method m : q::allMethods()) {
      if (q::isQuantised(m))
        continue;
      std::optional<q::Setting> s = q::settingForBudget(
          m, fraction * 4.0 * dim, tokens, dim, bufferTokens);
      if (!s)
        continue;
      s->compressKeys = compressOnly != Side::Values;
      s->compressValues = compressOnly != Side::Keys;
      rows.push_back({*s, fraction, q::bytesPerToken(*s, tokens, dim),
                      evaluator->evaluate(*s)});
    }
  for (q::Setting s : q::quantisedSettings()) {
    s.compressKeys = compressOnly != Side::Values;
    s.compressValues = compressOnly != Side::Keys;
    rows.push_back(
        {s, NAN, q::bytesPerToken(s, tokens, dim), evaluator->evaluate(s)});
  }

  if (compressOnly != Side::Both)
    description += compressOnly == Side::Keys
                       ? "; DIAGNOSIS: only keys compressed, values exact"
                       : "; DIAGNOSIS: only values compressed, keys exact";
  llvm::raw_ostream &os = llvm::outs();
  os << "swan-quality: " << description << "\n";
  os << llvm::formatv("  L = {0} tokens, {1} KV heads x {2} query heads, "
                      "D = {3}, buffer {4}, {5} decode positions, {6} "
                      "queries per setting; dense fp16 = {7} bytes/token\n",
                      tokens, heads, group, dim, bufferTokens, positions.size(),
                      positions.size() * heads * group, 4 * dim);
  os << llvm::formatv("{0,-8}{1,-18}{2,-11}{3,10}{4,9}{5,12}{6,8}{7,8}\n",
                      "budget", "method", "param", "bytes/tok", "of fp16",
                      "rel.L2 err", "top-1", "top-8");
  double lastBudget = NAN;
  for (const Row &r : rows) {
    if (!std::isnan(lastBudget) &&
        (std::isnan(r.budgetFraction) || r.budgetFraction != lastBudget))
      os << "\n";
    lastBudget = r.budgetFraction;
    std::string budget = std::isnan(r.budgetFraction)
                             ? std::string("fixed")
                             : llvm::formatv("{0:f4}", r.budgetFraction).str();
    os << llvm::formatv(
        "{0,-8}{1,-18}{2,-11}{3,10:f1}{4,9:f3}{5,12:e2}{6,8:f3}{7,8:f3}\n",
        budget, q::methodName(r.setting.method), q::parameterText(r.setting),
        r.bytes, r.bytes / (4.0 * dim), r.metrics.relativeError, r.metrics.top1,
        r.metrics.top8);
  }
  if (!csvPath.empty()) {
    if (llvm::Error e = writeCsv(rows, tokens, dim, description))
      return e;
    os << "csv: " << csvPath << "\n";
  }
  if (!plotPath.empty())
    if (llvm::Error e = writeLayerPlot(rows, dim, description))
      return e;
  return llvm::Error::success();
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions({&category, &modelCategory, &generatedCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "swan-quality: SWAN against other ways of spending the same KV-cache "
      "bytes\n\n"
      "  swan-quality --end-to-end [--model FILE]       a real model, end to "
      "end\n"
      "  swan-quality [--tokens N --head-dim D ...]    generated data\n"
      "  swan-quality --kv DUMP.safetensors --layer I [--rotations "
      "ROT.safetensors]\n\n"
      "On a layer's K/V, scores each method against float64 attention: "
      "relative L2\nerror of the output, top-1 and top-8 agreement of the "
      "attention weights. In\na model, scores next-token KL(dense || "
      "method), top-1 agreement and the\nchange in NLL of the stories' "
      "tokens.\n");
  if (llvm::Error e = run())
    return swan::tools::reportError("swan-quality", std::move(e));
  return 0;
}
