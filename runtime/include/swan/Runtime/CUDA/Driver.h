//===- Driver.h - the CUDA driver, opened at run time -----------*- C++ -*-===//
//
// swan talks to NVIDIA GPUs through the CUDA driver API only, and opens the
// driver with dlopen("libcuda.so.1") when a CUDA device is first asked for:
// nothing links libcuda, so every binary starts, and runs its CPU path, on a
// machine without a driver. This layer knows nothing about MLIR or LLVM;
// the kernels it runs were compiled to PTX when swan was built.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_CUDA_DRIVER_H
#define SWAN_RUNTIME_CUDA_DRIVER_H

#include "swan/Runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace swan::cuda {

/// Every call of the CUDA layer reports a swan::Status.
using swan::Status;
using swan::StatusCode;

struct DriverApi;
class Device;

/// Bytes of device memory a call reads or writes: a whole Buffer (which
/// converts to one) or a part of it (Buffer::slice).
struct DeviceRange {
  uint64_t address = 0;
  size_t bytes = 0;
};

/// Device memory owned by one Device; freed when destroyed.
class Buffer {
public:
  Buffer() = default;
  Buffer(Buffer &&other) noexcept { *this = std::move(other); }
  Buffer &operator=(Buffer &&other) noexcept;
  Buffer(const Buffer &) = delete;
  Buffer &operator=(const Buffer &) = delete;
  ~Buffer();

  uint64_t address() const { return address_; }
  size_t bytes() const { return bytes_; }
  operator DeviceRange() const { return {address_, bytes_}; }
  /// Bytes [offset, offset + count); an empty range (which every call
  /// rejects) when they do not lie inside the buffer.
  DeviceRange slice(size_t offset, size_t count) const {
    if (offset > bytes_ || count > bytes_ - offset)
      return {};
    return {address_ + offset, count};
  }

private:
  friend class Device;
  const DriverApi *api_ = nullptr;
  uint64_t address_ = 0;
  size_t bytes_ = 0;
};

/// A loaded PTX module; unloaded when destroyed.
class Module {
public:
  Module() = default;
  Module(Module &&other) noexcept { *this = std::move(other); }
  Module &operator=(Module &&other) noexcept;
  Module(const Module &) = delete;
  Module &operator=(const Module &) = delete;
  ~Module();

  bool isLoaded() const { return handle_ != nullptr; }

private:
  friend class Device;
  const DriverApi *api_ = nullptr;
  void *handle_ = nullptr;
  /// Kernel handles already looked up: cuModuleGetFunction on every launch
  /// costs more than a small kernel runs.
  std::vector<std::pair<std::string, void *>> functions_;
};

/// Kernel parameters in the order of the generated kernel's signature;
/// memrefs use the expanded ABI of the LLVM lowering (allocated pointer,
/// aligned pointer, offset, sizes, strides).
class KernelArguments {
public:
  /// A dense row-major memref of the given sizes at `address`.
  void addMemRef(uint64_t address, std::initializer_list<int64_t> sizes);
  void addMemRef(uint64_t address, const std::vector<int64_t> &sizes);
  void addF32(float value);
  void addIndex(int64_t value);
  /// One pointer per parameter, for cuLaunchKernel; valid until the next add.
  void **pointers();
  size_t size() const { return slots_.size(); }

private:
  std::vector<uint64_t> slots_;
  std::vector<void *> pointers_;
};

struct LaunchShape {
  unsigned grid[3] = {1, 1, 1};
  unsigned block[3] = {1, 1, 1};
};

/// One GPU with its primary context made current on the calling thread.
class Device {
public:
  /// Opens the driver and GPU `ordinal`. The driver is `driverLibrary`, or
  /// when that is null the library the SWAN_CUDA_DRIVER environment
  /// variable names, or libcuda.so.1. Fails with StatusCode::Unsupported
  /// and a message saying why when there is no driver or no device.
  static Status open(std::unique_ptr<Device> &out, int ordinal = 0,
                     const char *driverLibrary = nullptr);
  ~Device();
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;

  const std::string &name() const { return name_; }
  int computeCapabilityMajor() const { return ccMajor_; }
  int computeCapabilityMinor() const { return ccMinor_; }
  int multiprocessorCount() const { return multiprocessors_; }

  /// Makes this GPU's context current on the calling thread: calls from a
  /// thread other than the one that opened it need that first.
  Status makeCurrent();

  Status allocate(size_t bytes, Buffer &out);
  /// Copies fail with InvalidArgument when `bytes` exceeds a range.
  Status copyToDevice(DeviceRange dst, const void *src, size_t bytes);
  Status copyToHost(void *dst, DeviceRange src, size_t bytes);
  Status copyOnDevice(DeviceRange dst, DeviceRange src, size_t bytes);

  /// Loads PTX text (JIT-compiled by the driver for this GPU); the JIT's
  /// error log is part of the message on failure.
  Status loadModule(const std::string &ptx, Module &out);
  Status launch(Module &module, const char *kernel, const LaunchShape &shape,
                KernelArguments &arguments);
  /// How many blocks of `blockSize` threads of `kernel` fit on one
  /// multiprocessor at once (its registers and shared memory decide).
  Status residentBlocks(Module &module, const char *kernel, int blockSize,
                        int &out);
  Status synchronize();

  /// Runs `work` (launches on the default stream) between two events and
  /// returns the GPU time in milliseconds.
  Status time(const std::function<Status()> &work, float &milliseconds);

private:
  Device() = default;
  Status check(int result, const char *what) const;
  /// The kernel's handle, looked up once per module.
  Status function(Module &module, const char *kernel, void *&out);

  std::unique_ptr<DriverApi> api_;
  void *library_ = nullptr;
  int device_ = 0;
  void *context_ = nullptr;
  std::string name_;
  int ccMajor_ = 0, ccMinor_ = 0, multiprocessors_ = 0;
};

} // namespace swan::cuda

#endif // SWAN_RUNTIME_CUDA_DRIVER_H
