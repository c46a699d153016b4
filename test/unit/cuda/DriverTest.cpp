//===- DriverTest.cpp - the CUDA driver, opened at run time ---------------===//
//
// The driver is opened with dlopen when a CUDA device is first asked for:
// without one, opening must fail as Unsupported and say why; with one (a
// GPU, or the stand-in driver as `FakeDriver.*`), the device must describe
// itself.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CUDA/Driver.h"

#include <gtest/gtest.h>

using namespace swan;
using namespace swan::cuda;

namespace {


TEST(CudaDriver, MissingDriverLibraryIsUnsupportedWithReason) {
  std::unique_ptr<Device> device;
  Status s = Device::open(device, 0, "libswan-test-no-such-cuda.so.1");
  EXPECT_EQ(s.code(), StatusCode::Unsupported);
  EXPECT_NE(s.message().find("no CUDA driver"), std::string::npos)
      << s.message();
  EXPECT_EQ(device, nullptr);
}

TEST(CudaDriver, DefaultDriverOpensOrSaysWhyNot) {
  std::unique_ptr<Device> device;
  Status s = Device::open(device);
  if (!s.isOk()) {
    // The only acceptable failure on a machine without a GPU.
    EXPECT_EQ(s.code(), StatusCode::Unsupported) << s.message();
    EXPECT_FALSE(s.message().empty());
    EXPECT_EQ(device, nullptr);
    return;
  }
  ASSERT_NE(device, nullptr);
  EXPECT_FALSE(device->name().empty());
  EXPECT_GT(device->multiprocessorCount(), 0);
  EXPECT_GE(device->computeCapabilityMajor(), 8)
      << "the kernels target sm_80 and newer";
}

} // namespace
