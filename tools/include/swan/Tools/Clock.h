//===- Clock.h - wall-clock readings for the tools' timings -----*- C++ -*-===//

#ifndef SWAN_TOOLS_CLOCK_H
#define SWAN_TOOLS_CLOCK_H

namespace swan::tools {

/// Seconds on a steady clock: only differences mean anything.
double seconds();

} // namespace swan::tools

#endif // SWAN_TOOLS_CLOCK_H
