//===- EndToEnd.cpp - swan-quality on a real model ------------------------===//

#include "EndToEnd.h"
#include "Plot.h"

#include "swan/Runtime/Eval/ModelQuality.h"
#include "swan/Tools/ProgressBar.h"
#include "swan/Tools/ToolError.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace swan;
using namespace swan::tools;
namespace q = swan::quality;

namespace {

struct Row {
  q::Setting setting;
  double budgetFraction; ///< NaN for the quantisers
  double bytes;
  q::ModelMetrics metrics;
};

llvm::Error writeCsv(llvm::StringRef path, const std::vector<Row> &rows,
                     int64_t dim, llvm::StringRef description) {
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return toolError("cannot write " + path + ": " + ec.message());
  os << "# " << description << "\n"
     << "method,parameter_name,parameter,buffer,budget_fraction,"
        "bytes_per_token,fraction_of_fp16,kl,top1_agreement,nll_change,"
        "predictions\n";
  for (const Row &r : rows) {
    os << q::methodName(r.setting.method) << ","
       << q::parameterName(r.setting.method) << "," << r.setting.parameter
       << "," << r.setting.buffer << ",";
    if (!std::isnan(r.budgetFraction))
      os << llvm::formatv("{0:f4}", r.budgetFraction);
    os << llvm::formatv(",{0:f2},{1:f4},{2:e4},{3:f4},{4:e4},{5}\n", r.bytes,
                        r.bytes / (4.0 * dim), r.metrics.kl, r.metrics.top1,
                        r.metrics.nllChange, r.metrics.predictions);
  }
  return llvm::Error::success();
}

llvm::Error writeJson(llvm::StringRef path, const std::vector<Row> &rows,
                      int64_t dim, llvm::StringRef description,
                      const EndToEndOptions &o, int64_t meanTokens) {
  llvm::json::Array results;
  for (const Row &r : rows)
    results.push_back(llvm::json::Object{
        {"method", q::methodName(r.setting.method)},
        {"parameter_name", q::parameterName(r.setting.method)},
        {"parameter", r.setting.parameter},
        {"buffer", r.setting.buffer},
        {"budget_fraction", std::isnan(r.budgetFraction)
                                ? llvm::json::Value(nullptr)
                                : llvm::json::Value(r.budgetFraction)},
        {"bytes_per_token", r.bytes},
        {"fraction_of_fp16", r.bytes / (4.0 * dim)},
        {"kl", r.metrics.kl},
        {"top1_agreement", r.metrics.top1},
        {"nll_change", r.metrics.nllChange},
        {"predictions", r.metrics.predictions}});
  llvm::json::Object root{
      {"description", description},   {"model", o.model},
      {"stories", o.stories},         {"mean_tokens", meanTokens},
      {"buffer", o.buffer},           {"head_dim", dim},
      {"results", std::move(results)}};
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  if (ec)
    return toolError("cannot write " + path + ": " + ec.message());
  os << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
  return llvm::Error::success();
}

/// "stories15M/model.bin": the file and its folder, which names the model.
std::string shortName(llvm::StringRef path) {
  llvm::StringRef folder =
      llvm::sys::path::filename(llvm::sys::path::parent_path(path));
  return ((folder.empty() ? "" : folder + "/") +
          llvm::sys::path::filename(path))
      .str();
}

} // namespace

llvm::Error swan::tools::runEndToEnd(const EndToEndOptions &o) {
  if (o.stories < 1 || o.buffer < 0)
    return toolError("--stories must be >= 1 and --buffer >= 0");
  auto checkpoint = model::Checkpoint::load(o.model);
  if (!checkpoint)
    return checkpoint.takeError();
  model::Transformer transformer(*checkpoint);
  const model::ModelConfig &c = checkpoint->config();
  const int64_t dim = c.headDim();

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
  std::vector<std::vector<int32_t>> stories;
  {
    ProgressBar bar("sampling the stories to read", o.stories, o.progress);
    for (int64_t s = 0; s < o.stories; ++s) {
      // Evaluation seeds 0.. are disjoint from the calibration seeds.
      auto story = sampleStory(transformer, s);
      if (!story)
        return story.takeError();
      if (static_cast<int64_t>(story->size()) >= o.buffer + 2)
        stories.push_back(std::move(*story));
      bar.update(s + 1);
    }
  }
  if (stories.empty())
    return toolError("no sampled story is longer than the buffer + 1");
  const int64_t kept = stories.size();
  auto evaluator = q::ModelEvaluator::create(transformer, rotations,
                                             std::move(stories), o.buffer);
  if (!evaluator)
    return evaluator.takeError();
  const int64_t tokens = evaluator->meanTokens();

  std::vector<q::Setting> settings;
  std::vector<double> fractions;
  for (double fraction : o.budgets)
    for (q::Method m : q::allMethods()) {
      if (q::isQuantised(m))
        continue;
      if (std::optional<q::Setting> s = q::settingForBudget(
              m, fraction * 4.0 * dim, tokens, dim, o.buffer)) {
        settings.push_back(*s);
        fractions.push_back(fraction);
      }
    }
  for (const q::Setting &s : q::quantisedSettings()) {
    settings.push_back(s);
    fractions.push_back(NAN);
  }
  std::vector<Row> rows;
  {
    ProgressBar bar("evaluating", settings.size(), o.progress);
    for (size_t i = 0; i < settings.size(); ++i) {
      auto metrics = evaluator->evaluate(settings[i]);
      if (!metrics)
        return metrics.takeError();
      rows.push_back({settings[i], fractions[i],
                      q::bytesPerToken(settings[i], tokens, dim), *metrics});
      bar.update(i + 1);
    }
  }

  const std::string description = llvm::formatv(
      "{0}: {1} stories the model sampled (seeds 0..{2}, temperature 1, "
      "mean {3} tokens), teacher-forced; buffer {4}; rotations calibrated on "
      "{5} other sampled stories",
      shortName(o.model), kept, o.stories - 1, tokens, o.buffer,
      o.calibrationStories);
  llvm::raw_ostream &os = llvm::outs();
  os << "swan-quality (end to end): " << description << "\n";
  os << llvm::formatv(
      "  {0} layers, {1} KV heads x {2} query heads, D = {3}; {4} "
      "next-token predictions per setting (positions >= {5}); dense fp16 = "
      "{6} bytes/token per KV head\n",
      c.layers, c.kvHeads, c.group(), dim, evaluator->predictions(), o.buffer,
      4 * dim);
  os << llvm::formatv("{0,-8}{1,-18}{2,-11}{3,10}{4,9}{5,12}{6,8}{7,11}\n",
                      "budget", "method", "param", "bytes/tok", "of fp16",
                      "KL (nats)", "top-1", "dNLL");
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
        "{0,-8}{1,-18}{2,-11}{3,10:f1}{4,9:f3}{5,12:e2}{6,8:f3}{7,11:e2}\n",
        budget, q::methodName(r.setting.method), q::parameterText(r.setting),
        r.bytes, r.bytes / (4.0 * dim), r.metrics.kl, r.metrics.top1,
        r.metrics.nllChange);
  }
  if (!o.csvPath.empty()) {
    if (llvm::Error e = writeCsv(o.csvPath, rows, dim, description))
      return e;
    os << "csv: " << o.csvPath << "\n";
  }
  if (!o.jsonPath.empty()) {
    if (llvm::Error e =
            writeJson(o.jsonPath, rows, dim, description, o, tokens))
      return e;
    os << "json: " << o.jsonPath << "\n";
  }
  if (!o.plotPath.empty()) {
    std::vector<PlotSeries> series;
    for (q::Method m : q::allMethods()) {
      PlotSeries line{q::methodName(m).str(),
                      q::isQuantised(m) && m != q::Method::Int4Grouped,
                      {}};
      for (const Row &r : rows)
        if (r.setting.method == m)
          line.xy.push_back({r.bytes / (4.0 * dim), r.metrics.kl});
      series.push_back(std::move(line));
    }
    if (llvm::Error e = writePlot(
            o.plotPath, description, "bytes per token / dense fp16 (4 D)",
            "next-token KL(dense || method), nats", series))
      return e;
  }
  return llvm::Error::success();
}
