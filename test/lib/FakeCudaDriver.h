//===- FakeCudaDriver.h - the stand-in driver's test controls ---*- C++ -*-===//
//
// Besides the driver entry points, FakeCudaDriver.cpp exports these for the
// tests of what device allocations and failures leave behind. The library is
// opened by swan::cuda::Device, not linked: a test looks them up with dlsym
// (they are absent from a real driver, where such tests skip).
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_TEST_FAKECUDADRIVER_H
#define SWAN_TEST_FAKECUDADRIVER_H

#include <cstdint>
#include <cstdlib>

#include <dlfcn.h>

namespace swan::test {

/// The driver calls fault injection counts, as bits of a mask.
enum FakeCudaCall : unsigned {
  kFakeAllocation = 1,   ///< cuMemAlloc (fails as out of memory)
  kFakeCopyToDevice = 2, ///< cuMemcpyHtoD
  kFakeCopyToHost = 4,   ///< cuMemcpyDtoH
  kFakeCopyOnDevice = 8, ///< cuMemcpyDtoD
  kFakeLaunch = 16,      ///< cuLaunchKernel
  kFakeSynchronize = 32, ///< cuCtxSynchronize
};

/// A function of the stand-in driver's (SWAN_CUDA_DRIVER, opened by the
/// runtime), or null under a real driver, which has no such functions.
template <typename Function> Function fakeDriverFunction(const char *name) {
  const char *path = std::getenv("SWAN_CUDA_DRIVER");
  void *driver = path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : nullptr;
  return driver ? reinterpret_cast<Function>(dlsym(driver, name)) : nullptr;
}

} // namespace swan::test

extern "C" {
/// cuMemAlloc calls so far.
uint64_t swanFakeCudaAllocations();
/// Makes the call after the next `calls` of the kinds in `kinds` (a
/// FakeCudaCall mask) fail: an allocation as out of memory, anything else as
/// a failed launch (the fault a kernel leaves behind); negative `calls`:
/// none.
void swanFakeCudaFailAfter(int64_t calls, unsigned kinds);
/// Why the emulator failed the last launch it failed ("" if none has
/// failed): a hang, a refusal or an access out of bounds, naming it.
const char *swanFakeCudaLastLaunchFailure();
/// What cuOccupancyMaxActiveBlocksPerMultiprocessor answers for every
/// kernel (the stand-in has no registers to count); 4 until set.
void swanFakeCudaSetResidentBlocks(int blocks);
}

#endif // SWAN_TEST_FAKECUDADRIVER_H
