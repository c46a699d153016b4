//===- KernelsTest.cpp - the CUDA kernels against the reference -----------===//
//
// Every case runs the generated kernels against swan::reference on fresh
// random inputs, outputs poisoned with NaN first: on a GPU (scripts/
// gpu-check) and, as `FakeDriver.*`, over the stand-in driver, whose kernel
// emulator runs them on any machine (docs/EMULATOR.md). Against the real
// driver without a GPU only the "no CUDA" paths run and the rest skip,
// saying why.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CUDA/Kernels.h"
#include "swan/Runtime/Eval/Reference.h"

#include "FakeCudaDriver.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <random>

using namespace swan;
using namespace swan::cuda;

namespace {

//===----------------------------------------------------------------------===//
// The embedded kernels
//===----------------------------------------------------------------------===//

TEST(CudaKernels, EmbeddedSpecialisations) {
  for (int64_t dim : {64, 128, 256})
    for (int64_t group : {1, 4, 8})
      for (StorageType storage : {StorageType::F16, StorageType::F32})
        EXPECT_TRUE(DeviceKernels::available(dim, group, storage))
            << dim << " " << group;
  EXPECT_FALSE(DeviceKernels::available(96, 4, StorageType::F16));
  EXPECT_FALSE(DeviceKernels::available(128, 3, StorageType::F32));
}

TEST(CudaKernels, ArgumentsUseTheExpandedMemRefABI) {
  KernelArguments args;
  args.addMemRef(0x1000, {2, 3, 5});
  args.addF32(1.5f);
  args.addIndex(7);
  // 2 pointers + offset + 3 sizes + 3 strides, then the two scalars.
  ASSERT_EQ(args.size(), 11u);
  void **p = args.pointers();
  auto slot = [&](int i) { return *static_cast<uint64_t *>(p[i]); };
  EXPECT_EQ(slot(0), 0x1000u);
  EXPECT_EQ(slot(1), 0x1000u);
  EXPECT_EQ(slot(2), 0u);
  EXPECT_EQ(slot(3), 2u);
  EXPECT_EQ(slot(5), 5u);
  EXPECT_EQ(slot(6), 15u);
  EXPECT_EQ(slot(7), 5u);
  EXPECT_EQ(slot(8), 1u);
  float f;
  std::memcpy(&f, p[9], sizeof(f));
  EXPECT_EQ(f, 1.5f);
  EXPECT_EQ(slot(10), 7u);
}

//===----------------------------------------------------------------------===//
// Numerics on the GPU
//===----------------------------------------------------------------------===//

/// One device for the whole suite; null (with the reason) without a GPU.
Device *gpu(std::string &why) {
  static std::unique_ptr<Device> device;
  static std::string reason;
  static bool tried = false;
  if (!tried) {
    tried = true;
    Status s = Device::open(device);
    if (!s.isOk())
      reason = s.message();
  }
  why = reason;
  return device.get();
}

#define REQUIRE_GPU(device)                                                    \
  std::string whyNoGpu;                                                        \
  Device *device = gpu(whyNoGpu);                                              \
  if (!device)                                                                 \
  GTEST_SKIP() << "no CUDA GPU here: " << whyNoGpu

#define ASSERT_OK(expr)                                                        \
  do {                                                                         \
    Status status_ = (expr);                                                   \
    ASSERT_TRUE(status_.isOk()) << status_.message();                         \
  } while (0)

std::vector<double> randomNormal(std::mt19937_64 &rng, size_t n) {
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> v(n);
  for (double &x : v)
    x = normal(rng);
  return v;
}

/// Host image of a device array in the storage type, plus what the device
/// will actually see (the stored value rounded to that type).
struct StoredArray {
  StorageType storage;
  std::vector<uint8_t> bytes;
  size_t count = 0;

  StoredArray(StorageType storage, size_t count)
      : storage(storage), bytes(count * elementBytes(storage)), count(count) {}
  /// Stores x and returns the value the kernel will read back.
  double set(size_t i, double x) {
    if (storage == StorageType::F16) {
      _Float16 h = static_cast<_Float16>(x);
      std::memcpy(&bytes[2 * i], &h, 2);
      return static_cast<double>(h);
    }
    float f = static_cast<float>(x);
    std::memcpy(&bytes[4 * i], &f, 4);
    return f;
  }
  double get(size_t i) const {
    if (storage == StorageType::F16) {
      _Float16 h;
      std::memcpy(&h, &bytes[2 * i], 2);
      return static_cast<double>(h);
    }
    float f;
    std::memcpy(&f, &bytes[4 * i], 4);
    return f;
  }
};

std::vector<float> toFloat(const std::vector<double> &v) {
  return std::vector<float>(v.begin(), v.end());
}

template <typename T>
void upload(Device &device, const std::vector<T> &host, Buffer &buffer) {
  ASSERT_OK(device.allocate(host.size() * sizeof(T), buffer));
  ASSERT_OK(device.copyToDevice(buffer, host.data(), host.size() * sizeof(T)));
}

/// Poisons a device output so that an element the kernel skips shows up.
void poison(Device &device, Buffer &buffer, uint8_t byte) {
  std::vector<uint8_t> junk(buffer.bytes(), byte);
  ASSERT_OK(device.copyToDevice(buffer, junk.data(), junk.size()));
}

std::unique_ptr<DeviceKernels> loadKernels(Device &device, int64_t dim,
                                       int64_t group, StorageType storage) {
  std::unique_ptr<DeviceKernels> set;
  Status s = DeviceKernels::load(device, dim, group, storage, set);
  EXPECT_TRUE(s.isOk()) << s.message();
  return set;
}

class CudaRotateTest
    : public ::testing::TestWithParam<std::tuple<int64_t, int64_t>> {};

TEST_P(CudaRotateTest, MatchesReference) {
  REQUIRE_GPU(device);
  auto [dim, rows] = GetParam();
  std::mt19937_64 rng(1000 + dim * 7 + rows);
  auto set = loadKernels(*device, dim, 1, StorageType::F32);
  ASSERT_NE(set, nullptr);
  std::vector<double> x = randomNormal(rng, rows * dim);
  std::vector<double> r = swan::reference::randomOrthogonal(dim, rng);
  Buffer dx, dr, dout;
  upload(*device, toFloat(x), dx);
  upload(*device, toFloat(r), dr);
  ASSERT_OK(device->allocate(rows * dim * sizeof(float), dout));
  poison(*device, dout, 0xFF); // NaN
  ASSERT_OK(set->rotate(dx, rows, dr, dout));
  ASSERT_OK(device->synchronize());
  std::vector<float> out(rows * dim);
  ASSERT_OK(device->copyToHost(out.data(), dout, out.size() * sizeof(float)));
  std::vector<double> want = reference::rotate(x, rows, dim, r);
  for (size_t i = 0; i < out.size(); ++i)
    ASSERT_NEAR(out[i], want[i], 1e-4) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaRotateTest,
                         ::testing::Combine(::testing::Values(64, 128, 256),
                                            ::testing::Values(1, 37)));

class CudaCompressTest : public ::testing::TestWithParam<
                             std::tuple<int64_t, int64_t, StorageType>> {};

// compress on f32 rows, and compress_stored on rows already in the storage
// type (how the cache winnows the rows leaving its buffer).
TEST_P(CudaCompressTest, KeepsTheLargestComponentsInAscendingOrder) {
  REQUIRE_GPU(device);
  auto [dim, k, storage] = GetParam();
  const int64_t rows = 53;
  auto set = loadKernels(*device, dim, 1, storage);
  ASSERT_NE(set, nullptr);
  for (bool stored : {false, true}) {
    SCOPED_TRACE(stored ? "compress_stored" : "compress");
    std::mt19937_64 rng(2000 + dim * 13 + k + stored);
    std::vector<double> x = randomNormal(rng, rows * dim);
    std::vector<double> r = swan::reference::randomOrthogonal(dim, rng);
    std::vector<float> rf = toFloat(r);
    // The input as the kernel reads it, in double.
    std::vector<double> xd(x.size());
    StoredArray xs(stored ? storage : StorageType::F32, x.size());
    for (size_t i = 0; i < x.size(); ++i)
      xd[i] = xs.set(i, x[i]);
    Buffer dx, dr, dvalues, dindices;
    upload(*device, xs.bytes, dx);
    upload(*device, rf, dr);
    StoredArray values(storage, rows * k);
    ASSERT_OK(device->allocate(values.bytes.size(), dvalues));
    ASSERT_OK(device->allocate(rows * k, dindices));
    poison(*device, dvalues, 0xFF);
    poison(*device, dindices, 0xFF);
    ASSERT_OK(stored ? set->compressStored(dx, rows, dr, k, dvalues, dindices)
                     : set->compress(dx, rows, dr, k, dvalues, dindices));
    ASSERT_OK(device->synchronize());
    std::vector<uint8_t> indices(rows * k);
    ASSERT_OK(device->copyToHost(values.bytes.data(), dvalues,
                                 values.bytes.size()));
    ASSERT_OK(device->copyToHost(indices.data(), dindices, indices.size()));

    std::vector<double> rd(rf.begin(), rf.end());
    std::vector<double> y = reference::rotate(xd, rows, dim, rd);
    const double rounding = storage == StorageType::F16 ? 1e-3 : 1e-5;
    int64_t exactRows = 0;
    for (int64_t row = 0; row < rows; ++row) {
      const double *yr = &y[row * dim];
      reference::Winnowed want = reference::winnow(yr, dim, k);
      std::vector<bool> kept(dim, false);
      bool exact = true;
      for (int64_t j = 0; j < k; ++j) {
        int64_t index = indices[row * k + j];
        ASSERT_LT(index, dim) << "row " << row;
        if (j > 0)
          ASSERT_GT(index, indices[row * k + j - 1]) << "row " << row;
        kept[index] = true;
        double got = values.get(row * k + j);
        ASSERT_NEAR(got, yr[index], rounding * (1 + std::abs(yr[index])))
            << "row " << row << " slot " << j;
        exact &= index == want.indices[j];
      }
      // Every kept magnitude is at least every dropped one (up to f32
      // rounding of the rotation, which may swap near-ties).
      double smallestKept = std::numeric_limits<double>::infinity();
      double largestDropped = 0;
      for (int64_t d = 0; d < dim; ++d)
        (kept[d] ? smallestKept : largestDropped) =
            kept[d] ? std::min(smallestKept, std::abs(yr[d]))
                    : std::max(largestDropped, std::abs(yr[d]));
      ASSERT_GE(smallestKept, largestDropped - 1e-4) << "row " << row;
      exactRows += exact;
    }
    EXPECT_GE(exactRows, rows - 2) << "too many rows differ from the reference";

    // The mask encoding of the same rows, into wider value rows: the same
    // values in the same order, the bits of the same indices, and the
    // slots past k untouched.
    const int64_t width = std::min<int64_t>(dim, k + 3), maskBytes = dim / 8;
    Buffer dwide, dmasks;
    StoredArray wide(storage, rows * width);
    ASSERT_OK(device->allocate(wide.bytes.size(), dwide));
    ASSERT_OK(device->allocate(rows * maskBytes, dmasks));
    poison(*device, dwide, 0xFF);
    poison(*device, dmasks, 0xFF);
    ASSERT_OK(stored ? set->compressStored(dx, rows, dr, k, dwide, dmasks,
                                           SparseEncoding::Mask, width)
                     : set->compress(dx, rows, dr, k, dwide, dmasks,
                                     SparseEncoding::Mask, width));
    ASSERT_OK(device->synchronize());
    std::vector<uint8_t> masks(rows * maskBytes);
    ASSERT_OK(device->copyToHost(wide.bytes.data(), dwide, wide.bytes.size()));
    ASSERT_OK(device->copyToHost(masks.data(), dmasks, masks.size()));
    const size_t element = values.bytes.size() / (rows * k);
    for (int64_t row = 0; row < rows; ++row) {
      std::vector<uint8_t> want(maskBytes, 0);
      for (int64_t j = 0; j < k; ++j) {
        uint8_t d = indices[row * k + j];
        want[d / 8] |= uint8_t(1u << (d % 8));
        ASSERT_EQ(wide.get(row * width + j), values.get(row * k + j))
            << "row " << row << " slot " << j;
      }
      ASSERT_TRUE(
          std::equal(want.begin(), want.end(), masks.begin() + row * maskBytes))
          << "row " << row;
      for (int64_t j = k; j < width; ++j)
        for (size_t byte = 0; byte < element; ++byte)
          ASSERT_EQ(wide.bytes[(row * width + j) * element + byte], 0xFF)
              << "row " << row << " slot " << j << " was written";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CudaCompressTest,
    ::testing::Combine(::testing::Values(64, 128), ::testing::Values(1, 32, 64),
                       ::testing::Values(StorageType::F16, StorageType::F32)));

// A long cache gets one wave of partial blocks: as many as the driver says
// fit on the multiprocessors at once, the buffers' blocks included (over
// the stand-in, whose answer the test sets, the split count follows it).
TEST(CudaKernels, SplitsFillOneWaveOfResidentBlocks) {
  REQUIRE_GPU(device);
  auto setResident =
      swan::test::fakeDriverFunction<decltype(&swanFakeCudaSetResidentBlocks)>(
          "swanFakeCudaSetResidentBlocks");
  std::vector<int> answers = {0}; // 0: the real driver's
  if (setResident)
    answers = {2, 6};
  for (int answer : answers) {
    if (setResident)
      setResident(answer);
    auto set = loadKernels(*device, 128, 4, StorageType::F16);
    ASSERT_NE(set, nullptr);
    for (SparseEncoding encoding :
         {SparseEncoding::Indices, SparseEncoding::Mask}) {
      DecodeProblem problem;
      problem.kvHeads = 2;
      problem.sparseCapacity = 1 << 20;
      problem.encoding = encoding;
      const int resident = set->residentPartials(encoding, false, false);
      if (setResident)
        EXPECT_EQ(resident, answer);
      const int64_t wave = resident * device->multiprocessorCount();
      const int64_t blocks = (set->chooseSplits(problem) + 1) * 2;
      EXPECT_LE(blocks, wave) << "resident " << resident;
      EXPECT_GT(blocks, wave - 2) << "resident " << resident;
    }
  }
  if (setResident)
    setResident(4);
}

//===----------------------------------------------------------------------===//
// Decode attention
//===----------------------------------------------------------------------===//

struct DecodeCase {
  const char *name;
  int64_t dim, group, kvHeads;
  std::vector<int64_t> sparseLengths; // per sequence
  std::vector<int64_t> bufferLengths; // per sequence
  int64_t keyK, valueK;
  StorageType storage;
  bool rotatedOutput;
  int64_t splits; // 0: the runtime chooses
  /// k = D and fp32: compare with dense attention on the original K/V.
  bool denseOracle;
};

std::ostream &operator<<(std::ostream &os, const DecodeCase &c) {
  return os << c.name;
}

class CudaDecodeTest : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(CudaDecodeTest, MatchesReferenceOnTheDecompressedCache) {
  REQUIRE_GPU(device);
  const DecodeCase &c = GetParam();
  const int64_t D = c.dim, G = c.group, H = c.kvHeads;
  const int64_t B = c.sparseLengths.size();
  const int64_t L =
      std::max<int64_t>(1, *std::max_element(c.sparseLengths.begin(),
                                             c.sparseLengths.end()));
  const int64_t bufferSlots =
      std::max<int64_t>(1, *std::max_element(c.bufferLengths.begin(),
                                             c.bufferLengths.end()));
  std::mt19937_64 rng(std::hash<std::string>()(c.name));
  auto set = loadKernels(*device, D, G, c.storage);
  ASSERT_NE(set, nullptr);

  std::vector<double> rk(H * D * D), rv(H * D * D);
  for (int64_t h = 0; h < H; ++h) {
    std::vector<double> a = swan::reference::randomOrthogonal(D, rng);
    std::vector<double> b = swan::reference::randomOrthogonal(D, rng);
    std::copy(a.begin(), a.end(), rk.begin() + h * D * D);
    std::copy(b.begin(), b.end(), rv.begin() + h * D * D);
  }
  // Queries at a scale that makes the softmax peaked, not uniform.
  std::vector<double> query = randomNormal(rng, B * H * G * D);
  for (double &q : query)
    q = static_cast<float>(q * 2.0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));

  StoredArray keyValues(c.storage, B * H * L * c.keyK);
  StoredArray valueValues(c.storage, B * H * L * c.valueK);
  std::vector<uint8_t> keyIndices(B * H * L * c.keyK, 0),
      valueIndices(B * H * L * c.valueK, 0);
  StoredArray bufferKeys(c.storage, B * H * bufferSlots * D);
  StoredArray bufferValues(c.storage, B * H * bufferSlots * D);
  std::vector<double> want(B * H * G * D);

  for (int64_t s = 0; s < B; ++s) {
    for (int64_t h = 0; h < H; ++h) {
      const std::vector<double> rkh(rk.begin() + h * D * D,
                                    rk.begin() + (h + 1) * D * D);
      const std::vector<double> rvh(rv.begin() + h * D * D,
                                    rv.begin() + (h + 1) * D * D);
      const int64_t ls = c.sparseLengths[s], lb = c.bufferLengths[s];
      const int64_t tokens = ls + lb;
      std::vector<double> keys = randomNormal(rng, tokens * D);
      std::vector<double> values = randomNormal(rng, tokens * D);
      std::vector<double> rotatedKeys = reference::rotate(keys, tokens, D, rkh);
      std::vector<double> rotatedValues =
          reference::rotate(values, tokens, D, rvh);
      // What the cache holds, decompressed: still rotated.
      std::vector<double> heldKeys(tokens * D, 0.0), heldValues(tokens * D, 0.0);
      for (int64_t t = 0; t < ls; ++t) {
        size_t slot = (s * H + h) * L + t;
        reference::Winnowed wk =
            reference::winnow(&rotatedKeys[t * D], D, c.keyK);
        reference::Winnowed wv =
            reference::winnow(&rotatedValues[t * D], D, c.valueK);
        for (int64_t j = 0; j < c.keyK; ++j) {
          keyIndices[slot * c.keyK + j] = wk.indices[j];
          heldKeys[t * D + wk.indices[j]] =
              keyValues.set(slot * c.keyK + j, wk.values[j]);
        }
        for (int64_t j = 0; j < c.valueK; ++j) {
          valueIndices[slot * c.valueK + j] = wv.indices[j];
          heldValues[t * D + wv.indices[j]] =
              valueValues.set(slot * c.valueK + j, wv.values[j]);
        }
      }
      for (int64_t t = 0; t < lb; ++t) {
        size_t slot = (s * H + h) * bufferSlots + t;
        for (int64_t d = 0; d < D; ++d) {
          heldKeys[(ls + t) * D + d] =
              bufferKeys.set(slot * D + d, rotatedKeys[(ls + t) * D + d]);
          heldValues[(ls + t) * D + d] =
              bufferValues.set(slot * D + d, rotatedValues[(ls + t) * D + d]);
        }
      }
      std::vector<double> q(query.begin() + (s * H + h) * G * D,
                            query.begin() + (s * H + h + 1) * G * D);
      std::vector<double> o;
      if (c.denseOracle) {
        o = reference::attention(q, G, keys, values, tokens, D, scale);
      } else {
        o = reference::attention(
            q, G, reference::rotateBack(heldKeys, tokens, D, rkh),
            reference::rotateBack(heldValues, tokens, D, rvh), tokens, D,
            scale);
      }
      if (c.rotatedOutput)
        o = reference::rotate(o, G, D, rvh);
      std::copy(o.begin(), o.end(), want.begin() + (s * H + h) * G * D);
    }
  }

  std::vector<int32_t> sparseLengths(c.sparseLengths.begin(),
                                     c.sparseLengths.end());
  std::vector<int32_t> bufferLengths(c.bufferLengths.begin(),
                                     c.bufferLengths.end());
  Buffer dq, drk, drv, dkv, dki, dvv, dvi, dbk, dbv, dsl, dbl, dout;
  upload(*device, toFloat(query), dq);
  upload(*device, toFloat(rk), drk);
  upload(*device, toFloat(rv), drv);
  upload(*device, keyValues.bytes, dkv);
  upload(*device, keyIndices, dki);
  upload(*device, valueValues.bytes, dvv);
  upload(*device, valueIndices, dvi);
  upload(*device, bufferKeys.bytes, dbk);
  upload(*device, bufferValues.bytes, dbv);
  upload(*device, sparseLengths, dsl);
  upload(*device, bufferLengths, dbl);
  ASSERT_OK(device->allocate(want.size() * sizeof(float), dout));

  DecodeProblem problem;
  problem.batch = B;
  problem.kvHeads = H;
  problem.sparseCapacity = L;
  problem.keyK = c.keyK;
  problem.valueK = c.valueK;
  problem.bufferCapacity = bufferSlots;
  problem.scale = scale;
  problem.rotatedOutput = c.rotatedOutput;
  problem.splits = c.splits;
  DecodeBuffers buffers;
  buffers.query = dq;
  buffers.keyRotation = drk;
  buffers.valueRotation = drv;
  buffers.keyValues = dkv;
  buffers.keyIndices = dki;
  buffers.valueValues = dvv;
  buffers.valueIndices = dvi;
  buffers.bufferKeys = dbk;
  buffers.bufferValues = dbv;
  buffers.sparseLengths = dsl;
  buffers.bufferLengths = dbl;
  buffers.out = dout;

  // The paged layout of the same tokens: each sequence in blocks of its
  // own with more slots than it uses, as the GPU cache keeps them; the
  // unused slots are poisoned.
  const int64_t capacity = L + 3, slots = bufferSlots + 2;
  const size_t elem = elementBytes(c.storage);
  auto carve = [&](const std::vector<uint8_t> &from, int64_t s,
                   int64_t fromSlots, int64_t toSlots, size_t rowBytes,
                   Buffer &to) {
    std::vector<uint8_t> block(H * toSlots * rowBytes, 0xFF);
    for (int64_t h = 0; h < H; ++h)
      std::memcpy(&block[h * toSlots * rowBytes],
                  &from[(s * H + h) * fromSlots * rowBytes],
                  fromSlots * rowBytes);
    upload(*device, block, to);
  };
  // The same rows with occupancy masks instead of indices (the values are
  // in dimension order in both).
  const int64_t maskBytes = D / 8;
  auto masksOf = [&](const std::vector<uint8_t> &indices, int64_t k) {
    std::vector<uint8_t> masks(B * H * L * maskBytes, 0);
    for (int64_t row = 0; row < B * H * L; ++row)
      for (int64_t j = 0; j < k; ++j) {
        uint8_t d = indices[row * k + j];
        masks[row * maskBytes + d / 8] |= uint8_t(1u << (d % 8));
      }
    return masks;
  };
  const std::vector<uint8_t> keyMasks = masksOf(keyIndices, c.keyK);
  const std::vector<uint8_t> valueMasks = masksOf(valueIndices, c.valueK);
  Buffer dkm, dvm;
  upload(*device, keyMasks, dkm);
  upload(*device, valueMasks, dvm);

  std::vector<std::array<Buffer, 6>> blocks(B), maskBlocks(B);
  std::vector<DecodeSequence> sequences(B), maskSequences(B);
  for (int64_t s = 0; s < B; ++s) {
    std::array<Buffer, 6> &own = blocks[s];
    carve(keyValues.bytes, s, L, capacity, c.keyK * elem, own[0]);
    carve(keyIndices, s, L, capacity, c.keyK, own[1]);
    carve(valueValues.bytes, s, L, capacity, c.valueK * elem, own[2]);
    carve(valueIndices, s, L, capacity, c.valueK, own[3]);
    carve(bufferKeys.bytes, s, bufferSlots, slots, D * elem, own[4]);
    carve(bufferValues.bytes, s, bufferSlots, slots, D * elem, own[5]);
    carve(keyMasks, s, L, capacity, maskBytes, maskBlocks[s][1]);
    carve(valueMasks, s, L, capacity, maskBytes, maskBlocks[s][3]);
    DecodeSequence &q = sequences[s];
    q.keyValues = own[0];
    q.keyIndices = own[1];
    q.valueValues = own[2];
    q.valueIndices = own[3];
    q.bufferKeys = own[4];
    q.bufferValues = own[5];
    q.capacity = capacity;
    q.keyK = c.keyK;
    q.valueK = c.valueK;
    q.bufferCapacity = slots;
    q.sparseLength = c.sparseLengths[s];
    q.bufferLength = c.bufferLengths[s];
    maskSequences[s] = q;
    maskSequences[s].keyIndices = maskBlocks[s][1];
    maskSequences[s].valueIndices = maskBlocks[s][3];
  }
  PagedDecodeStep step;
  step.kvHeads = H;
  step.scale = scale;
  step.rotatedOutput = c.rotatedOutput;
  step.splits = c.splits;
  step.query = dq;
  step.keyRotation = drk;
  step.valueRotation = drv;
  step.out = dout;

  DecodeProblem maskProblem = problem;
  maskProblem.encoding = SparseEncoding::Mask;
  DecodeBuffers maskBuffers = buffers;
  maskBuffers.keyIndices = dkm;
  maskBuffers.valueIndices = dvm;
  PagedDecodeStep maskStep = step;
  maskStep.encoding = SparseEncoding::Mask;

  // With indices, the batch layout twice (the second run reuses the
  // workspace of the first), then the paged one; with masks, each once.
  const char *runs[] = {"batch layout", "batch layout again", "paged layout",
                        "batch layout, masks", "paged layout, masks"};
  for (int run = 0; run < 5; ++run) {
    SCOPED_TRACE(runs[run]);
    poison(*device, dout, 0xFF);
    switch (run) {
    case 0:
    case 1:
      ASSERT_OK(set->decodeAttention(problem, buffers));
      break;
    case 2:
      ASSERT_OK(set->decodeAttention(step, sequences.data(), B));
      break;
    case 3:
      ASSERT_OK(set->decodeAttention(maskProblem, maskBuffers));
      break;
    default:
      ASSERT_OK(set->decodeAttention(maskStep, maskSequences.data(), B));
    }
    ASSERT_OK(device->synchronize());
    std::vector<float> out(want.size());
    ASSERT_OK(
        device->copyToHost(out.data(), dout, out.size() * sizeof(float)));
    double worst = 0, largest = 0, errorNorm = 0, norm = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      ASSERT_TRUE(std::isfinite(out[i])) << "element " << i << " not written";
      double error = std::abs(out[i] - want[i]);
      worst = std::max(worst, error);
      largest = std::max(largest, std::abs(want[i]));
      errorNorm += error * error;
      norm += want[i] * want[i];
    }
    // docs/DESIGN.md §3: relative error <= 1e-5 against the reference (f32
    // arithmetic throughout; ex2.approx is within 2 ulp).
    double relative = std::sqrt(errorNorm / norm);
    EXPECT_LE(relative, 1e-5) << "relative error " << relative;
    EXPECT_LE(worst, 1e-4 * std::max(1.0, largest))
        << "max abs error " << worst << " (largest |o| " << largest << ")";
  }
}

// clang-format would give every field of every case a line of its own.
// clang-format off
const DecodeCase kDecodeCases[] = {
    {"one_sparse_token_D128_G4_f16", 128, 4, 2, {1}, {0}, 32, 32,
     StorageType::F16, false, 0, false},
    {"buffer_only_D128_G4_f16", 128, 4, 2, {0}, {5}, 32, 32, StorageType::F16,
     false, 0, false},
    {"L_eq_b_D128_G4_f16", 128, 4, 3, {128}, {128}, 32, 32, StorageType::F16,
     false, 0, false},
    {"L_b_plus_1_odd_k_D128_G8_f16", 128, 8, 2, {129}, {1}, 17, 45,
     StorageType::F16, false, 0, false},
    {"long_odd_many_splits_D128_G4_f16", 128, 4, 8, {3001}, {77}, 32, 32,
     StorageType::F16, false, 0, false},
    {"one_split_D128_G4_f16", 128, 4, 2, {700}, {128}, 32, 32, StorageType::F16,
     false, 1, false},
    {"batch_ragged_D64_G1_f32", 64, 1, 3, {300, 0, 45}, {1, 64, 13}, 7, 64,
     StorageType::F32, false, 0, false},
    {"rotated_output_D128_G4_f32", 128, 4, 2, {260}, {20}, 40, 24,
     StorageType::F32, true, 0, false},
    {"k_eq_D_dense_oracle_D64_G4_f32", 64, 4, 2, {200}, {30}, 64, 64,
     StorageType::F32, false, 0, true},
    {"D256_G8_f16", 256, 8, 2, {333}, {128}, 64, 32, StorageType::F16, false, 0,
     false},
    {"k1_D64_G1_f16", 64, 1, 1, {90}, {3}, 1, 1, StorageType::F16, false, 3,
     false},
    {"more_splits_than_a_merge_chunk_D64_G1_f32", 64, 1, 1, {500}, {4}, 8, 8,
     StorageType::F32, false, 200, false},
};
// clang-format on

/// A paged step over two sequences at D = 64, G = 1, f32, their blocks of
/// `capacity` tokens at k = 8 and rings of 4 slots shared between them and
/// between keys and values (what they hold is each test's).
class CudaPagedDecodeTest : public ::testing::Test {
protected:
  static constexpr int64_t D = 64, H = 2, capacity = 10, k = 8, slots = 4;

  void SetUp() override {
    std::string why;
    device = gpu(why);
    if (!device)
      GTEST_SKIP() << "no CUDA GPU here: " << why;
    set = loadKernels(*device, D, 1, StorageType::F32);
    ASSERT_NE(set, nullptr);
    ASSERT_OK(device->allocate(2 * H * D * 4, dq));
    ASSERT_OK(device->allocate(H * D * D * 4, drk));
    ASSERT_OK(device->allocate(2 * H * D * 4, dout));
    ASSERT_OK(device->allocate(H * capacity * k * 4, store));
    ASSERT_OK(device->allocate(H * capacity * k, indices));
    ASSERT_OK(device->allocate(H * slots * D * 4, ring));
    step.kvHeads = H;
    step.rotatedOutput = true;
    step.query = dq;
    step.keyRotation = drk;
    step.out = dout;
    good.keyValues = good.valueValues = store;
    good.keyIndices = good.valueIndices = indices;
    good.bufferKeys = good.bufferValues = ring;
    good.capacity = capacity;
    good.keyK = good.valueK = k;
    good.bufferCapacity = slots;
    good.sparseLength = capacity;
    good.bufferLength = slots;
  }

  /// Why the stand-in's emulator failed a step over zero inputs whose
  /// stored indices (each token's 0..k-1) `spoil` changed; "" when the
  /// step succeeded.
  std::string
  emulatorFailure(const std::function<void(std::vector<uint8_t> &)> &spoil) {
    std::vector<float> zeros(H * D * D, 0.0f);
    for (Buffer *b : {&dq, &drk, &store, &ring})
      EXPECT_TRUE(device->copyToDevice(*b, zeros.data(), b->bytes()).isOk());
    std::vector<uint8_t> stored(H * capacity * k);
    for (size_t i = 0; i < stored.size(); ++i)
      stored[i] = static_cast<uint8_t>(i % k);
    spoil(stored);
    EXPECT_TRUE(
        device->copyToDevice(indices, stored.data(), stored.size()).isOk());
    DecodeSequence sequences[2] = {good, good};
    Status st = set->decodeAttention(step, sequences, 2);
    if (st.isOk())
      st = device->synchronize();
    return st.isOk() ? "" : lastFailure()();
  }
  /// The stand-in's swanFakeCudaLastLaunchFailure; null under a real driver.
  static decltype(&swanFakeCudaLastLaunchFailure) lastFailure() {
    return swan::test::fakeDriverFunction<
        decltype(&swanFakeCudaLastLaunchFailure)>(
        "swanFakeCudaLastLaunchFailure");
  }

  Device *device = nullptr;
  std::unique_ptr<DeviceKernels> set;
  Buffer dq, drk, dout, store, indices, ring;
  PagedDecodeStep step;
  DecodeSequence good;
};

// A paged step checks every sequence before it launches anything, and says
// which sequence is at fault.
TEST_F(CudaPagedDecodeTest, BadSequencesAreRefusedNamingThem) {
  struct Case {
    const char *what;
    std::function<void(DecodeSequence &)> spoil;
    const char *message;
  } cases[] = {
      {"k", [](DecodeSequence &q) { q.valueK = 65; },
       "sequence 1: k outside [1, D]"},
      {"length", [](DecodeSequence &q) { q.sparseLength = 11; },
       "sequence 1: lengths must lie in [0, capacity]"},
      {"buffer length", [](DecodeSequence &q) { q.bufferLength = -1; },
       "sequence 1: lengths must lie in [0, capacity]"},
      {"store", [](DecodeSequence &q) { q.capacity = 11; },
       "sequence 1: sparse key values holds 640 bytes, needs 704"},
      {"missing ring", [](DecodeSequence &q) { q.bufferKeys = {}; },
       "sequence 1: buffer keys is missing"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.what);
    DecodeSequence sequences[2] = {good, good};
    c.spoil(sequences[1]);
    poison(*device, dout, 0xAB);
    Status st = set->decodeAttention(step, sequences, 2);
    EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
    EXPECT_EQ(st.message(), c.message);
    std::vector<uint8_t> out(dout.bytes());
    ASSERT_OK(device->copyToHost(out.data(), dout, out.size()));
    EXPECT_EQ(std::count(out.begin(), out.end(), 0xAB),
              static_cast<long>(out.size()))
        << "a refused step wrote its output";
  }
  DecodeSequence sequences[2] = {good, good};
  EXPECT_EQ(set->decodeAttention(step, sequences, 0).code(),
            StatusCode::InvalidArgument);
  // The unspoilt pair is accepted (the blocks hold no tokens worth reading).
  for (DecodeSequence &q : sequences)
    q.sparseLength = q.bufferLength = 0;
  ASSERT_OK(set->decodeAttention(step, sequences, 2));
}

// Mask rows are read a row at a time, in one access: a range that does not
// start on its multiple would fault on a GPU (the emulator's host loads
// would not notice), so it is refused.
TEST_F(CudaPagedDecodeTest, MisalignedMasksAreRefusedNamingThem) {
  step.encoding = SparseEncoding::Mask;
  DecodeSequence sequences[2] = {good, good};
  ASSERT_OK(set->decodeAttention(step, sequences, 2));
  sequences[1].valueIndices = store.slice(4, store.bytes() - 4);
  Status st = set->decodeAttention(step, sequences, 2);
  EXPECT_EQ(st.code(), StatusCode::InvalidArgument);
  EXPECT_EQ(st.message(),
            "sequence 1: sparse masks must start on a multiple of 8 bytes");
}

// The kernels trust the stored indices to be below D (the cache writes no
// other); on a GPU one that is not reads or writes a neighbour unannounced.
// The emulator checks every access against its memref's shape and fails
// the launch naming it.
TEST_F(CudaPagedDecodeTest, AStoredIndexOutsideTheHeadFailsInTheEmulator) {
  if (!lastFailure())
    GTEST_SKIP() << "the stand-in driver's emulator checks bounds; a GPU "
                    "does not";
  const std::string why = emulatorFailure([](std::vector<uint8_t> &stored) {
    stored[(1 * capacity + 6) * k + 3] = D; // head 1, token 6
  });
  EXPECT_NE(why.find("_paged_partial: thread ("), std::string::npos) << why;
  EXPECT_NE(why.find("index 64 of dimension"), std::string::npos) << why;
  EXPECT_NE(why.find("is outside [0, 64)"), std::string::npos) << why;
}

// The value scatter relies on a token's indices being distinct (the cache
// pads with unused dimensions for that): two lanes adding into one
// accumulator entry with no sync between them lose one of the sums on a
// GPU. The emulator's race check names it.
TEST_F(CudaPagedDecodeTest, ARepeatedStoredIndexIsARaceInTheEmulator) {
  if (!lastFailure())
    GTEST_SKIP() << "the stand-in driver's emulator checks races; a GPU "
                    "does not";
  const std::string why = emulatorFailure([](std::vector<uint8_t> &stored) {
    stored[(1 * capacity + 6) * k + 3] = 2; // head 1, token 6: slots 2 and 3
  });
  EXPECT_NE(why.find("_paged_partial: thread ("), std::string::npos) << why;
  EXPECT_NE(why.find("a race"), std::string::npos) << why;
}

// The last block of each (sequence, head) to finish merges, counted in
// device memory; a launch that faulted part-way leaves counts taken, which
// must not decide who merges next time.
TEST_F(CudaPagedDecodeTest, AStepAfterAFaultedOneMergesAgain) {
  if (!lastFailure())
    GTEST_SKIP() << "only the stand-in driver's emulator stops a kernel "
                    "part-way and lets the context go on";
  ASSERT_NE(emulatorFailure([](std::vector<uint8_t> &stored) {
              stored[(1 * capacity + 6) * k + 3] = D;
            }),
            "");
  poison(*device, dout, 0xAB);
  // Zero queries, keys and values: every output is exactly 0.
  ASSERT_EQ(emulatorFailure([](std::vector<uint8_t> &) {}), "");
  std::vector<float> out(dout.bytes() / 4);
  ASSERT_OK(device->copyToHost(out.data(), dout, dout.bytes()));
  EXPECT_EQ(std::count(out.begin(), out.end(), 0.0f),
            static_cast<long>(out.size()));
}

/// One case per embedded specialisation, so that every module's kernels
/// run (over the stand-in driver, in the kernel emulator, on any machine).
std::vector<DecodeCase> everySpecialisation() {
  static std::deque<std::string> names;
  std::vector<DecodeCase> cases;
  for (const Specialisation &s : DeviceKernels::specialisations()) {
    names.push_back("D" + std::to_string(s.dim) + "_G" +
                    std::to_string(s.group) +
                    (s.storage == StorageType::F16 ? "_f16" : "_f32"));
    cases.push_back({names.back().c_str(),
                     s.dim,
                     s.group,
                     2,
                     {150, 7},
                     {9, 0},
                     s.dim / 4 + 1,
                     s.dim / 8,
                     s.storage,
                     /*rotatedOutput=*/s.group == 4,
                     0,
                     false});
  }
  return cases;
}

std::string caseName(const ::testing::TestParamInfo<DecodeCase> &info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaDecodeTest,
                         ::testing::ValuesIn(kDecodeCases), caseName);
INSTANTIATE_TEST_SUITE_P(Specialisations, CudaDecodeTest,
                         ::testing::ValuesIn(everySpecialisation()), caseName);

} // namespace
