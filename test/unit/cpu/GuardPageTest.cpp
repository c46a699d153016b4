//===- GuardPageTest.cpp - JIT kernels never touch memory past a buffer ---===//
//
// The JIT-compiled kernels are invisible to AddressSanitizer, so their memory
// safety is shown here instead: every input and output of compress, rotate
// and attention sits flush against an inaccessible (PROT_NONE) page, once
// ending at the page (any access past the end faults) and once starting right
// after one (any access before the start faults). Inputs are also made
// read-only, so a stray store into them faults too. Results are checked
// against the float64 reference, so a kernel cannot pass by doing nothing.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CPU/Kernels.h"
#include "swan/Runtime/Eval/Reference.h"

#include "RandomOrthogonal.h"

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace swan;

namespace {

enum class Placement { EndsAtGuard, StartsAfterGuard };

/// `bytes` bytes placed against a PROT_NONE page on the chosen side (with a
/// second guard on the other side of the mapping too).
class GuardedBuffer {
public:
  GuardedBuffer(size_t bytes, Placement placement) : size(bytes) {
    const size_t page = sysconf(_SC_PAGESIZE);
    const size_t body = (bytes + page - 1) / page * page;
    mappedBytes = body + 2 * page;
    void *p = mmap(nullptr, mappedBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      return;
    mapping = static_cast<char *>(p);
    mprotect(mapping, page, PROT_NONE);
    mprotect(mapping + page + body, page, PROT_NONE);
    data = placement == Placement::StartsAfterGuard
               ? mapping + page
               : mapping + page + body - bytes;
  }
  ~GuardedBuffer() {
    if (mapping)
      munmap(mapping, mappedBytes);
  }
  GuardedBuffer(const GuardedBuffer &) = delete;
  GuardedBuffer &operator=(const GuardedBuffer &) = delete;

  template <typename T> T *as() const { return reinterpret_cast<T *>(data); }
  void fill(const void *src) { std::memcpy(data, src, size); }
  void poison() { std::memset(data, 0xFF, size); }
  /// Inputs: any store into them faults.
  void makeReadOnly() {
    const size_t page = sysconf(_SC_PAGESIZE);
    mprotect(mapping + page, mappedBytes - 2 * page, PROT_READ);
  }
  bool valid() const { return data != nullptr; }

private:
  char *mapping = nullptr;
  char *data = nullptr;
  size_t size = 0, mappedBytes = 0;
};

std::vector<float> randomFloats(size_t count, std::mt19937_64 &rng) {
  std::normal_distribution<float> normal;
  std::vector<float> v(count);
  for (float &x : v)
    x = normal(rng);
  return v;
}

double loadStored(const void *base, int64_t i, StorageType storage) {
  if (storage == StorageType::F16)
    return static_cast<float>(static_cast<const _Float16 *>(base)[i]);
  return static_cast<const float *>(base)[i];
}

void storeStored(void *base, int64_t i, double value, StorageType storage) {
  if (storage == StorageType::F16)
    static_cast<_Float16 *>(base)[i] = static_cast<_Float16>(value);
  else
    static_cast<float *>(base)[i] = static_cast<float>(value);
}

std::shared_ptr<const KernelSet> kernelsFor(const KernelKey &key) {
  auto kernels = KernelSet::get(key);
  if (!kernels) {
    ADD_FAILURE() << llvm::toString(kernels.takeError());
    return nullptr;
  }
  return *kernels;
}

constexpr Placement kPlacements[] = {Placement::EndsAtGuard,
                                     Placement::StartsAfterGuard};

struct Shape {
  int32_t dim, group;
  StorageType storage;
  WinnowedStorage winnowed = WinnowedStorage::AsStorage;

  KernelKey key() const { return {dim, group, storage, winnowed}; }
  bool q8() const { return winnowed == WinnowedStorage::Int8; }
};

class GuardPageTest : public ::testing::TestWithParam<Shape> {
protected:
  std::mt19937_64 rng{0x9a4dU + GetParam().dim * 7 + GetParam().group};
};

TEST_P(GuardPageTest, RotateStaysInsideItsBuffers) {
  Shape shape = GetParam();
  auto kernels = kernelsFor(shape.key());
  ASSERT_TRUE(kernels);
  const int64_t d = shape.dim;
  for (Placement placement : kPlacements)
    for (int64_t rows : {1, 3, 17, 131}) {
      std::vector<float> x = randomFloats(rows * d, rng);
      std::vector<float> r = test::randomOrthogonal(1, d, rng);
      GuardedBuffer in(x.size() * 4, placement), rot(r.size() * 4, placement),
          out(x.size() * 4, placement);
      ASSERT_TRUE(in.valid() && rot.valid() && out.valid());
      in.fill(x.data());
      rot.fill(r.data());
      in.makeReadOnly();
      rot.makeReadOnly();
      out.poison();
      llvm::Error e = kernels->rotate(in.as<float>(), rows, rot.as<float>(),
                                      out.as<float>());
      ASSERT_FALSE(e) << llvm::toString(std::move(e));
      std::vector<double> expected = reference::rotate(
          {x.begin(), x.end()}, rows, d, {r.begin(), r.end()});
      for (int64_t i = 0; i < rows * d; ++i)
        ASSERT_NEAR(out.as<float>()[i], expected[i], 1e-4)
            << "rows=" << rows << " i=" << i;
    }
}

TEST_P(GuardPageTest, CompressStaysInsideItsBuffers) {
  Shape shape = GetParam();
  auto kernels = kernelsFor(shape.key());
  ASSERT_TRUE(kernels);
  const int64_t d = shape.dim;
  const size_t e = winnowedElementBytes(shape.storage, shape.winnowed);
  for (Placement placement : kPlacements)
    for (int64_t rows : {1, 5, 33})
      for (int32_t k : {1, 3, int32_t(d) / 2 + 1, int32_t(d)}) {
        std::vector<float> x = randomFloats(rows * d, rng);
        std::vector<float> r = test::randomOrthogonal(1, d, rng);
        GuardedBuffer in(x.size() * 4, placement), rot(r.size() * 4, placement),
            values(rows * k * e, placement), indices(rows * k, placement),
            scales(shape.q8() ? rows * 4 : 0, placement);
        ASSERT_TRUE(in.valid() && rot.valid() && values.valid() &&
                    indices.valid() && scales.valid());
        in.fill(x.data());
        rot.fill(r.data());
        in.makeReadOnly();
        rot.makeReadOnly();
        values.poison();
        indices.poison();
        scales.poison();
        llvm::Error err = kernels->compress(
            in.as<float>(), rows, rot.as<float>(), k, values.as<void>(),
            indices.as<uint8_t>(), SparseEncoding::Indices,
            shape.q8() ? scales.as<float>() : nullptr);
        ASSERT_FALSE(err) << llvm::toString(std::move(err));
        // Each kept entry is the rotated component it names; indices ascend.
        std::vector<double> rotated = reference::rotate(
            {x.begin(), x.end()}, rows, d, {r.begin(), r.end()});
        const double tolerance =
            shape.storage == StorageType::F16 ? 4e-3 : 1e-4;
        for (int64_t row = 0; row < rows; ++row)
          for (int32_t j = 0; j < k; ++j) {
            int idx = indices.as<uint8_t>()[row * k + j];
            ASSERT_LT(idx, d) << "row " << row << " entry " << j;
            if (j > 0)
              ASSERT_GT(idx, indices.as<uint8_t>()[row * k + j - 1]);
            double expected = rotated[row * d + idx];
            if (shape.q8()) {
              float s = scales.as<float>()[row];
              ASSERT_NEAR(values.as<int8_t>()[row * k + j] * s, expected,
                          s / 2 + tolerance * (1 + std::fabs(expected)));
              continue;
            }
            ASSERT_NEAR(
                loadStored(values.as<void>(), row * k + j, shape.storage),
                expected, tolerance * (1 + std::fabs(expected)));
          }
      }
}

TEST_P(GuardPageTest, AttentionStaysInsideItsBuffers) {
  Shape shape = GetParam();
  auto kernels = kernelsFor(shape.key());
  ASSERT_TRUE(kernels);
  const int64_t d = shape.dim, g = shape.group;
  const size_t e = elementBytes(shape.storage);
  const size_t we = winnowedElementBytes(shape.storage, shape.winnowed);
  const float scale = 1.0f / std::sqrt(float(d));
  struct Case {
    int64_t sparse, dense;
    int32_t kKey, kValue;
  };
  const Case cases[] = {{0, 1, 1, 1},
                        {1, 0, 1, 1},
                        {7, 3, 3, 5},
                        {301, 17, 9, 2},
                        {2049, 1, int32_t(d), 1},
                        {0, 777, 1, 1},
                        {65, 0, int32_t(d), int32_t(d)},
                        {129, 2, int32_t(d) / 2 + 3, int32_t(d) / 3 + 8}};
  // Keys and values each as indices or as masks: a mask-encoded row is read
  // in windows (pshufb expansion) that must end inside the row.
  const std::pair<SparseEncoding, SparseEncoding> encodings[] = {
      {SparseEncoding::Indices, SparseEncoding::Indices},
      {SparseEncoding::Indices, SparseEncoding::Mask},
      {SparseEncoding::Mask, SparseEncoding::Indices},
      {SparseEncoding::Mask, SparseEncoding::Mask}};
  for (Placement placement : kPlacements)
    for (auto [keyEncoding, valueEncoding] : encodings)
      for (const Case &c : cases) {
        // Random sparse rows (values and ascending positions) and dense rows
        // in storage precision; the expected output is the reference on the
        // same decompressed cache.
        const int64_t tokens = c.sparse + c.dense;
        std::vector<double> keys(tokens * d, 0.0), values(tokens * d, 0.0);
        const int64_t scaleBytes = shape.q8() ? c.sparse * 4 : 0;
        GuardedBuffer kv(c.sparse * c.kKey * we, placement),
            ki(c.sparse * positionBytes(keyEncoding, d, c.kKey), placement),
            ks(scaleBytes, placement), vv(c.sparse * c.kValue * we, placement),
            vi(c.sparse * positionBytes(valueEncoding, d, c.kValue), placement),
            vs(scaleBytes, placement), dk(c.dense * d * e, placement),
            dv(c.dense * d * e, placement), q(g * d * 4, placement),
            rk(d * d * 4, placement), rv(d * d * 4, placement),
            out(g * d * 4, placement);
        std::normal_distribution<double> normal;
        std::vector<int> order(d);
        auto fillSparse = [&](GuardedBuffer &vals, GuardedBuffer &idx,
                              GuardedBuffer &scales, int32_t k,
                              SparseEncoding encoding,
                              std::vector<double> &dense) {
          const int64_t rowBytes = positionBytes(encoding, d, k);
          std::memset(idx.as<uint8_t>(), 0, c.sparse * rowBytes);
          for (int64_t t = 0; t < c.sparse; ++t) {
            // SWAN-Q8: random int8 values under a random scale.
            float s =
                shape.q8() ? 0.01f + std::fabs(float(normal(rng))) / 64 : 0.0f;
            if (shape.q8())
              scales.as<float>()[t] = s;
            for (int i = 0; i < d; ++i)
              order[i] = i;
            std::shuffle(order.begin(), order.end(), rng);
            std::sort(order.begin(), order.begin() + k);
            uint8_t *positions = idx.as<uint8_t>() + t * rowBytes;
            for (int32_t j = 0; j < k; ++j) {
              if (encoding == SparseEncoding::Mask)
                positions[order[j] / 8] |= uint8_t(1u << (order[j] % 8));
              else
                positions[j] = static_cast<uint8_t>(order[j]);
              if (shape.q8()) {
                int8_t q = int8_t(int(rng() % 255) - 127);
                vals.as<int8_t>()[t * k + j] = q;
                dense[t * d + order[j]] = double(q) * s;
                continue;
              }
              storeStored(vals.as<void>(), t * k + j, normal(rng),
                          shape.storage);
              dense[t * d + order[j]] =
                  loadStored(vals.as<void>(), t * k + j, shape.storage);
            }
          }
        };
        fillSparse(kv, ki, ks, c.kKey, keyEncoding, keys);
        fillSparse(vv, vi, vs, c.kValue, valueEncoding, values);
        for (int64_t i = 0; i < c.dense * d; ++i) {
          storeStored(dk.as<void>(), i, normal(rng), shape.storage);
          storeStored(dv.as<void>(), i, normal(rng), shape.storage);
          keys[c.sparse * d + i] = loadStored(dk.as<void>(), i, shape.storage);
          values[c.sparse * d + i] =
              loadStored(dv.as<void>(), i, shape.storage);
        }
        std::vector<float> query = randomFloats(g * d, rng);
        std::vector<float> rotK = test::randomOrthogonal(1, d, rng);
        std::vector<float> rotV = test::randomOrthogonal(1, d, rng);
        q.fill(query.data());
        rk.fill(rotK.data());
        rv.fill(rotV.data());
        for (GuardedBuffer *input :
             {&kv, &ki, &ks, &vv, &vi, &vs, &dk, &dv, &q, &rk, &rv})
          input->makeReadOnly();
        out.poison();

        SparseBlock block{kv.as<void>(),
                          ki.as<uint8_t>(),
                          c.kKey,
                          vv.as<void>(),
                          vi.as<uint8_t>(),
                          c.kValue,
                          c.sparse,
                          valueEncoding,
                          keyEncoding,
                          shape.q8() ? ks.as<float>() : nullptr,
                          shape.q8() ? vs.as<float>() : nullptr};
        AttentionWork work;
        work.query = q.as<float>();
        work.keyRotation = rk.as<float>();
        work.valueRotation = rv.as<float>();
        work.sparse =
            c.sparse ? llvm::ArrayRef(block) : llvm::ArrayRef<SparseBlock>();
        work.buffer = {dk.as<void>(), dv.as<void>(), c.dense};
        work.out = out.as<float>();
        llvm::Error err = kernels->attention(work, scale, false);
        ASSERT_FALSE(err) << llvm::toString(std::move(err));

        // The kernels rotate the query by R_K and the output back by R_Vᵀ.
        std::vector<double> rotatedQuery = reference::rotate(
            {query.begin(), query.end()}, g, d, {rotK.begin(), rotK.end()});
        std::vector<double> expected = reference::rotateBack(
            reference::attention(rotatedQuery, g, keys, values, tokens, d,
                                 scale),
            g, d, {rotV.begin(), rotV.end()});
        for (int64_t i = 0; i < g * d; ++i)
          ASSERT_NEAR(out.as<float>()[i], expected[i],
                      1e-4 * (1 + std::fabs(expected[i])))
              << "sparse=" << c.sparse << " dense=" << c.dense
              << " key masks=" << (keyEncoding == SparseEncoding::Mask)
              << " value masks=" << (valueEncoding == SparseEncoding::Mask)
              << " i=" << i;
      }
}

/// The harness itself: one byte past either end faults.
TEST(GuardedBufferTest, OneByteOutsideFaults) {
  GuardedBuffer atEnd(12, Placement::EndsAtGuard);
  GuardedBuffer atStart(12, Placement::StartsAfterGuard);
  ASSERT_TRUE(atEnd.valid() && atStart.valid());
  atEnd.poison();
  atStart.poison();
  EXPECT_DEATH(
      {
        volatile char c = atEnd.as<char>()[12];
        (void)c;
      },
      "");
  EXPECT_DEATH(
      {
        volatile char c = atStart.as<char>()[-1];
        (void)c;
      },
      "");
  // A read-only input faults on a store.
  atStart.makeReadOnly();
  EXPECT_DEATH(atStart.as<volatile char>()[0] = 1, "");
}

INSTANTIATE_TEST_SUITE_P(
    OddSizes, GuardPageTest,
    ::testing::Values(Shape{16, 1, StorageType::F32},
                      Shape{48, 3, StorageType::F16},
                      Shape{80, 5, StorageType::F32},
                      Shape{112, 7, StorageType::F16},
                      // SWAN-Q8: 1-byte rows, whose
                      // 16-byte windows span rows
                      Shape{48, 3, StorageType::F16, WinnowedStorage::Int8},
                      Shape{80, 5, StorageType::F32, WinnowedStorage::Int8}),
    [](const auto &info) {
      return "D" + std::to_string(info.param.dim) + "_G" +
             std::to_string(info.param.group) +
             (info.param.storage == StorageType::F16 ? "_f16" : "_f32") +
             (info.param.q8() ? "_q8" : "");
    });

} // namespace
