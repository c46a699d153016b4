//===- Plot.h - swan-quality's PNG plots through gnuplot --------*- C++ -*-===//

#ifndef SWAN_TOOLS_SWAN_QUALITY_PLOT_H
#define SWAN_TOOLS_SWAN_QUALITY_PLOT_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <string>
#include <utility>
#include <vector>

namespace swan::tools {

/// One method's points: a line, or lone points for fixed-cost methods.
struct PlotSeries {
  std::string name;
  bool pointsOnly = false;
  std::vector<std::pair<double, double>> xy;
};

/// Writes `path` (PNG) with gnuplot, keeping its data (path.dat) and script
/// (path.gp) beside it; y is on a log scale. Without gnuplot, says so on
/// stderr and writes nothing.
llvm::Error writePlot(llvm::StringRef path, llvm::StringRef title,
                      llvm::StringRef xLabel, llvm::StringRef yLabel,
                      llvm::ArrayRef<PlotSeries> series);

} // namespace swan::tools

#endif // SWAN_TOOLS_SWAN_QUALITY_PLOT_H
