//===- EmulatorABI.h - host-lowered kernels and their emulator --*- C++ -*-===//
//
// `swan-lower-gpu-to-host` compiles the GPU kernels for the host, where the
// stand-in CUDA driver of the tests runs them one GPU thread per fiber
// (test/lib/KernelEmulator.cpp). The kernels call the emulator through the
// functions named here and the emulator finds them through the table laid
// out here. Both sides include this header; it depends on nothing.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_CODEGEN_GPU_EMULATORABI_H
#define SWAN_CODEGEN_GPU_EMULATORABI_H

#include <cstdint>

namespace swan::emulator_abi {

/// `int64_t f(int32_t dimension)`: dimension 0, 1, 2 is x, y, z.
inline constexpr const char *kThreadId = "swan_emu_thread_id";
inline constexpr const char *kBlockId = "swan_emu_block_id";
inline constexpr const char *kBlockDim = "swan_emu_block_dim";
inline constexpr const char *kGridDim = "swan_emu_grid_dim";
/// `void f()`: gpu.barrier.
inline constexpr const char *kBarrier = "swan_emu_barrier";
/// `void f(int32_t mask)`: nvvm.bar.warp.sync.
inline constexpr const char *kSyncWarp = "swan_emu_syncwarp";
/// `int32_t f(int32_t value, int32_t offset, int32_t width, int32_t mode)`:
/// gpu.shuffle on the value's 32 bits; the calling lane's result.
inline constexpr const char *kShuffle = "swan_emu_shuffle";
/// `int32_t f(int32_t offset, int32_t width, int32_t mode)`: whether the
/// calling lane's source lane lies inside the shuffle's width (0 or 1).
inline constexpr const char *kShuffleValid = "swan_emu_shuffle_valid";

/// `void f(const char *access, int32_t dimension, int64_t index, int64_t
/// size)`: the calling thread's memref access (described by `access`) is
/// about to use `index` in a dimension of extent `size`. The emulator fails
/// the launch and never returns, so the access does not run.
inline constexpr const char *kOutOfBounds = "swan_emu_out_of_bounds";

/// `void f(int64_t address, int64_t words, int32_t write, const char
/// *access)`: the calling thread reads (write 0) or writes `words` 32-bit
/// words of shared memory from `address`. The emulator fails the launch,
/// without returning, when another thread accessed one of them, one of the
/// two accesses a write, with no barrier or warp sync between.
inline constexpr const char *kSharedAccess = "swan_emu_shared_access";

/// `void f(int64_t address, int64_t elements, int32_t element_bytes,
/// int32_t write, const char *access)`: the calling thread reads or writes
/// `elements` consecutive elements of global memory from `address`. The
/// emulator fails the launch, without returning, when another block of the
/// launch wrote one of them and no handover orders the two: the writer
/// fenced (kFence) after its write, and the reader fenced after its block
/// counted itself with an atomic (kGlobalAtomic).
inline constexpr const char *kGlobalAccess = "swan_emu_global_access";
/// `void f()`: the calling thread is about to perform an atomic on global
/// memory (which the handover check does not see as an access).
inline constexpr const char *kGlobalAtomic = "swan_emu_global_atomic";
/// `void f()`: nvvm.memory.barrier at GPU or system scope.
inline constexpr const char *kFence = "swan_emu_fence";

/// gpu.shuffle's modes as the emulator receives them.
enum ShuffleMode : int32_t { kXor = 0, kUp = 1, kDown = 2, kIdx = 3 };

/// Suffix of a kernel's launcher, `void <kernel><suffix>(void **params)`:
/// the kernel's arguments as cuLaunchKernel receives them.
inline constexpr const char *kLauncherSuffix = "_launch";
/// Name (after the symbol prefix) of a module's kernel table, an array of
/// EmulatedKernel ending in {nullptr, nullptr}.
inline constexpr const char *kKernelTable = "kernels";

/// One of a kernel's shared-memory buffers (a workgroup attribution).
struct SharedBuffer {
  void *data;
  int64_t bytes;
};

struct EmulatedKernel {
  const char *name; ///< the kernel's name in the gpu.module
  void (*launch)(void **params);
  int32_t knownBlockSize[3]; ///< the kernel's known_block_size; 0: none
  const SharedBuffer *shared; ///< ends in {nullptr, 0}; may be null
};

} // namespace swan::emulator_abi

#endif // SWAN_CODEGEN_GPU_EMULATORABI_H
