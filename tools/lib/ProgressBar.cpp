//===- ProgressBar.cpp - a progress bar on the terminal for tools ---------===//

#include "swan/Tools/ProgressBar.h"

#include "llvm/Support/FormatAdapters.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace swan::tools;

namespace {
constexpr int kBarWidth = 40;
/// Wide enough for the longest label the tools draw ("layer 12 values
/// (top-k)"), so that the bar stays put while labels change.
constexpr int kLabelWidth = 24;
} // namespace

ProgressBar::ProgressBar(llvm::StringRef label, int64_t total, bool enabled)
    : label(label.str()), total(total),
      enabled(enabled && llvm::sys::Process::StandardErrIsDisplayed()) {}

ProgressBar::~ProgressBar() {
  if (onScreen)
    llvm::errs() << "\r" << std::string(shownWidth, ' ') << "\r";
}

void ProgressBar::update(int64_t nowDone) {
  done = nowDone;
  draw();
}

void ProgressBar::advance(int64_t count, llvm::StringRef newLabel) {
  label = newLabel.str();
  update(done + count);
}

void ProgressBar::keep() {
  if (onScreen)
    llvm::errs() << "\n";
  onScreen = false;
}

void ProgressBar::draw() {
  if (!enabled || total <= 0)
    return;
  int percent =
      static_cast<int>(std::clamp<int64_t>(100 * done / total, 0, 100));
  if (percent == shownPercent && label == shownLabel)
    return;
  shownPercent = percent;
  shownLabel = label;
  int filled = percent * kBarWidth / 100;
  std::string line =
      llvm::formatv("{0} [{1}{2}] {3,3}%",
                    llvm::fmt_align(label, llvm::AlignStyle::Left, kLabelWidth),
                    std::string(filled, '#'),
                    std::string(kBarWidth - filled, '.'), percent)
          .str();
  // Blanks over what a longer earlier label left behind.
  size_t width = line.size();
  line.resize(std::max(width, shownWidth), ' ');
  shownWidth = width;
  llvm::errs() << "\r" << line;
  llvm::errs().flush();
  onScreen = true;
}
