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

} // namespace swan::test

extern "C" {
/// cuMemAlloc calls so far.
uint64_t swanFakeCudaAllocations();
/// Makes the call after the next `calls` of the kinds in `kinds` (a
/// FakeCudaCall mask) fail: an allocation as out of memory, anything else as
/// a failed launch (the fault a kernel leaves behind); negative `calls`:
/// none.
void swanFakeCudaFailAfter(int64_t calls, unsigned kinds);
}

#endif // SWAN_TEST_FAKECUDADRIVER_H
