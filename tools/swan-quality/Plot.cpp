//===- Plot.cpp - swan-quality's PNG plots through gnuplot ----------------===//

#include "Plot.h"

#include "swan/Tools/ToolError.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

using namespace swan;
using namespace swan::tools;

llvm::Error swan::tools::writePlot(llvm::StringRef path, llvm::StringRef title,
                                   llvm::StringRef xLabel,
                                   llvm::StringRef yLabel,
                                   llvm::ArrayRef<PlotSeries> series) {
  llvm::ErrorOr<std::string> gnuplot = llvm::sys::findProgramByName("gnuplot");
  if (!gnuplot) {
    llvm::errs() << "swan-quality: gnuplot not found (Debian: gnuplot-nox); "
                    "skipping the plot\n";
    return llvm::Error::success();
  }
  const std::string data = (path + ".dat").str(), script = (path + ".gp").str();
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(data, ec);
    if (ec)
      return toolError("cannot write " + data + ": " + ec.message());
    // One gnuplot data block per series, separated by two blank lines.
    for (const PlotSeries &s : series) {
      os << "# " << s.name << "\n";
      for (auto [x, y] : s.xy)
        os << llvm::formatv("{0:f4} {1:e4}\n", x, y);
      os << "\n\n";
    }
  }
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(script, ec);
    if (ec)
      return toolError("cannot write " + script + ": " + ec.message());
    // Long titles wrap at their "; " clauses.
    std::string quotedTitle;
    for (size_t i = 0; i < title.size(); ++i) {
      if (title.substr(i).starts_with("; ")) {
        quotedTitle += ";\\n";
        ++i;
      } else {
        quotedTitle += title[i] == '"' ? '\'' : title[i];
      }
    }
    os << "set terminal pngcairo size 1100,700 noenhanced\n"
       << "set output \"" << path << "\"\n"
       << "set title \"" << quotedTitle << "\" font \",9\"\n"
       << "set xlabel \"" << xLabel << "\"\n"
       << "set ylabel \"" << yLabel << "\"\n"
       << "set logscale y\nset format y \"%g\"\nset grid\n"
       << "set key outside right\n"
       << "plot";
    // One colour and one point shape per series: gnuplot's own cycle
    // repeats after eight.
    static const char *colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                    "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                    "#bcbd22", "#17becf", "#000000", "#aec7e8",
                                    "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5"};
    constexpr size_t kColours = sizeof(colours) / sizeof(colours[0]);
    for (size_t i = 0; i < series.size(); ++i)
      os << (i ? ", \\\n     " : " ") << "\"" << data << "\" index " << i
         << " with " << (series[i].pointsOnly ? "points ps 1.5" : "linespoints")
         << " pt " << (series[i].pointsOnly ? 7 : 1 + i % 13) << " lc rgb \""
         << colours[i % kColours] << "\" title \"" << series[i].name << "\"";
    os << "\n";
  }
  std::string error;
  llvm::StringRef args[] = {*gnuplot, script};
  int rc =
      llvm::sys::ExecuteAndWait(*gnuplot, args, std::nullopt, {}, 0, 0, &error);
  if (rc != 0)
    return toolError("gnuplot failed on " + script + ": " +
                     (error.empty() ? "exit " + std::to_string(rc) : error));
  llvm::outs() << "plot: " << path << " (gnuplot script " << script << ")\n";
  return llvm::Error::success();
}
