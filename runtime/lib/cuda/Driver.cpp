//===- Driver.cpp - the CUDA driver, opened at run time -------------------===//

#include "swan/Runtime/CUDA/Driver.h"

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>

using namespace swan::cuda;

// The few driver API types swan needs, declared here so that building swan
// needs no CUDA headers; their ABI is fixed by the driver.
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = void *;
using CUmodule = void *;
using CUfunction = void *;
using CUevent = void *;
using CUstream = void *;

namespace {
constexpr CUresult kSuccess = 0;
constexpr CUresult kOutOfMemory = 2;
constexpr CUresult kNoDevice = 100;
constexpr int kAttrMultiprocessorCount = 16;
constexpr int kAttrComputeCapabilityMajor = 75;
constexpr int kAttrComputeCapabilityMinor = 76;
constexpr int kJitErrorLogBuffer = 5;
constexpr int kJitErrorLogBufferSizeBytes = 6;
} // namespace

struct swan::cuda::DriverApi {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuMemcpyDtoD)(CUdeviceptr, CUdeviceptr, size_t);
  CUresult (*cuModuleLoadDataEx)(CUmodule *, const void *, unsigned, int *,
                                 void **);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, unsigned, CUstream,
                             void **, void **);
  CUresult (*cuOccupancyMaxActiveBlocksPerMultiprocessor)(int *, CUfunction,
                                                          int, size_t);
  CUresult (*cuEventCreate)(CUevent *, unsigned);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  CUresult (*cuEventSynchronize)(CUevent);
  CUresult (*cuEventElapsedTime)(float *, CUevent, CUevent);
  CUresult (*cuEventDestroy)(CUevent);
  CUresult (*cuGetErrorString)(CUresult, const char **);
};

//===----------------------------------------------------------------------===//
// Buffer, Module, KernelArguments
//===----------------------------------------------------------------------===//

Buffer &Buffer::operator=(Buffer &&other) noexcept {
  if (this != &other) {
    if (api_ && address_)
      api_->cuMemFree(address_);
    api_ = other.api_;
    address_ = other.address_;
    bytes_ = other.bytes_;
    other.api_ = nullptr;
    other.address_ = 0;
    other.bytes_ = 0;
  }
  return *this;
}

Buffer::~Buffer() {
  if (api_ && address_)
    api_->cuMemFree(address_);
}

Module &Module::operator=(Module &&other) noexcept {
  if (this != &other) {
    if (api_ && handle_)
      api_->cuModuleUnload(handle_);
    api_ = other.api_;
    handle_ = other.handle_;
    functions_ = std::move(other.functions_);
    other.api_ = nullptr;
    other.handle_ = nullptr;
    other.functions_.clear();
  }
  return *this;
}

Module::~Module() {
  if (api_ && handle_)
    api_->cuModuleUnload(handle_);
}

void KernelArguments::addMemRef(uint64_t address,
                                const std::vector<int64_t> &sizes) {
  slots_.push_back(address); // allocated
  slots_.push_back(address); // aligned
  slots_.push_back(0);       // offset
  for (int64_t size : sizes)
    slots_.push_back(static_cast<uint64_t>(size));
  std::vector<int64_t> strides(sizes.size(), 1);
  for (size_t i = sizes.size(); i > 1; --i)
    strides[i - 2] = strides[i - 1] * sizes[i - 1];
  for (int64_t stride : strides)
    slots_.push_back(static_cast<uint64_t>(stride));
}

void KernelArguments::addMemRef(uint64_t address,
                                std::initializer_list<int64_t> sizes) {
  addMemRef(address, std::vector<int64_t>(sizes));
}

void KernelArguments::addF32(float value) {
  uint64_t slot = 0;
  std::memcpy(&slot, &value, sizeof(value));
  slots_.push_back(slot);
}

void KernelArguments::addIndex(int64_t value) {
  slots_.push_back(static_cast<uint64_t>(value));
}

void **KernelArguments::pointers() {
  pointers_.clear();
  for (uint64_t &slot : slots_)
    pointers_.push_back(&slot);
  return pointers_.data();
}

//===----------------------------------------------------------------------===//
// Device
//===----------------------------------------------------------------------===//

namespace {
template <typename Fn>
bool resolve(void *library, const char *symbol, Fn &out,
             std::string &missing) {
  out = reinterpret_cast<Fn>(dlsym(library, symbol));
  if (!out) {
    missing = symbol;
    return false;
  }
  return true;
}
} // namespace

Status Device::check(int result, const char *what) const {
  if (result == kSuccess)
    return Status::ok();
  const char *text = nullptr;
  if (api_ && api_->cuGetErrorString)
    api_->cuGetErrorString(result, &text);
  return Status::error(result == kOutOfMemory ? StatusCode::OutOfMemory
                                              : StatusCode::DriverError,
                       std::string(what) + " failed: CUDA error " +
                           std::to_string(result) +
                           (text ? std::string(" (") + text + ")" : ""));
}

Status Device::open(std::unique_ptr<Device> &out, int ordinal,
                    const char *driverLibrary) {
  if (!driverLibrary) {
    // Where the loader does not find the driver, or a stand-in (the tests').
    const char *named = std::getenv("SWAN_CUDA_DRIVER");
    driverLibrary = named && *named ? named : "libcuda.so.1";
  }
  std::unique_ptr<Device> device(new Device());
  device->library_ = dlopen(driverLibrary, RTLD_NOW | RTLD_LOCAL);
  if (!device->library_) {
    const char *why = dlerror();
    return Status::error(StatusCode::Unsupported,
                         std::string("no CUDA driver: cannot open ") +
                             driverLibrary + " (" + (why ? why : "unknown") +
                             "); the CUDA backend needs an NVIDIA GPU and "
                             "its driver");
  }
  device->api_ = std::make_unique<DriverApi>();
  DriverApi &api = *device->api_;
  void *lib = device->library_;
  std::string missing;
  bool resolved =
      resolve(lib, "cuInit", api.cuInit, missing) &&
      resolve(lib, "cuDeviceGetCount", api.cuDeviceGetCount, missing) &&
      resolve(lib, "cuDeviceGet", api.cuDeviceGet, missing) &&
      resolve(lib, "cuDeviceGetName", api.cuDeviceGetName, missing) &&
      resolve(lib, "cuDeviceGetAttribute", api.cuDeviceGetAttribute, missing) &&
      resolve(lib, "cuDevicePrimaryCtxRetain", api.cuDevicePrimaryCtxRetain,
              missing) &&
      resolve(lib, "cuDevicePrimaryCtxRelease_v2",
              api.cuDevicePrimaryCtxRelease, missing) &&
      resolve(lib, "cuCtxSetCurrent", api.cuCtxSetCurrent, missing) &&
      resolve(lib, "cuCtxSynchronize", api.cuCtxSynchronize, missing) &&
      resolve(lib, "cuMemAlloc_v2", api.cuMemAlloc, missing) &&
      resolve(lib, "cuMemFree_v2", api.cuMemFree, missing) &&
      resolve(lib, "cuMemcpyHtoD_v2", api.cuMemcpyHtoD, missing) &&
      resolve(lib, "cuMemcpyDtoH_v2", api.cuMemcpyDtoH, missing) &&
      resolve(lib, "cuMemcpyDtoD_v2", api.cuMemcpyDtoD, missing) &&
      resolve(lib, "cuModuleLoadDataEx", api.cuModuleLoadDataEx, missing) &&
      resolve(lib, "cuModuleUnload", api.cuModuleUnload, missing) &&
      resolve(lib, "cuModuleGetFunction", api.cuModuleGetFunction, missing) &&
      resolve(lib, "cuLaunchKernel", api.cuLaunchKernel, missing) &&
      resolve(lib, "cuOccupancyMaxActiveBlocksPerMultiprocessor",
              api.cuOccupancyMaxActiveBlocksPerMultiprocessor, missing) &&
      resolve(lib, "cuEventCreate", api.cuEventCreate, missing) &&
      resolve(lib, "cuEventRecord", api.cuEventRecord, missing) &&
      resolve(lib, "cuEventSynchronize", api.cuEventSynchronize, missing) &&
      resolve(lib, "cuEventElapsedTime", api.cuEventElapsedTime, missing) &&
      resolve(lib, "cuEventDestroy_v2", api.cuEventDestroy, missing) &&
      resolve(lib, "cuGetErrorString", api.cuGetErrorString, missing);
  if (!resolved)
    return Status::error(StatusCode::Unsupported,
                         std::string("CUDA driver ") + driverLibrary +
                             " lacks " + missing + "; it is too old");

  CUresult init = api.cuInit(0);
  if (init == kNoDevice)
    return Status::error(StatusCode::Unsupported,
                         "no CUDA device: the driver is installed but sees "
                         "no GPU");
  if (Status s = device->check(init, "cuInit"); !s.isOk())
    return Status::error(StatusCode::Unsupported, s.message());
  int count = 0;
  if (Status s = device->check(api.cuDeviceGetCount(&count),
                               "cuDeviceGetCount");
      !s.isOk())
    return s;
  if (count == 0)
    return Status::error(StatusCode::Unsupported, "no CUDA device");
  if (ordinal < 0 || ordinal >= count)
    return Status::error(StatusCode::InvalidArgument,
                         "CUDA device " + std::to_string(ordinal) +
                             " does not exist (" + std::to_string(count) +
                             " present)");
  if (Status s = device->check(api.cuDeviceGet(&device->device_, ordinal),
                               "cuDeviceGet");
      !s.isOk())
    return s;
  char name[256] = {};
  api.cuDeviceGetName(name, sizeof(name) - 1, device->device_);
  device->name_ = name;
  api.cuDeviceGetAttribute(&device->ccMajor_, kAttrComputeCapabilityMajor,
                           device->device_);
  api.cuDeviceGetAttribute(&device->ccMinor_, kAttrComputeCapabilityMinor,
                           device->device_);
  api.cuDeviceGetAttribute(&device->multiprocessors_,
                           kAttrMultiprocessorCount, device->device_);
  if (Status s = device->check(
          api.cuDevicePrimaryCtxRetain(&device->context_, device->device_),
          "cuDevicePrimaryCtxRetain");
      !s.isOk())
    return s;
  if (Status s = device->check(api.cuCtxSetCurrent(device->context_),
                               "cuCtxSetCurrent");
      !s.isOk())
    return s;
  out = std::move(device);
  return Status::ok();
}

Device::~Device() {
  if (api_ && context_)
    api_->cuDevicePrimaryCtxRelease(device_);
  // The driver stays loaded: unloading libcuda while the process lives is
  // not supported by NVIDIA and buys nothing.
}

Status Device::makeCurrent() {
  return check(api_->cuCtxSetCurrent(context_), "cuCtxSetCurrent");
}

Status Device::allocate(size_t bytes, Buffer &out) {
  CUdeviceptr address = 0;
  if (Status s = check(api_->cuMemAlloc(&address, bytes ? bytes : 1),
                       "cuMemAlloc");
      !s.isOk())
    return s;
  Buffer buffer;
  buffer.api_ = api_.get();
  buffer.address_ = address;
  buffer.bytes_ = bytes;
  out = std::move(buffer);
  return Status::ok();
}

static Status checkCopy(size_t bytes, DeviceRange range) {
  if (bytes > range.bytes)
    return Status::error(StatusCode::InvalidArgument,
                         "copy of " + std::to_string(bytes) +
                             " bytes larger than its device range (" +
                             std::to_string(range.bytes) + " bytes)");
  return Status::ok();
}

Status Device::copyToDevice(DeviceRange dst, const void *src, size_t bytes) {
  if (Status s = checkCopy(bytes, dst); !s.isOk())
    return s;
  if (bytes == 0)
    return Status::ok();
  return check(api_->cuMemcpyHtoD(dst.address, src, bytes), "cuMemcpyHtoD");
}

Status Device::copyToHost(void *dst, DeviceRange src, size_t bytes) {
  if (Status s = checkCopy(bytes, src); !s.isOk())
    return s;
  if (bytes == 0)
    return Status::ok();
  return check(api_->cuMemcpyDtoH(dst, src.address, bytes), "cuMemcpyDtoH");
}

Status Device::copyOnDevice(DeviceRange dst, DeviceRange src, size_t bytes) {
  if (Status s = checkCopy(bytes, src); !s.isOk())
    return s;
  if (Status s = checkCopy(bytes, dst); !s.isOk())
    return s;
  if (bytes == 0)
    return Status::ok();
  return check(api_->cuMemcpyDtoD(dst.address, src.address, bytes),
               "cuMemcpyDtoD");
}

Status Device::loadModule(const std::string &ptx, Module &out) {
  char log[8192] = {};
  int options[] = {kJitErrorLogBuffer, kJitErrorLogBufferSizeBytes};
  void *values[] = {log, reinterpret_cast<void *>(sizeof(log) - 1)};
  CUmodule handle = nullptr;
  CUresult result =
      api_->cuModuleLoadDataEx(&handle, ptx.c_str(), 2, options, values);
  if (result != kSuccess) {
    Status s = check(result, "cuModuleLoadDataEx");
    return Status::error(s.code(), s.message() + ": " + log);
  }
  Module module;
  module.api_ = api_.get();
  module.handle_ = handle;
  out = std::move(module);
  return Status::ok();
}

Status Device::function(Module &module, const char *kernel, void *&out) {
  if (!module.isLoaded())
    return Status::error(StatusCode::InvalidArgument, "module not loaded");
  for (const auto &[name, handle] : module.functions_)
    if (name == kernel) {
      out = handle;
      return Status::ok();
    }
  CUfunction function = nullptr;
  if (Status s =
          check(api_->cuModuleGetFunction(&function, module.handle_, kernel),
                "cuModuleGetFunction");
      !s.isOk())
    return Status::error(s.code(), s.message() + " for " + kernel);
  module.functions_.emplace_back(kernel, function);
  out = function;
  return Status::ok();
}

Status Device::residentBlocks(Module &module, const char *kernel, int blockSize,
                              int &out) {
  void *handle = nullptr;
  if (Status s = function(module, kernel, handle); !s.isOk())
    return s;
  return check(api_->cuOccupancyMaxActiveBlocksPerMultiprocessor(
                   &out, static_cast<CUfunction>(handle), blockSize,
                   /*dynamicSMemSize=*/0),
               "cuOccupancyMaxActiveBlocksPerMultiprocessor");
}

Status Device::launch(Module &module, const char *kernel,
                      const LaunchShape &shape, KernelArguments &arguments) {
  void *handle = nullptr;
  if (Status s = function(module, kernel, handle); !s.isOk())
    return s;
  CUfunction function = static_cast<CUfunction>(handle);
  return check(api_->cuLaunchKernel(function, shape.grid[0], shape.grid[1],
                                    shape.grid[2], shape.block[0],
                                    shape.block[1], shape.block[2],
                                    /*sharedMemBytes=*/0, /*stream=*/nullptr,
                                    arguments.pointers(), nullptr),
               kernel);
}

Status Device::synchronize() {
  return check(api_->cuCtxSynchronize(), "cuCtxSynchronize");
}

Status Device::time(const std::function<Status()> &work,
                    float &milliseconds) {
  CUevent start = nullptr, stop = nullptr;
  if (Status s = check(api_->cuEventCreate(&start, 0), "cuEventCreate");
      !s.isOk())
    return s;
  if (Status s = check(api_->cuEventCreate(&stop, 0), "cuEventCreate");
      !s.isOk()) {
    api_->cuEventDestroy(start);
    return s;
  }
  Status s = check(api_->cuEventRecord(start, nullptr), "cuEventRecord");
  if (s.isOk())
    s = work();
  if (s.isOk())
    s = check(api_->cuEventRecord(stop, nullptr), "cuEventRecord");
  if (s.isOk())
    s = check(api_->cuEventSynchronize(stop), "cuEventSynchronize");
  if (s.isOk())
    s = check(api_->cuEventElapsedTime(&milliseconds, start, stop),
              "cuEventElapsedTime");
  api_->cuEventDestroy(start);
  api_->cuEventDestroy(stop);
  return s;
}
