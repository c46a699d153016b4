//===- Clock.cpp - wall-clock readings for the tools' timings -------------===//

#include "swan/Tools/Clock.h"

#include <chrono>

double swan::tools::seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}
