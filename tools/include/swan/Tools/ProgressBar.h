//===- ProgressBar.h - a progress bar on the terminal for tools -*- C++ -*-===//
//
// "label                    [#########...............]  45%", redrawn in
// place on stderr, and only when stderr is a terminal: piped output, logs
// and the lit tests never see it.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TOOLS_PROGRESSBAR_H
#define SWAN_TOOLS_PROGRESSBAR_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace swan::tools {

class ProgressBar {
public:
  /// `total` units of work; with `enabled` false (--no-progress) nothing is
  /// ever drawn.
  ProgressBar(llvm::StringRef label, int64_t total, bool enabled = true);
  /// Erases a bar still on screen, so that what follows starts a clean line.
  ~ProgressBar();
  ProgressBar(const ProgressBar &) = delete;
  ProgressBar &operator=(const ProgressBar &) = delete;

  /// Sets the units done so far; redraws when the shown percent changes.
  void update(int64_t done);
  /// Adds `count` units done under a new label (a phase of one long job).
  void advance(int64_t count, llvm::StringRef newLabel);
  /// Leaves the bar on screen as last drawn and ends its line.
  void keep();

private:
  void draw();

  std::string label;
  int64_t total, done = 0;
  bool enabled, onScreen = false;
  int shownPercent = -1;
  std::string shownLabel;
  size_t shownWidth = 0;
};

} // namespace swan::tools

#endif // SWAN_TOOLS_PROGRESSBAR_H
