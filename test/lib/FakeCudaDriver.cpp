//===- FakeCudaDriver.cpp - a CUDA driver stand-in for the tests ----------===//
//
// A shared library with the driver entry points swan::cuda::Device opens,
// backed by host memory: "device" allocations are host pages, copies are
// memcpy, and a launch runs the generated kernel itself, compiled for the
// host by the build (swan-ptx --host-object), in the kernel emulator
// (KernelEmulator.h). The GPU cache, the CUDA runtime's launches and the
// kernels' own logic thus run on every machine; what only a GPU can show
// (the NVPTX back end, timing) is left to scripts/gpu-check.
//
// A module is recognised by its PTX: the runtime loads the PTX it embeds,
// and each embedded specialisation has its emulated twin. Device memory is
// fenced by inaccessible pages and starts undefined (deviceAllocate).
// The library also counts allocations and can fail a chosen call
// (FakeCudaDriver.h).
//
//===----------------------------------------------------------------------===//

#include "FakeCudaDriver.h"
#include "KernelEmulator.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>

#include <sys/mman.h>
#include <unistd.h>

namespace {

#include "CudaPTX.inc"
#include "EmulatedKernels.inc"

using CUresult = int;
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2,
                   kInvalidPtx = 218, kNotFound = 500, kLaunchFailed = 719;

/// The emulated kernels of the embedded PTX `image`, or null.
const swan::emulator_abi::EmulatedKernel *emulatedModule(const char *image) {
  for (const EmbeddedPtx &ptx : kEmbeddedPtx) {
    if (std::strcmp(ptx.ptx, image) != 0)
      continue;
    for (const EmulatedModule &m : kEmulatedModules)
      if (m.dim == ptx.dim && m.group == ptx.group &&
          std::strcmp(m.storage, ptx.storage) == 0)
        return m.kernels;
  }
  return nullptr;
}

/// "Device" memory. Each allocation starts 256-byte aligned (as
/// cuMemAlloc's do) and ends within 256 bytes of an inaccessible page, so
/// that a kernel reading or writing past a buffer faults here instead of
/// reading a neighbour (the host-compiled kernels are not instrumented); it
/// starts filled with 0xff (NaN as floats), as a real allocation starts
/// undefined, not zeroed; and freeing it unmaps it, so a later access
/// faults too.
struct Mapping {
  char *base;
  size_t length;
};
std::mutex memoryMutex;
std::unordered_map<const void *, Mapping> mappings;
// The stand-in device's memory: bigger requests fail as out of memory
// instead of filling the host's.
constexpr size_t kDeviceBytes = size_t(4) << 30;

void *deviceAllocate(size_t bytes) {
  if (bytes > kDeviceBytes)
    return nullptr;
  const size_t page = sysconf(_SC_PAGESIZE);
  const size_t size = (std::max<size_t>(bytes, 1) + 255) / 256 * 256;
  const size_t length = (size + page - 1) / page * page + page;
  void *map = mmap(nullptr, length, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED)
    return nullptr;
  char *base = static_cast<char *>(map);
  mprotect(base + length - page, page, PROT_NONE);
  char *p = base + length - page - size;
  std::memset(p, 0xff, size);
  std::lock_guard<std::mutex> lock(memoryMutex);
  mappings[p] = {base, length};
  return p;
}

void deviceFree(void *p) {
  std::lock_guard<std::mutex> lock(memoryMutex);
  auto found = mappings.find(p);
  if (found == mappings.end())
    return;
  munmap(found->second.base, found->second.length);
  mappings.erase(found);
}

uint64_t allocations = 0;

/// Calls of the kinds in `faultKinds` to go before one fails; negative:
/// none fails.
int64_t callsBeforeFault = -1;
unsigned faultKinds = 0;

/// The emulator's reason for the last launch that failed.
std::string lastLaunchFailure;

/// cuOccupancyMaxActiveBlocksPerMultiprocessor's answer.
int residentBlocks = 4;

/// Whether this call, of `kind`, is the one to fail.
bool fault(swan::test::FakeCudaCall kind) {
  if (callsBeforeFault < 0 || !(faultKinds & kind))
    return false;
  return callsBeforeFault-- == 0;
}

} // namespace

extern "C" {

CUresult cuInit(unsigned) { return kSuccess; }
CUresult cuDeviceGetCount(int *count) {
  *count = 1;
  return kSuccess;
}
CUresult cuDeviceGet(int *device, int ordinal) {
  *device = ordinal;
  return ordinal == 0 ? kSuccess : kInvalidValue;
}
CUresult cuDeviceGetName(char *name, int length, int) {
  std::strncpy(name, "swan fake CUDA device (host memory)", length);
  return kSuccess;
}
CUresult cuDeviceGetAttribute(int *value, int attribute, int) {
  // Multiprocessors 16; compute capability 9.0.
  *value = attribute == 16 ? 16 : attribute == 75 ? 9 : 0;
  return kSuccess;
}
CUresult cuDevicePrimaryCtxRetain(void **context, int) {
  static int primary;
  *context = &primary;
  return kSuccess;
}
CUresult cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
CUresult cuCtxSetCurrent(void *) { return kSuccess; }
CUresult cuCtxSynchronize() {
  return fault(swan::test::kFakeSynchronize) ? kLaunchFailed : kSuccess;
}

uint64_t swanFakeCudaAllocations() { return allocations; }

void swanFakeCudaFailAfter(int64_t calls, unsigned kinds) {
  callsBeforeFault = calls;
  faultKinds = kinds;
}

const char *swanFakeCudaLastLaunchFailure() {
  return lastLaunchFailure.c_str();
}

void swanFakeCudaSetResidentBlocks(int blocks) { residentBlocks = blocks; }

CUresult cuMemAlloc_v2(unsigned long long *address, size_t bytes) {
  if (fault(swan::test::kFakeAllocation))
    return kOutOfMemory;
  void *p = deviceAllocate(bytes);
  if (!p)
    return kOutOfMemory;
  ++allocations;
  *address = reinterpret_cast<uintptr_t>(p);
  return kSuccess;
}
CUresult cuMemFree_v2(unsigned long long address) {
  deviceFree(reinterpret_cast<void *>(address));
  return kSuccess;
}
CUresult cuMemcpyHtoD_v2(unsigned long long dst, const void *src,
                         size_t bytes) {
  if (fault(swan::test::kFakeCopyToDevice))
    return kLaunchFailed;
  std::memcpy(reinterpret_cast<void *>(dst), src, bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t bytes) {
  if (fault(swan::test::kFakeCopyToHost))
    return kLaunchFailed;
  std::memcpy(dst, reinterpret_cast<const void *>(src), bytes);
  return kSuccess;
}
CUresult cuMemcpyDtoD_v2(unsigned long long dst, unsigned long long src,
                         size_t bytes) {
  if (fault(swan::test::kFakeCopyOnDevice))
    return kLaunchFailed;
  std::memmove(reinterpret_cast<void *>(dst),
               reinterpret_cast<const void *>(src), bytes);
  return kSuccess;
}

CUresult cuModuleLoadDataEx(void **module, const void *image, unsigned, int *,
                            void **) {
  const auto *kernels = emulatedModule(static_cast<const char *>(image));
  if (!kernels)
    return kInvalidPtx;
  *module = const_cast<swan::emulator_abi::EmulatedKernel *>(kernels);
  return kSuccess;
}
CUresult cuModuleUnload(void *) { return kSuccess; }
CUresult cuModuleGetFunction(void **function, void *module, const char *name) {
  for (auto *k =
           static_cast<const swan::emulator_abi::EmulatedKernel *>(module);
       k->name; ++k)
    if (std::strcmp(k->name, name) == 0) {
      *function = const_cast<swan::emulator_abi::EmulatedKernel *>(k);
      return kSuccess;
    }
  return kNotFound;
}
CUresult cuLaunchKernel(void *function, unsigned gridX, unsigned gridY,
                        unsigned gridZ, unsigned blockX, unsigned blockY,
                        unsigned blockZ, unsigned, void *, void **params,
                        void **) {
  if (fault(swan::test::kFakeLaunch))
    return kLaunchFailed;
  const unsigned grid[3] = {gridX, gridY, gridZ};
  const unsigned block[3] = {blockX, blockY, blockZ};
  std::string error = swan::test::emulateLaunch(
      *static_cast<const swan::emulator_abi::EmulatedKernel *>(function), grid,
      block, params);
  if (error.empty())
    return kSuccess;
  std::fprintf(stderr, "swan fake CUDA driver: %s\n", error.c_str());
  lastLaunchFailure = error;
  return kLaunchFailed;
}

CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, void *, int,
                                                     size_t) {
  *blocks = residentBlocks;
  return kSuccess;
}

CUresult cuEventCreate(void **event, unsigned) {
  *event = nullptr;
  return kSuccess;
}
CUresult cuEventRecord(void *, void *) { return kSuccess; }
CUresult cuEventSynchronize(void *) { return kSuccess; }
CUresult cuEventElapsedTime(float *ms, void *, void *) {
  *ms = 0;
  return kSuccess;
}
CUresult cuEventDestroy_v2(void *) { return kSuccess; }
CUresult cuGetErrorString(CUresult, const char **text) {
  *text = "fake driver error";
  return kSuccess;
}

} // extern "C"
