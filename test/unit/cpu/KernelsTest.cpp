//===- KernelsTest.cpp - JIT kernels against the float64 reference --------===//
//
// The oracles of docs/DESIGN.md §3 on the JIT-compiled kernels: k = D equals
// dense attention on the unrotated cache, any k equals the float64
// reference on the decompressed cache, compress equals the reference
// winnow (ties included). Every check draws fresh seeded random inputs,
// poisons the outputs with NaN first and checks every element.
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/CPU/Kernels.h"
#include "swan/Runtime/CPU/JitEngine.h"
#include "swan/Runtime/CPU/KernelModule.h"
#include "swan/Runtime/Eval/Reference.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using namespace swan;
using llvm::ArrayRef;

namespace {

/// The dense buffer's capacity b (docs/DESIGN.md §1 default).
constexpr int64_t kBuffer = 128;

std::string keyName(const KernelKey &key) {
  return "D" + std::to_string(key.headDim) + "_G" +
         std::to_string(key.groupSize) +
         (key.storage == StorageType::F16 ? "_f16" : "_f32") +
         (key.winnowed == WinnowedStorage::Int8 ? "_q8" : "");
}

/// SWAN-Q8 keys with an f32 buffer, so that only the kernels' own rounding
/// is left.
KernelKey q8Key(int32_t dim, int32_t group) {
  return {dim, group, StorageType::F32, WinnowedStorage::Int8};
}

std::shared_ptr<const KernelSet> kernelsFor(const KernelKey &key) {
  auto kernels = KernelSet::get(key);
  if (!kernels) {
    ADD_FAILURE() << "compiling " << keyName(key) << ": "
                  << llvm::toString(kernels.takeError());
    return nullptr;
  }
  return *kernels;
}

/// A float as the cache stores it (f16 rounds to nearest even, like the
/// kernels' truncf).
double roundToStorage(float value, StorageType storage) {
  if (storage == StorageType::F16)
    return static_cast<double>(
        static_cast<float>(static_cast<_Float16>(value)));
  return value;
}

void storeElement(std::vector<uint8_t> &bytes, size_t index, float value,
                  StorageType storage) {
  if (storage == StorageType::F16) {
    _Float16 half = static_cast<_Float16>(value);
    std::memcpy(bytes.data() + index * 2, &half, 2);
  } else {
    std::memcpy(bytes.data() + index * 4, &value, 4);
  }
}

double loadElement(const std::vector<uint8_t> &bytes, size_t index,
                   StorageType storage) {
  if (storage == StorageType::F16) {
    _Float16 half;
    std::memcpy(&half, bytes.data() + index * 2, 2);
    return static_cast<double>(static_cast<float>(half));
  }
  float value;
  std::memcpy(&value, bytes.data() + index * 4, 4);
  return value;
}

/// All-ones bytes are NaN in f32 and f16 and index 255 (outside D ≤ 128).
constexpr uint8_t kPoisonByte = 0xFF;

std::vector<float> poisonedFloats(size_t count) {
  return std::vector<float>(count, std::numeric_limits<float>::quiet_NaN());
}

std::vector<float> randomFloats(size_t count, std::mt19937_64 &rng,
                                double sigma = 1.0) {
  std::normal_distribution<double> normal(0.0, sigma);
  std::vector<float> values(count);
  for (float &value : values)
    value = static_cast<float>(normal(rng));
  return values;
}

std::vector<double> toDouble(const std::vector<float> &values) {
  return std::vector<double>(values.begin(), values.end());
}

/// A random orthogonal matrix, rounded to f32 as the kernels receive it.
std::vector<float> randomOrthogonal(int64_t dim, std::mt19937_64 &rng) {
  std::vector<double> m = swan::reference::randomOrthogonal(dim, rng);
  return std::vector<float>(m.begin(), m.end());
}

/// A random signed permutation: an orthogonal matrix whose products are
/// exact in f32, so that winnowing can be compared bit for bit.
std::vector<float> randomSignedPermutation(int64_t dim, std::mt19937_64 &rng) {
  std::vector<int64_t> permutation(dim);
  std::iota(permutation.begin(), permutation.end(), 0);
  std::shuffle(permutation.begin(), permutation.end(), rng);
  std::vector<float> m(dim * dim, 0.0f);
  for (int64_t i = 0; i < dim; ++i)
    m[i * dim + permutation[i]] = (rng() & 1) ? 1.0f : -1.0f;
  return m;
}

/// max |got - want| / max |want| over all elements; infinity if any element
/// is not finite (a poisoned element that was never written).
double relativeError(const std::vector<float> &got,
                     const std::vector<double> &want) {
  EXPECT_EQ(got.size(), want.size());
  double error = 0.0, magnitude = 0.0;
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    if (!std::isfinite(got[i]))
      return std::numeric_limits<double>::infinity();
    error = std::max(error, std::fabs(got[i] - want[i]));
    magnitude = std::max(magnitude, std::fabs(want[i]));
  }
  return error / std::max(magnitude, 1e-30);
}

/// Expects `error` to name `argument`.
void expectErrorNaming(llvm::Error error, const std::string &argument) {
  ASSERT_TRUE(static_cast<bool>(error)) << "no error for " << argument;
  std::string message = llvm::toString(std::move(error));
  EXPECT_NE(message.find(argument), std::string::npos)
      << "'" << message << "' does not name " << argument;
}

/// One winnowed block as the cache stores it (scales: int8 values only).
struct StoredBlock {
  std::vector<uint8_t> keyValues, keyIndices, valueValues, valueIndices;
  std::vector<float> keyScales, valueScales;
  int32_t keyK = 0, valueK = 0;
  int64_t tokens = 0;
  SparseEncoding valueEncoding = SparseEncoding::Indices;
  SparseEncoding keyEncoding = SparseEncoding::Indices;

  SparseBlock view() const {
    return {keyValues.data(),
            keyIndices.data(),
            keyK,
            valueValues.data(),
            valueIndices.data(),
            valueK,
            tokens,
            valueEncoding,
            keyEncoding,
            keyScales.empty() ? nullptr : keyScales.data(),
            valueScales.empty() ? nullptr : valueScales.data()};
  }
};

/// The mask encoding of [tokens][k] ascending indices: [tokens][D/8] bytes,
/// bit d % 8 of byte d / 8 set for each kept dimension d.
std::vector<uint8_t> masksOf(const std::vector<uint8_t> &indices,
                             int64_t tokens, int32_t k, int64_t dim) {
  std::vector<uint8_t> masks(tokens * (dim / 8), 0);
  for (int64_t t = 0; t < tokens; ++t)
    for (int32_t j = 0; j < k; ++j) {
      int64_t d = indices[t * k + j];
      masks[t * (dim / 8) + d / 8] |= uint8_t(1u << (d % 8));
    }
  return masks;
}

/// One (sequence, KV head) of decode attention with its expected output.
struct Sequence {
  std::vector<float> query, keyRotation, valueRotation;
  std::vector<StoredBlock> blocks;
  std::vector<SparseBlock> blockViews;
  std::vector<uint8_t> bufferKeys, bufferValues;
  int64_t bufferTokens = 0;
  std::vector<float> out;
  std::vector<double> expected;

  AttentionWork work() {
    blockViews.clear();
    for (const StoredBlock &block : blocks)
      blockViews.push_back(block.view());
    return {query.data(),
            keyRotation.data(),
            valueRotation.data(),
            blockViews,
            {bufferKeys.data(), bufferValues.data(), bufferTokens},
            out.data()};
  }
};

struct BlockShape {
  int64_t tokens;
  int32_t keyK, valueK;
};

/// Winnows `tokens` rotated rows with the reference and stores them as `key`
/// says (int8 with `scales` under WinnowedStorage::Int8); appends the
/// decompressed (scattered, storage-rounded or dequantised) rotated rows to
/// `rotated`.
void winnowWithReference(const std::vector<float> &rows, int64_t tokens,
                         int64_t dim, int32_t k, const KernelKey &key,
                         std::vector<uint8_t> &values,
                         std::vector<uint8_t> &indices,
                         std::vector<float> &scales,
                         std::vector<double> &rotated) {
  const bool quantised = key.winnowed == WinnowedStorage::Int8;
  values.assign(tokens * k * winnowedElementBytes(key.storage, key.winnowed),
                0);
  indices.assign(tokens * k, 0);
  scales.assign(quantised ? tokens : 0, 0.0f);
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<double> row(rows.begin() + t * dim,
                            rows.begin() + (t + 1) * dim);
    reference::Winnowed kept = reference::winnow(row.data(), dim, k);
    auto *q = reinterpret_cast<int8_t *>(values.data()) + t * k;
    if (quantised)
      scales[t] = reference::quantiseInt8(kept.values, q);
    for (int32_t j = 0; j < k; ++j) {
      indices[t * k + j] = static_cast<uint8_t>(kept.indices[j]);
      if (quantised) {
        kept.values[j] = double(q[j]) * scales[t];
        continue;
      }
      storeElement(values, t * k + j, static_cast<float>(kept.values[j]),
                   key.storage);
      kept.values[j] = loadElement(values, t * k + j, key.storage);
    }
    std::vector<double> dense = reference::scatter(kept, dim);
    rotated.insert(rotated.end(), dense.begin(), dense.end());
  }
}

/// A sequence whose cache is drawn in the rotated basis, winnowed by the
/// reference and stored; the expectation is the float64 reference on the
/// decompressed cache (scattered rows times Rᵀ).
Sequence makeDecompressedCase(
    const KernelKey &key, const std::vector<BlockShape> &shapes,
    int64_t bufferTokens, float scale, bool rotatedOutput, std::mt19937_64 &rng,
    SparseEncoding valueEncoding = SparseEncoding::Indices,
    SparseEncoding keyEncoding = SparseEncoding::Indices) {
  const int64_t dim = key.headDim, group = key.groupSize;
  Sequence s;
  s.query = randomFloats(group * dim, rng, 2.0);
  s.keyRotation = randomOrthogonal(dim, rng);
  s.valueRotation = randomOrthogonal(dim, rng);
  std::vector<double> rotatedKeys, rotatedValues;
  int64_t tokens = bufferTokens;
  for (const BlockShape &shape : shapes) {
    StoredBlock block;
    block.keyK = shape.keyK;
    block.valueK = shape.valueK;
    block.tokens = shape.tokens;
    winnowWithReference(randomFloats(shape.tokens * dim, rng), shape.tokens,
                        dim, shape.keyK, key, block.keyValues, block.keyIndices,
                        block.keyScales, rotatedKeys);
    winnowWithReference(randomFloats(shape.tokens * dim, rng), shape.tokens,
                        dim, shape.valueK, key, block.valueValues,
                        block.valueIndices, block.valueScales, rotatedValues);
    if (valueEncoding == SparseEncoding::Mask) {
      block.valueIndices =
          masksOf(block.valueIndices, shape.tokens, shape.valueK, dim);
      block.valueEncoding = SparseEncoding::Mask;
    }
    if (keyEncoding == SparseEncoding::Mask) {
      block.keyIndices =
          masksOf(block.keyIndices, shape.tokens, shape.keyK, dim);
      block.keyEncoding = SparseEncoding::Mask;
    }
    tokens += shape.tokens;
    s.blocks.push_back(std::move(block));
  }
  s.bufferTokens = bufferTokens;
  s.bufferKeys.assign(bufferTokens * dim * elementBytes(key.storage), 0);
  s.bufferValues.assign(bufferTokens * dim * elementBytes(key.storage), 0);
  std::vector<float> bufferKeys = randomFloats(bufferTokens * dim, rng);
  std::vector<float> bufferValues = randomFloats(bufferTokens * dim, rng);
  for (int64_t i = 0; i < bufferTokens * dim; ++i) {
    storeElement(s.bufferKeys, i, bufferKeys[i], key.storage);
    storeElement(s.bufferValues, i, bufferValues[i], key.storage);
    rotatedKeys.push_back(loadElement(s.bufferKeys, i, key.storage));
    rotatedValues.push_back(loadElement(s.bufferValues, i, key.storage));
  }

  std::vector<double> keys =
      reference::rotateBack(rotatedKeys, tokens, dim, toDouble(s.keyRotation));
  std::vector<double> values = reference::rotateBack(rotatedValues, tokens, dim,
                                                     toDouble(s.valueRotation));
  s.expected = reference::attention(toDouble(s.query), group, keys, values,
                                    tokens, dim, scale);
  if (rotatedOutput)
    s.expected =
        reference::rotate(s.expected, group, dim, toDouble(s.valueRotation));
  s.out = poisonedFloats(group * dim);
  return s;
}

/// Runs `sequences` as one batch and checks every output element.
void runAndCheck(const KernelSet &kernels, std::vector<Sequence> &sequences,
                 float scale, bool rotatedOutput, double tolerance,
                 const std::string &what) {
  std::vector<AttentionWork> work;
  for (Sequence &s : sequences) {
    s.out = poisonedFloats(s.out.size());
    work.push_back(s.work());
  }
  llvm::Error error = kernels.attention(work, scale, rotatedOutput);
  ASSERT_FALSE(error) << what << ": " << llvm::toString(std::move(error));
  for (size_t i = 0; i < sequences.size(); ++i)
    EXPECT_LE(relativeError(sequences[i].out, sequences[i].expected), tolerance)
        << what << ", work item " << i;
}

//===----------------------------------------------------------------------===//
// The entry-point module
//===----------------------------------------------------------------------===//

TEST(KernelModuleTest, BuildsEveryEntryPointWithTheCInterface) {
  mlir::DialectRegistry registry;
  JitEngine::registerJitDialects(registry);
  mlir::MLIRContext context(registry);
  for (KernelKey key : {KernelKey{128, 4, StorageType::F32},
                        KernelKey{128, 4, StorageType::F16}, q8Key(48, 4)}) {
    auto module = buildKernelModule(context, key);
    ASSERT_TRUE(static_cast<bool>(module))
        << llvm::toString(module.takeError());
    std::vector<std::string> names;
    for (auto function : (**module).getOps<mlir::func::FuncOp>()) {
      names.push_back(function.getSymName().str());
      EXPECT_TRUE(
          function->hasAttr(mlir::LLVM::LLVMDialect::getEmitCWrapperAttrName()))
          << names.back();
    }
    std::vector<std::string> expected = {
        entry::kRotate,
        entry::kCompress,
        entry::kCompressMask,
        entry::kPartialSparse,
        entry::kPartialSparseMask,
        entry::kPartialSparseKeyMask,
        entry::kPartialSparseMasks,
        entry::kPartialDense,
        entry::kMerge,
        entry::kMergeRotated};
    EXPECT_EQ(names, expected);
  }
}

/// The runtime compiles each entry point in a module of its own.
TEST(KernelModuleTest, BuildsOneEntryPointByName) {
  mlir::DialectRegistry registry;
  JitEngine::registerJitDialects(registry);
  mlir::MLIRContext context(registry);
  auto module = buildKernelModule(context, {64, 2, StorageType::F16},
                                  entry::kPartialSparseMask);
  ASSERT_TRUE(static_cast<bool>(module)) << llvm::toString(module.takeError());
  std::vector<std::string> names;
  for (auto function : (**module).getOps<mlir::func::FuncOp>())
    names.push_back(function.getSymName().str());
  EXPECT_EQ(names, std::vector<std::string>{entry::kPartialSparseMask});

  auto unknown =
      buildKernelModule(context, {64, 2, StorageType::F16}, "partial_spares");
  ASSERT_FALSE(static_cast<bool>(unknown));
  EXPECT_NE(llvm::toString(unknown.takeError()).find("'partial_spares'"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Attention over every shape of docs/DESIGN.md §3
//===----------------------------------------------------------------------===//

class AttentionTest : public ::testing::TestWithParam<
                          std::tuple<int32_t, int32_t, StorageType>> {
protected:
  KernelKey key() const {
    auto [dim, group, storage] = GetParam();
    return {dim, group, storage};
  }
  std::mt19937_64 rng{0x5eed0000u + std::get<0>(GetParam()) * 31 +
                      std::get<1>(GetParam()) * 7 +
                      static_cast<int>(std::get<2>(GetParam()))};
};

/// Token counts: one token, exactly the buffer, one past it, lengths that
/// are no multiple of any tile, and one long enough to be cut into chunks.
const int64_t kLengths[] = {1, kBuffer, kBuffer + 1, 777, 4500};

/// k = D keeps everything: the output must equal dense attention on the
/// original, unrotated K and V. The cache is filled end to end by the
/// kernels: compress for the winnowed tokens, rotate for the buffer.
TEST_P(AttentionTest, FullKEqualsDenseAttentionOnUnrotatedCache) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim, group = key.groupSize;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  const double tolerance = key.storage == StorageType::F16 ? 5e-3 : 1e-5;

  for (int64_t length : kLengths) {
    for (bool rotatedOutput : {false, true}) {
      Sequence s;
      s.query = randomFloats(group * dim, rng, 2.0);
      s.keyRotation = randomOrthogonal(dim, rng);
      s.valueRotation = randomOrthogonal(dim, rng);
      std::vector<float> keys = randomFloats(length * dim, rng);
      std::vector<float> values = randomFloats(length * dim, rng);
      int64_t sparse = std::max<int64_t>(0, length - kBuffer);
      s.bufferTokens = length - sparse;
      size_t bytes = elementBytes(key.storage);

      if (sparse > 0) {
        StoredBlock block;
        block.keyK = block.valueK = static_cast<int32_t>(dim);
        block.tokens = sparse;
        for (auto [input, rotation, stored, indices] :
             {std::tuple(&keys, &s.keyRotation, &block.keyValues,
                         &block.keyIndices),
              std::tuple(&values, &s.valueRotation, &block.valueValues,
                         &block.valueIndices)}) {
          stored->assign(sparse * dim * bytes, kPoisonByte);
          indices->assign(sparse * dim, kPoisonByte);
          llvm::Error error = kernels->compress(
              input->data(), sparse, rotation->data(),
              static_cast<int32_t>(dim), stored->data(), indices->data());
          ASSERT_FALSE(error) << llvm::toString(std::move(error));
        }
        s.blocks.push_back(std::move(block));
      }
      for (auto [input, rotation, stored] :
           {std::tuple(&keys, &s.keyRotation, &s.bufferKeys),
            std::tuple(&values, &s.valueRotation, &s.bufferValues)}) {
        std::vector<float> rotated = poisonedFloats(s.bufferTokens * dim);
        llvm::Error error =
            kernels->rotate(input->data() + sparse * dim, s.bufferTokens,
                            rotation->data(), rotated.data());
        ASSERT_FALSE(error) << llvm::toString(std::move(error));
        stored->assign(s.bufferTokens * dim * bytes, 0);
        for (int64_t i = 0; i < s.bufferTokens * dim; ++i)
          storeElement(*stored, i, rotated[i], key.storage);
      }

      s.expected =
          reference::attention(toDouble(s.query), group, toDouble(keys),
                               toDouble(values), length, dim, scale);
      if (rotatedOutput)
        s.expected = reference::rotate(s.expected, group, dim,
                                       toDouble(s.valueRotation));
      s.out = poisonedFloats(group * dim);
      std::vector<Sequence> batch;
      batch.push_back(std::move(s));
      runAndCheck(*kernels, batch, scale, rotatedOutput, tolerance,
                  keyName(key) + " L=" + std::to_string(length) +
                      (rotatedOutput ? " rotated" : ""));
    }
  }
}

/// Any k: the output equals the float64 reference on the decompressed
/// cache, for k from 1 to D and keys and values winnowed differently.
TEST_P(AttentionTest, AnyKEqualsReferenceOnDecompressedCache) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  const int32_t d = key.headDim;
  const std::pair<int32_t, int32_t> ks[] = {
      {1, 1}, {3, 17}, {32, 32}, {d / 2 + 1, 7}, {d, d - 1}};

  for (int64_t length : kLengths) {
    for (auto [keyK, valueK] : ks) {
      int64_t sparse = std::max<int64_t>(0, length - kBuffer);
      std::vector<BlockShape> shapes;
      if (sparse > 0)
        shapes.push_back({sparse, keyK, valueK});
      std::vector<Sequence> batch;
      batch.push_back(makeDecompressedCase(key, shapes, length - sparse, scale,
                                           /*rotatedOutput=*/false, rng));
      runAndCheck(*kernels, batch, scale, /*rotatedOutput=*/false, 2e-5,
                  keyName(key) + " L=" + std::to_string(length) + " kK=" +
                      std::to_string(keyK) + " kV=" + std::to_string(valueK));
    }
  }
}

using EncodingPair = std::pair<SparseEncoding, SparseEncoding>;

/// For each length, (k_K, k_V) and (key, value) encodings: one sequence
/// against the float64 reference on its stored cache; the output stays
/// rotated when the two encodings are equal (`rotatedWhenEqual`) or differ.
void checkEncodings(const KernelSet &kernels, ArrayRef<int64_t> lengths,
                    ArrayRef<std::pair<int32_t, int32_t>> ks,
                    ArrayRef<EncodingPair> encodings, bool rotatedWhenEqual,
                    double tolerance, std::mt19937_64 &rng) {
  const KernelKey &key = kernels.key();
  const float scale = 1.0f / std::sqrt(static_cast<float>(key.headDim));
  for (int64_t length : lengths)
    for (auto [keyK, valueK] : ks)
      for (auto [keyEncoding, valueEncoding] : encodings) {
        int64_t sparse = std::max<int64_t>(0, length - kBuffer);
        std::vector<BlockShape> shapes;
        if (sparse > 0)
          shapes.push_back({sparse, keyK, valueK});
        bool rotatedOutput = (keyEncoding == valueEncoding) == rotatedWhenEqual;
        std::vector<Sequence> batch;
        batch.push_back(makeDecompressedCase(key, shapes, length - sparse,
                                             scale, rotatedOutput, rng,
                                             valueEncoding, keyEncoding));
        runAndCheck(kernels, batch, scale, rotatedOutput, tolerance,
                    keyName(key) + " L=" + std::to_string(length) +
                        " kK=" + std::to_string(keyK) +
                        " kV=" + std::to_string(valueK) + " masks " +
                        (keyEncoding == SparseEncoding::Mask ? "K" : "") +
                        (valueEncoding == SparseEncoding::Mask ? "V" : ""));
      }
}

/// Keys, values or both in the mask encoding: the same function of the same
/// stored values.
TEST_P(AttentionTest, MaskEncodingsEqualReferenceOnDecompressedCache) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int32_t d = key.headDim;
  checkEncodings(*kernels, kLengths,
                 {{1, 1}, {32, 32}, {5, d / 2 + 3}, {d, d}, {7, d - 1}},
                 {{SparseEncoding::Indices, SparseEncoding::Mask},
                  {SparseEncoding::Mask, SparseEncoding::Indices},
                  {SparseEncoding::Mask, SparseEncoding::Mask}},
                 /*rotatedWhenEqual=*/true, 2e-5, rng);
}

/// Blocks of both encodings, and different k, side by side in one work
/// item, in a batch.
TEST_P(AttentionTest, EncodingsMixInOneWorkItem) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const float scale = 0.3f;
  std::vector<Sequence> batch;
  for (int item = 0; item < 3; ++item) {
    Sequence s = makeDecompressedCase(
        key, {{300, 9, 40}, {77, 32, 3}, {1, 2, 64}, {513, 64, 17}},
        /*bufferTokens=*/item * 50, scale, /*rotatedOutput=*/false, rng);
    // Re-encode every other block's values, and every third block's keys,
    // as masks: same values, same expectation.
    for (size_t b = item % 2; b < s.blocks.size(); b += 2) {
      StoredBlock &block = s.blocks[b];
      block.valueIndices = masksOf(block.valueIndices, block.tokens,
                                   block.valueK, key.headDim);
      block.valueEncoding = SparseEncoding::Mask;
    }
    for (size_t b = item % 3; b < s.blocks.size(); b += 3) {
      StoredBlock &block = s.blocks[b];
      block.keyIndices = masksOf(block.keyIndices, block.tokens, block.keyK,
                                 key.headDim);
      block.keyEncoding = SparseEncoding::Mask;
    }
    batch.push_back(std::move(s));
  }
  runAndCheck(*kernels, batch, scale, /*rotatedOutput=*/false, 2e-5,
              keyName(key) + " mixed encodings");
}

/// A work item whose sparse cache holds several blocks, each with its own
/// k (tokens winnowed at different times), an empty block, and no buffer.
TEST_P(AttentionTest, BlocksWithDifferentKInOneWorkItem) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int32_t d = key.headDim;
  const float scale = 0.7f / std::sqrt(static_cast<float>(d));
  std::vector<BlockShape> shapes = {
      {1500, d, d}, {0, 5, 9}, {333, 32, 16}, {1, 1, d}, {2049, 7, 40}};
  for (int64_t bufferTokens : {int64_t(0), int64_t(1), kBuffer}) {
    std::vector<Sequence> batch;
    batch.push_back(makeDecompressedCase(key, shapes, bufferTokens, scale,
                                         /*rotatedOutput=*/false, rng));
    runAndCheck(*kernels, batch, scale, /*rotatedOutput=*/false, 2e-5,
                keyName(key) + " buffer=" + std::to_string(bufferTokens));
  }
}

/// A dense block far longer than the buffer (the dense baseline, or a cache
/// that has not winnowed yet) is cut into chunks like the sparse blocks.
TEST_P(AttentionTest, LongDenseBlockEqualsReference) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const float scale = 1.0f / std::sqrt(static_cast<float>(key.headDim));
  for (int64_t bufferTokens : {int64_t(3001), int64_t(6000)}) {
    std::vector<Sequence> batch;
    batch.push_back(makeDecompressedCase(key, {{700, 9, 30}}, bufferTokens,
                                         scale, /*rotatedOutput=*/false, rng));
    batch.push_back(makeDecompressedCase(key, {}, bufferTokens + 5, scale,
                                         /*rotatedOutput=*/false, rng));
    runAndCheck(*kernels, batch, scale, /*rotatedOutput=*/false, 2e-5,
                keyName(key) + " buffer=" + std::to_string(bufferTokens));
  }
}

/// A batch of sequences and heads with their own lengths, k and rotations,
/// with and without rotating the output back.
TEST_P(AttentionTest, BatchOfSequencesWithTheirOwnLengthsAndK) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int32_t d = key.headDim;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  std::uniform_int_distribution<int64_t> length(0, 3000);
  std::uniform_int_distribution<int32_t> kept(1, d);
  std::uniform_int_distribution<int64_t> buffered(0, kBuffer);
  for (bool rotatedOutput : {false, true}) {
    std::vector<Sequence> batch;
    for (int item = 0; item < 11; ++item) {
      int64_t bufferTokens = buffered(rng);
      int64_t sparse = length(rng);
      if (sparse + bufferTokens == 0)
        bufferTokens = 1;
      std::vector<BlockShape> shapes;
      if (sparse > 0)
        shapes.push_back({sparse, kept(rng), kept(rng)});
      batch.push_back(makeDecompressedCase(key, shapes, bufferTokens, scale,
                                           rotatedOutput, rng));
    }
    runAndCheck(*kernels, batch, scale, rotatedOutput, 2e-5,
                keyName(key) + (rotatedOutput ? " rotated" : ""));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionTest,
    ::testing::Combine(::testing::Values(64, 128), ::testing::Values(1, 4, 8),
                       ::testing::Values(StorageType::F32, StorageType::F16)),
    [](const auto &info) {
      // No structured binding here: its commas would split the macro.
      return keyName({std::get<0>(info.param), std::get<1>(info.param),
                      std::get<2>(info.param)});
    });

//===----------------------------------------------------------------------===//
// Compress and rotate
//===----------------------------------------------------------------------===//

class CompressTest
    : public ::testing::TestWithParam<std::tuple<int32_t, StorageType>> {
protected:
  KernelKey key() const {
    return {std::get<0>(GetParam()), 4, std::get<1>(GetParam())};
  }
  std::mt19937_64 rng{0xc0ffeeu + std::get<0>(GetParam()) +
                      static_cast<int>(std::get<1>(GetParam()))};
};

/// With a signed permutation the rotation is exact, so the kernel must pick
/// exactly the reference's components. Entries come from a small set of
/// magnitudes, so most rows are full of ties, which go to the lower index.
TEST_P(CompressTest, MatchesReferenceWinnowExactlyWithTies) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim;
  std::uniform_int_distribution<int> level(0, 3);
  for (int64_t rows : {1, 7, 64, 301}) {
    for (int32_t k : {1, 2, 5, 32, int32_t(dim) - 1, int32_t(dim)}) {
      std::vector<float> x(rows * dim);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < dim; ++j)
          x[r * dim + j] = (r % 5 == 0) ? 1.5f // a row of nothing but ties
                                        : static_cast<float>(level(rng) * 0.5) *
                                              ((rng() & 1) ? 1.0f : -1.0f);
      std::vector<float> rotation = randomSignedPermutation(dim, rng);
      std::vector<uint8_t> values(rows * k * elementBytes(key.storage),
                                  kPoisonByte);
      std::vector<uint8_t> indices(rows * k, kPoisonByte);
      llvm::Error error = kernels->compress(x.data(), rows, rotation.data(), k,
                                            values.data(), indices.data());
      ASSERT_FALSE(error) << llvm::toString(std::move(error));

      std::vector<double> rotated =
          reference::rotate(toDouble(x), rows, dim, toDouble(rotation));
      for (int64_t r = 0; r < rows; ++r) {
        reference::Winnowed want = reference::winnow(&rotated[r * dim], dim, k);
        for (int32_t j = 0; j < k; ++j) {
          ASSERT_EQ(indices[r * k + j], want.indices[j])
              << keyName(key) << " rows=" << rows << " k=" << k << " row " << r
              << " slot " << j;
          ASSERT_EQ(
              loadElement(values, r * k + j, key.storage),
              roundToStorage(static_cast<float>(want.values[j]), key.storage))
              << keyName(key) << " rows=" << rows << " k=" << k << " row " << r
              << " slot " << j;
        }
      }
    }
  }
}

/// The mask encoding stores the same values, and exactly the kept
/// positions' bits; every byte of both results is written.
TEST_P(CompressTest, MaskEncodingMatchesIndexEncoding) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim;
  for (int64_t rows : {1, 33, 300}) {
    for (int32_t k : {1, 9, 32, int32_t(dim) - 1, int32_t(dim)}) {
      std::vector<float> x = randomFloats(rows * dim, rng);
      std::vector<float> rotation = randomOrthogonal(dim, rng);
      size_t valueBytes = rows * k * elementBytes(key.storage);
      std::vector<uint8_t> values(valueBytes, kPoisonByte);
      std::vector<uint8_t> indices(rows * k, kPoisonByte);
      std::vector<uint8_t> maskedValues(valueBytes, kPoisonByte);
      std::vector<uint8_t> masks(rows * dim / 8, kPoisonByte);
      llvm::Error error = kernels->compress(x.data(), rows, rotation.data(), k,
                                            values.data(), indices.data());
      ASSERT_FALSE(error) << llvm::toString(std::move(error));
      error = kernels->compress(x.data(), rows, rotation.data(), k,
                                maskedValues.data(), masks.data(),
                                SparseEncoding::Mask);
      ASSERT_FALSE(error) << llvm::toString(std::move(error));
      EXPECT_EQ(maskedValues, values) << keyName(key) << " k=" << k;
      EXPECT_EQ(masks, masksOf(indices, rows, k, dim))
          << keyName(key) << " rows=" << rows << " k=" << k;
    }
  }
}

/// With a general rotation, rounding may reorder near-equal magnitudes, so
/// check what compress promises: ascending distinct indices, values equal
/// to the rotated row there, and no dropped component larger than a kept
/// one (beyond f32 rounding of the rotation).
TEST_P(CompressTest, KeepsTheLargestRotatedComponents) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim;
  for (int64_t rows : {1, 33, 1000}) {
    for (int32_t k : {1, 17, int32_t(dim) / 2, int32_t(dim)}) {
      std::vector<float> x = randomFloats(rows * dim, rng);
      std::vector<float> rotation = randomOrthogonal(dim, rng);
      std::vector<uint8_t> values(rows * k * elementBytes(key.storage),
                                  kPoisonByte);
      std::vector<uint8_t> indices(rows * k, kPoisonByte);
      llvm::Error error = kernels->compress(x.data(), rows, rotation.data(), k,
                                            values.data(), indices.data());
      ASSERT_FALSE(error) << llvm::toString(std::move(error));
      std::vector<double> rotated =
          reference::rotate(toDouble(x), rows, dim, toDouble(rotation));
      for (int64_t r = 0; r < rows; ++r) {
        const double *row = &rotated[r * dim];
        // f32 rounding of a rotated component scales with the row's norm
        // (cancellation), not with the component; f16 adds its own rounding.
        double norm = 0.0;
        for (int64_t j = 0; j < dim; ++j)
          norm += row[j] * row[j];
        const double rounding = 2e-6 * std::sqrt(norm);
        const double storageRounding =
            key.storage == StorageType::F16 ? 1.0 / 2048 : 0.0;
        std::vector<bool> isKept(dim, false);
        double smallestKept = std::numeric_limits<double>::infinity();
        for (int32_t j = 0; j < k; ++j) {
          int index = indices[r * k + j];
          ASSERT_LT(index, dim) << "row " << r << " slot " << j;
          if (j > 0)
            ASSERT_GT(index, indices[r * k + j - 1]) << "row " << r;
          isKept[index] = true;
          double value = loadElement(values, r * k + j, key.storage);
          ASSERT_NEAR(value, row[index],
                      rounding + storageRounding * std::fabs(row[index]))
              << "row " << r << " index " << index;
          smallestKept = std::min(smallestKept, std::fabs(row[index]));
        }
        for (int64_t j = 0; j < dim; ++j)
          if (!isKept[j])
            ASSERT_LE(std::fabs(row[j]), smallestKept + 2 * rounding)
                << keyName(key) << " k=" << k << " row " << r << " dropped "
                << j;
      }
    }
  }
}

TEST_P(CompressTest, RotateMatchesReference) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim;
  for (int64_t rows : {1, 3, 17, 1000}) {
    std::vector<float> x = randomFloats(rows * dim, rng);
    std::vector<float> rotation = randomOrthogonal(dim, rng);
    std::vector<float> out = poisonedFloats(rows * dim);
    llvm::Error error =
        kernels->rotate(x.data(), rows, rotation.data(), out.data());
    ASSERT_FALSE(error) << llvm::toString(std::move(error));
    EXPECT_LE(relativeError(out, reference::rotate(toDouble(x), rows, dim,
                                                   toDouble(rotation))),
              1e-5)
        << "rows=" << rows;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CompressTest,
    ::testing::Combine(::testing::Values(64, 128),
                       ::testing::Values(StorageType::F32, StorageType::F16)),
    [](const auto &info) {
      return keyName({std::get<0>(info.param), 4, std::get<1>(info.param)});
    });

//===----------------------------------------------------------------------===//
// SWAN-Q8: int8 winnowed values with a scale per row
//===----------------------------------------------------------------------===//

class Q8AttentionTest
    : public ::testing::TestWithParam<std::tuple<int32_t, int32_t>> {
protected:
  KernelKey key() const {
    return q8Key(std::get<0>(GetParam()), std::get<1>(GetParam()));
  }
  std::mt19937_64 rng{0x98000000u + std::get<0>(GetParam()) * 31 +
                      std::get<1>(GetParam())};
};

/// The kernels compute exactly the function they claim on int8 data: the
/// float64 reference on the dequantised cache, for every pair of encodings.
TEST_P(Q8AttentionTest, AnyKEqualsReferenceOnDequantisedCache) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int32_t d = key.headDim;
  checkEncodings(*kernels, {1, kBuffer, kBuffer + 1, 777},
                 {{1, 1}, {5, d / 2 + 3}, {d, d - 1}},
                 {{SparseEncoding::Indices, SparseEncoding::Indices},
                  {SparseEncoding::Indices, SparseEncoding::Mask},
                  {SparseEncoding::Mask, SparseEncoding::Indices},
                  {SparseEncoding::Mask, SparseEncoding::Mask}},
                 /*rotatedWhenEqual=*/false, 1e-5, rng);
}

/// k = D keeps every component, compressed by the kernels: int8 rounding
/// alone separates the output from dense attention on the original K, V.
TEST_P(Q8AttentionTest, FullKWithinOnePercentOfDenseAttention) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim, group = key.groupSize;
  const float scale = 1.0f / std::sqrt(static_cast<float>(dim));
  for (int64_t length : {kBuffer + 1, int64_t(1500)}) {
    for (SparseEncoding encoding :
         {SparseEncoding::Indices, SparseEncoding::Mask}) {
      // Scores of unit spread, as q·k/√D has in a trained model.
      Sequence s;
      s.query = randomFloats(group * dim, rng);
      s.keyRotation = randomOrthogonal(dim, rng);
      s.valueRotation = randomOrthogonal(dim, rng);
      std::vector<float> keys = randomFloats(length * dim, rng);
      std::vector<float> values = randomFloats(length * dim, rng);
      int64_t sparse = length - kBuffer;
      StoredBlock block;
      block.keyK = block.valueK = static_cast<int32_t>(dim);
      block.tokens = sparse;
      block.keyEncoding = block.valueEncoding = encoding;
      int64_t positions = positionBytes(encoding, dim, dim);
      for (auto [input, rotation, stored, indices, scales] :
           {std::tuple(&keys, &s.keyRotation, &block.keyValues,
                       &block.keyIndices, &block.keyScales),
            std::tuple(&values, &s.valueRotation, &block.valueValues,
                       &block.valueIndices, &block.valueScales)}) {
        stored->assign(sparse * dim, kPoisonByte);
        indices->assign(sparse * positions, kPoisonByte);
        scales->assign(sparse, std::numeric_limits<float>::quiet_NaN());
        llvm::Error error = kernels->compress(
            input->data(), sparse, rotation->data(), static_cast<int32_t>(dim),
            stored->data(), indices->data(), encoding, scales->data());
        ASSERT_FALSE(error) << llvm::toString(std::move(error));
      }
      s.blocks.push_back(std::move(block));
      s.bufferTokens = kBuffer;
      for (auto [input, rotation, stored] :
           {std::tuple(&keys, &s.keyRotation, &s.bufferKeys),
            std::tuple(&values, &s.valueRotation, &s.bufferValues)}) {
        std::vector<float> rotated = poisonedFloats(kBuffer * dim);
        llvm::Error error =
            kernels->rotate(input->data() + sparse * dim, kBuffer,
                            rotation->data(), rotated.data());
        ASSERT_FALSE(error) << llvm::toString(std::move(error));
        stored->assign(kBuffer * dim * sizeof(float), 0);
        std::memcpy(stored->data(), rotated.data(), stored->size());
      }
      s.expected =
          reference::attention(toDouble(s.query), group, toDouble(keys),
                               toDouble(values), length, dim, scale);
      s.out = poisonedFloats(group * dim);
      AttentionWork work = s.work();
      llvm::Error error = kernels->attention({work}, scale, false);
      ASSERT_FALSE(error) << llvm::toString(std::move(error));
      // Rounding noise, so measured per output row in norm: ‖o − o_ref‖ /
      // ‖o_ref‖. On Gaussian rows s/2 is about 1 % of a component, so keys
      // and values each add about 0.65 % (rms): 0.9–1.15 % measured, hence
      // a bound of 1.5 %.
      for (int64_t g = 0; g < group; ++g) {
        double error2 = 0.0, norm2 = 0.0;
        for (int64_t j = 0; j < dim; ++j) {
          double want = s.expected[g * dim + j];
          ASSERT_TRUE(std::isfinite(s.out[g * dim + j]));
          error2 += (s.out[g * dim + j] - want) * (s.out[g * dim + j] - want);
          norm2 += want * want;
        }
        EXPECT_LE(std::sqrt(error2 / norm2), 1.5e-2)
            << keyName(key) << " L=" << length << " row " << g
            << (encoding == SparseEncoding::Mask ? " masks" : "");
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Q8AttentionTest,
                         ::testing::Combine(::testing::Values(48, 64, 128),
                                            ::testing::Values(1, 4, 8)),
                         [](const auto &info) {
                           return keyName(q8Key(std::get<0>(info.param),
                                                std::get<1>(info.param)));
                         });

class CompressQ8Test : public ::testing::TestWithParam<int32_t> {
protected:
  KernelKey key() const { return q8Key(GetParam(), 4); }
  std::mt19937_64 rng{0x9c000000u + GetParam()};
};

/// Compresses `rows` rows with int8 values in `encoding`; the values are
/// [rows][k] int8, positions as the encoding says, scales [rows].
struct Q8Rows {
  std::vector<int8_t> values;
  std::vector<uint8_t> positions;
  std::vector<float> scales;
};
Q8Rows compressQ8(const KernelSet &kernels, const std::vector<float> &x,
                  int64_t rows, const std::vector<float> &rotation, int32_t k,
                  SparseEncoding encoding) {
  const int64_t dim = kernels.key().headDim;
  Q8Rows out;
  out.values.assign(rows * k, int8_t(kPoisonByte));
  out.positions.assign(rows * positionBytes(encoding, dim, k), kPoisonByte);
  out.scales.assign(rows, std::numeric_limits<float>::quiet_NaN());
  llvm::Error error =
      kernels.compress(x.data(), rows, rotation.data(), k, out.values.data(),
                       out.positions.data(), encoding, out.scales.data());
  EXPECT_FALSE(error) << llvm::toString(std::move(error));
  return out;
}

/// Every stored component is within s/2 of the rotated value it replaced
/// (beyond f32 rounding of the rotation), s = max|kept| / 127, and the mask
/// encoding stores the same values and scales.
TEST_P(CompressQ8Test, StoresEachKeptComponentWithinHalfAScale) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim;
  for (int64_t rows : {1, 33, 300}) {
    for (int32_t k : {1, 9, int32_t(dim)}) {
      std::vector<float> x = randomFloats(rows * dim, rng);
      std::vector<float> rotation = randomOrthogonal(dim, rng);
      Q8Rows got =
          compressQ8(*kernels, x, rows, rotation, k, SparseEncoding::Indices);
      Q8Rows masked =
          compressQ8(*kernels, x, rows, rotation, k, SparseEncoding::Mask);
      EXPECT_EQ(masked.values, got.values) << "k=" << k;
      EXPECT_EQ(masked.scales, got.scales) << "k=" << k;
      EXPECT_EQ(masked.positions, masksOf(got.positions, rows, k, dim));
      std::vector<double> rotated =
          reference::rotate(toDouble(x), rows, dim, toDouble(rotation));
      for (int64_t r = 0; r < rows; ++r) {
        const double *row = &rotated[r * dim];
        double norm = 0.0, largest = 0.0;
        for (int64_t j = 0; j < dim; ++j) {
          norm += row[j] * row[j];
          largest = std::max(largest, std::fabs(row[j]));
        }
        const double rounding = 2e-6 * std::sqrt(norm);
        const double s = got.scales[r];
        ASSERT_NEAR(s, largest / 127, rounding / 127) << "row " << r;
        for (int32_t j = 0; j < k; ++j) {
          int index = got.positions[r * k + j];
          ASSERT_LT(index, dim);
          if (j > 0)
            ASSERT_GT(index, got.positions[r * k + j - 1]) << "row " << r;
          ASSERT_LE(std::fabs(got.values[r * k + j] * s - row[index]),
                    s / 2 + rounding)
              << keyName(key) << " k=" << k << " row " << r << " index "
              << index;
        }
      }
    }
  }
}

/// Rows at the edges: all zero (s = 0 and zeros, no division by zero), one
/// non-zero component, magnitudes of 1e36 and 1e-30, one of 3e38 (near
/// f32's largest: no overflow), and one of 5e-44, whose s = max/127 rounds
/// to zero in f32 (the row is stored as zeros, within |x| = 5e-44).
TEST_P(CompressQ8Test, EdgeRowsNeitherOverflowNorDivideByZero) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim;
  std::vector<float> identity(dim * dim, 0.0f);
  for (int64_t i = 0; i < dim; ++i)
    identity[i * dim + i] = 1.0f;
  const int64_t rows = 6;
  std::vector<float> x(rows * dim, 0.0f); // row 0: all zero
  x[dim + 5] = -3.0f;                     // row 1: one component
  std::vector<float> big = randomFloats(dim, rng, 1e36);
  std::vector<float> tiny = randomFloats(dim, rng, 1e-30);
  std::copy(big.begin(), big.end(), x.begin() + 2 * dim);
  std::copy(tiny.begin(), tiny.end(), x.begin() + 3 * dim);
  x[4 * dim + 7] = 3e38f;
  x[4 * dim + 8] = -1e38f;
  x[5 * dim + 9] = 5e-44f; // subnormal; 5e-44 / 127 rounds to 0
  for (int32_t k : {1, int32_t(dim) / 2, int32_t(dim)}) {
    for (SparseEncoding encoding :
         {SparseEncoding::Indices, SparseEncoding::Mask}) {
      Q8Rows got = compressQ8(*kernels, x, rows, identity, k, encoding);
      EXPECT_EQ(got.scales[0], 0.0f) << "k=" << k;
      for (int32_t j = 0; j < k; ++j)
        EXPECT_EQ(got.values[j], 0) << "k=" << k;
      EXPECT_FLOAT_EQ(got.scales[1], 3.0f / 127) << "k=" << k;
      for (int64_t r = 1; r < 5; ++r) {
        ASSERT_TRUE(std::isfinite(got.scales[r]) && got.scales[r] > 0.0f)
            << "row " << r << " k=" << k;
        std::vector<float> dense(dim, 0.0f);
        const uint8_t *positions =
            got.positions.data() + r * positionBytes(encoding, dim, k);
        scatterRow(got.values.data() + r * k, positions, k, encoding, dim,
                   StorageType::F32, dense.data(), &got.scales[r]);
        // The largest component is always kept; every kept one is within
        // s/2, and every dropped one is stored as zero.
        double s = got.scales[r], kept = 0;
        for (int64_t j = 0; j < dim; ++j)
          if (dense[j] != 0.0f) {
            ++kept;
            ASSERT_LE(std::fabs(double(dense[j]) - x[r * dim + j]),
                      s / 2 * (1 + 1e-6))
                << "row " << r << " k=" << k << " dim " << j;
          }
        ASSERT_LE(kept, k);
      }
      EXPECT_EQ(got.values[k], k == 1 ? -127 : 0) << "row 1, k=" << k;
      EXPECT_FLOAT_EQ(got.scales[4], 3e38f / 127) << "k=" << k;
      EXPECT_EQ(got.scales[5], 0.0f) << "k=" << k;
      for (int32_t j = 0; j < k; ++j)
        EXPECT_EQ(got.values[5 * k + j], 0) << "row 5, k=" << k;
    }
  }
}

/// int8 kernels need scales and float ones take none; errors name them and
/// write nothing.
TEST_P(CompressQ8Test, MissingScalesAreErrors) {
  KernelKey key = this->key();
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t dim = key.headDim;
  std::vector<float> x = randomFloats(3 * dim, rng);
  std::vector<float> rotation = randomOrthogonal(dim, rng);
  std::vector<uint8_t> values(3 * dim * 4, kPoisonByte), positions(3 * dim);
  std::vector<float> scales(3, 1.0f);
  expectErrorNaming(kernels->compress(x.data(), 3, rotation.data(), 4,
                                      values.data(), positions.data()),
                    "scales is null");
  auto plain = kernelsFor({key.headDim, 4, StorageType::F32});
  ASSERT_TRUE(plain);
  expectErrorNaming(plain->compress(x.data(), 3, rotation.data(), 4,
                                    values.data(), positions.data(),
                                    SparseEncoding::Indices, scales.data()),
                    "scales given");
  EXPECT_TRUE(std::all_of(values.begin(), values.end(),
                          [](uint8_t b) { return b == kPoisonByte; }));

  const float scale = 0.125f;
  std::vector<Sequence> batch;
  batch.push_back(
      makeDecompressedCase(key, {{50, 8, 8}}, 3, scale, false, rng));
  for (bool keys : {true, false}) {
    std::vector<SparseBlock> blocks{batch[0].blocks[0].view()};
    (keys ? blocks[0].keyScales : blocks[0].valueScales) = nullptr;
    AttentionWork work = batch[0].work();
    work.sparse = blocks;
    batch[0].out = poisonedFloats(batch[0].out.size());
    work.out = batch[0].out.data();
    expectErrorNaming(kernels->attention({work}, scale, false),
                      keys ? "sparse[0].keyScales is null"
                           : "sparse[0].valueScales is null");
    for (float value : batch[0].out)
      ASSERT_TRUE(std::isnan(value));
  }
  // Float kernels given int8 blocks would read them as floats.
  AttentionWork work = batch[0].work();
  expectErrorNaming(plain->attention({work}, scale, false),
                    "sparse[0].keyScales given, but winnowed values are not "
                    "int8");
  for (float value : batch[0].out)
    ASSERT_TRUE(std::isnan(value));
}

INSTANTIATE_TEST_SUITE_P(Shapes, CompressQ8Test, ::testing::Values(48, 128),
                         [](const auto &info) {
                           return keyName(q8Key(info.param, 4));
                         });

//===----------------------------------------------------------------------===//
// Specialisation cache, concurrency and errors
//===----------------------------------------------------------------------===//

/// k, lengths and batch are run-time values: sweeping them compiles nothing.
TEST(KernelSetTest, ChangingKLengthOrBatchNeverRecompiles) {
  KernelKey key{64, 2, StorageType::F16};
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const int64_t compiled = KernelSet::compileCount();
  EXPECT_GE(compiled, 1);

  auto again = KernelSet::get(key);
  ASSERT_TRUE(static_cast<bool>(again)) << llvm::toString(again.takeError());
  EXPECT_EQ(again->get(), kernels.get());

  std::mt19937_64 rng(42);
  const float scale = 0.125f;
  for (int32_t k = 1; k <= key.headDim; k += 3) {
    std::vector<Sequence> batch;
    for (int item = 0; item < 1 + k % 4; ++item)
      batch.push_back(makeDecompressedCase(key, {{50 + k * 3, k, k}}, k % 5,
                                           scale, false, rng));
    runAndCheck(**again, batch, scale, false, 2e-5, "k=" + std::to_string(k));
    std::vector<float> x = randomFloats(9 * key.headDim, rng);
    std::vector<float> rotation = randomOrthogonal(key.headDim, rng);
    std::vector<uint8_t> values(9 * k * 2), indices(9 * k);
    llvm::Error error = (*again)->compress(x.data(), 9, rotation.data(), k,
                                           values.data(), indices.data());
    ASSERT_FALSE(error) << llvm::toString(std::move(error));
  }
  EXPECT_EQ(KernelSet::compileCount(), compiled);
}

/// Two threads decoding at once share the pool and the compiled code but
/// not their scratch.
TEST(KernelSetTest, ConcurrentCallersGetTheirOwnResults) {
  KernelKey key{128, 4, StorageType::F16};
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  const float scale = 1.0f / std::sqrt(128.0f);
  std::vector<std::vector<Sequence>> batches(2);
  for (size_t t = 0; t < batches.size(); ++t) {
    std::mt19937_64 rng(1000 + t);
    for (int item = 0; item < 3; ++item)
      batches[t].push_back(makeDecompressedCase(
          key, {{2000 + 500 * int64_t(t), 24, 40}}, 17, scale, false, rng));
  }
  std::vector<std::thread> threads;
  for (size_t t = 0; t < batches.size(); ++t)
    threads.emplace_back([&, t] {
      for (int repeat = 0; repeat < 20; ++repeat)
        runAndCheck(*kernels, batches[t], scale, false, 2e-5,
                    "thread " + std::to_string(t));
    });
  for (std::thread &thread : threads)
    thread.join();
}

TEST(KernelSetTest, RejectsInvalidKeys) {
  const KernelKey invalid[] = {
      {0, 4, StorageType::F32},    {40, 4, StorageType::F32},
      {512, 4, StorageType::F16},  {128, 0, StorageType::F16},
      {128, -3, StorageType::F32}, {128, 4, static_cast<StorageType>(7)}};
  const int64_t compiled = KernelSet::compileCount();
  for (const KernelKey &key : invalid) {
    auto kernels = KernelSet::get(key);
    EXPECT_FALSE(static_cast<bool>(kernels)) << keyName(key);
    if (!kernels) {
      std::string message = llvm::toString(kernels.takeError());
      EXPECT_NE(message.find("kernel key"), std::string::npos) << message;
    }
  }
  EXPECT_EQ(KernelSet::compileCount(), compiled);
}

TEST(KernelSetTest, BadAttentionArgumentsReturnErrorsAndWriteNothing) {
  KernelKey key{64, 4, StorageType::F32};
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  std::mt19937_64 rng(7);
  const float scale = 0.125f;
  std::vector<Sequence> batch;
  batch.push_back(
      makeDecompressedCase(key, {{300, 8, 8}}, 5, scale, false, rng));
  batch.push_back(
      makeDecompressedCase(key, {{100, 3, 4}}, 0, scale, false, rng));

  auto expectRejected = [&](auto mutate, const std::string &argument,
                            bool rotatedOutput = false,
                            float callScale = 0.125f) {
    std::vector<AttentionWork> work;
    for (Sequence &s : batch) {
      s.out = poisonedFloats(s.out.size());
      work.push_back(s.work());
    }
    std::vector<SparseBlock> blocks(work[1].sparse.begin(),
                                    work[1].sparse.end());
    mutate(work, blocks);
    work[1].sparse = blocks;
    expectErrorNaming(kernels->attention(work, callScale, rotatedOutput),
                      argument);
    for (const Sequence &s : batch)
      for (float value : s.out)
        ASSERT_TRUE(std::isnan(value)) << "output written for " << argument;
  };
  using Work = std::vector<AttentionWork>;
  using Blocks = std::vector<SparseBlock>;
  expectRejected([](Work &, Blocks &b) { b[0].keyK = 0; },
                 "work[1].sparse[0].keyK");
  expectRejected([](Work &, Blocks &b) { b[0].keyK = 65; },
                 "work[1].sparse[0].keyK");
  expectRejected([](Work &, Blocks &b) { b[0].valueK = 0; }, "valueK");
  expectRejected(
      [](Work &, Blocks &b) {
        b[0].valueEncoding = static_cast<SparseEncoding>(3);
      },
      "work[1].sparse[0].valueEncoding is unknown");
  expectRejected(
      [](Work &, Blocks &b) {
        b[0].keyEncoding = static_cast<SparseEncoding>(5);
      },
      "work[1].sparse[0].keyEncoding is unknown");
  expectRejected([](Work &, Blocks &b) { b[0].valueK = 1000; }, "valueK");
  expectRejected([](Work &, Blocks &b) { b[0].tokens = -1; }, "tokens");
  expectRejected([](Work &, Blocks &b) { b[0].tokens = int64_t(1) << 41; },
                 "tokens");
  expectRejected([](Work &, Blocks &b) { b[0].keyValues = nullptr; },
                 "keyValues");
  expectRejected([](Work &, Blocks &b) { b[0].keyIndices = nullptr; },
                 "keyIndices");
  expectRejected([](Work &, Blocks &b) { b[0].valueValues = nullptr; },
                 "valueValues");
  expectRejected([](Work &, Blocks &b) { b[0].valueIndices = nullptr; },
                 "valueIndices");
  expectRejected([](Work &, Blocks &b) { b[0].tokens = 0; },
                 "work[1].holds no tokens");
  expectRejected([](Work &w, Blocks &) { w[0].query = nullptr; },
                 "work[0].query");
  expectRejected([](Work &w, Blocks &) { w[0].keyRotation = nullptr; },
                 "keyRotation");
  expectRejected([](Work &w, Blocks &) { w[1].valueRotation = nullptr; },
                 "valueRotation");
  expectRejected([](Work &w, Blocks &) { w[1].out = nullptr; }, "work[1].out");
  expectRejected([](Work &w, Blocks &) { w[0].buffer.tokens = -2; },
                 "buffer.tokens");
  expectRejected([](Work &w, Blocks &) { w[0].buffer.keys = nullptr; },
                 "buffer.keys");
  expectRejected([](Work &w, Blocks &) { w[0].buffer.values = nullptr; },
                 "buffer.values");
  expectRejected([](Work &, Blocks &) {}, "scale", false,
                 std::numeric_limits<float>::quiet_NaN());
  expectErrorNaming(kernels->attention({}, scale, false), "work is empty");

  // Without rotating back, the value rotation is not needed.
  std::vector<AttentionWork> work;
  for (Sequence &s : batch) {
    s.out = poisonedFloats(s.out.size());
    work.push_back(s.work());
  }
  work[0].valueRotation = nullptr;
  llvm::Error error = kernels->attention(work, scale, /*rotatedOutput=*/true);
  EXPECT_FALSE(error) << llvm::toString(std::move(error));
  for (const Sequence &s : batch)
    for (float value : s.out)
      ASSERT_TRUE(std::isfinite(value));
}

TEST(KernelSetTest, BadCompressAndRotateArgumentsReturnErrors) {
  KernelKey key{64, 4, StorageType::F16};
  auto kernels = kernelsFor(key);
  ASSERT_TRUE(kernels);
  std::mt19937_64 rng(9);
  std::vector<float> x = randomFloats(10 * 64, rng);
  std::vector<float> rotation = randomOrthogonal(64, rng);
  std::vector<uint8_t> values(10 * 64 * 2, kPoisonByte);
  std::vector<uint8_t> indices(10 * 64, kPoisonByte);
  auto untouched = [&] {
    return std::all_of(values.begin(), values.end(),
                       [](uint8_t b) { return b == kPoisonByte; }) &&
           std::all_of(indices.begin(), indices.end(),
                       [](uint8_t b) { return b == kPoisonByte; });
  };
  expectErrorNaming(kernels->compress(x.data(), 10, rotation.data(), 0,
                                      values.data(), indices.data()),
                    "k = 0");
  expectErrorNaming(kernels->compress(x.data(), 10, rotation.data(), 65,
                                      values.data(), indices.data()),
                    "k = 65");
  expectErrorNaming(kernels->compress(x.data(), -1, rotation.data(), 4,
                                      values.data(), indices.data()),
                    "rows");
  expectErrorNaming(kernels->compress(nullptr, 10, rotation.data(), 4,
                                      values.data(), indices.data()),
                    "x is null");
  expectErrorNaming(kernels->compress(x.data(), 10, nullptr, 4, values.data(),
                                      indices.data()),
                    "rotation is null");
  expectErrorNaming(kernels->compress(x.data(), 10, rotation.data(), 4, nullptr,
                                      indices.data()),
                    "values is null");
  expectErrorNaming(kernels->compress(x.data(), 10, rotation.data(), 4,
                                      values.data(), nullptr),
                    "positions is null");
  expectErrorNaming(kernels->compress(x.data(), 10, rotation.data(), 4,
                                      values.data(), indices.data(),
                                      static_cast<SparseEncoding>(7)),
                    "unknown encoding 7");
  EXPECT_TRUE(untouched());

  std::vector<float> out = poisonedFloats(10 * 64);
  expectErrorNaming(kernels->rotate(x.data(), -5, rotation.data(), out.data()),
                    "rows");
  expectErrorNaming(kernels->rotate(x.data(), 10, rotation.data(), nullptr),
                    "out is null");
  expectErrorNaming(kernels->rotate(x.data(), 10, nullptr, out.data()),
                    "rotation is null");
  for (float value : out)
    ASSERT_TRUE(std::isnan(value));
}

} // namespace
