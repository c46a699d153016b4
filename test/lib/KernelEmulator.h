//===- KernelEmulator.h - GPU kernels run on the host, thread by thread ---===//
//
// Runs a kernel compiled by `swan-lower-gpu-to-host` (swan-ptx
// --host-object) over a launch grid: blocks one after another, each GPU
// thread of a block a fiber of its own, switched at every barrier, warp
// synchronisation and shuffle. It is what the stand-in CUDA driver's
// launches run, so the generated kernels and the runtime's launches of them
// are tested on machines without a GPU; it reports what would hang or be
// undefined on a GPU (a barrier or warp operation some threads never reach,
// a launch against the kernel's known block size) instead of running on.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TEST_KERNELEMULATOR_H
#define SWAN_TEST_KERNELEMULATOR_H

#include "swan/Codegen/GPU/EmulatorABI.h"

#include <string>

namespace swan::test {

/// Runs `kernel` on every thread of `grid` x `block` with the launch's
/// `params`. Returns an empty string on success, else what went wrong.
/// Launches are serialised: one runs at a time in the process.
std::string emulateLaunch(const emulator_abi::EmulatedKernel &kernel,
                          const unsigned grid[3], const unsigned block[3],
                          void **params);

} // namespace swan::test

#endif // SWAN_TEST_KERNELEMULATOR_H
