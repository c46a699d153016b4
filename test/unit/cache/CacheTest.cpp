//===- CacheTest.cpp - the SWAN KV cache against the float64 reference ----===//
//
// A test model follows every sequence (original K/V, where each token should
// be, which k it should have, which pages exist) and after every operation
// the cache must agree with it exactly: token placement, page list, byte
// counts, stored contents (each winnowed row is the top k of the rotated
// original), and decode attention equal to the float64 reference on the
// decompressed cache.
//
//===----------------------------------------------------------------------===//

#include "swan/Cache.h"
#include "swan/Runtime/Eval/Reference.h"
#include "swan/WeightFolding.h"

#include "RandomOrthogonal.h"

#include "gtest/gtest.h"

#include <cmath>
#include <limits>
#include <map>
#include <random>

#ifdef __GLIBC__
#include <malloc.h>
#endif

using namespace swan;
using swan::test::randomFloats;
using swan::test::randomOrthogonal;

namespace {

struct Shape {
  const char *name;
  int32_t d, h, g, b, pageTokens, kKey, kValue;
  StorageType storage;
  WinnowedStorage winnowed = WinnowedStorage::AsStorage;
};

std::ostream &operator<<(std::ostream &os, const Shape &s) {
  return os << s.name;
}

const Shape kShapes[] = {
    {"D64_H2_G4_b8_P5_f32", 64, 2, 4, 8, 5, 16, 24, StorageType::F32},
    {"D128_H1_G1_b16_P7_f16", 128, 1, 1, 16, 7, 32, 32, StorageType::F16},
    {"D48_H3_G8_b1_P3_f16", 48, 3, 8, 1, 3, 1, 48, StorageType::F16},
    {"D32_H2_G2_b5_P64_f32", 32, 2, 2, 5, 64, 7, 5, StorageType::F32},
    // SWAN-Q8: int8 winnowed values with a scale per row.
    {"D48_H3_G8_b1_P3_f16_q8", 48, 3, 8, 1, 3, 1, 48, StorageType::F16,
     WinnowedStorage::Int8},
    {"D64_H2_G4_b8_P5_f32_q8", 64, 2, 4, 8, 5, 16, 24, StorageType::F32,
     WinnowedStorage::Int8},
};

std::vector<double> toDouble(const float *x, int64_t n) {
  return std::vector<double>(x, x + n);
}

double relativeError(const float *got, const std::vector<double> &want,
                     int64_t offset, int64_t n) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < n; ++i) {
    diff += (got[i] - want[offset + i]) * (got[i] - want[offset + i]);
    norm += want[offset + i] * want[offset + i];
  }
  return std::sqrt(diff / std::max(norm, 1e-300));
}

/// What the cache should hold, computed independently of its code.
struct SequenceModel {
  std::vector<float> keys, values; // originals, [t][H][D]
  int64_t tokens = 0;
  struct PageModel {
    int32_t kKey, kValue;
    int64_t used;
    bool mask;    // values stored as D-bit masks rather than indices
    bool keyMask; // keys likewise
  };
  std::vector<PageModel> pages;
  std::vector<int32_t> keyK, valueK; // per winnowed token
};

class CacheHarness {
public:
  CacheHarness(const CacheConfig &config, uint64_t seed)
      : config(config), rng(seed) {
    rotK = randomOrthogonal(config.numKvHeads, config.headDim, rng);
    rotV = randomOrthogonal(config.numKvHeads, config.headDim, rng);
    auto created = Cache::create(config, rotK, rotV);
    if (!created) {
      ADD_FAILURE() << llvm::toString(created.takeError());
      return;
    }
    cache = std::make_unique<Cache>(std::move(*created));
    kKey = config.kKey;
    kValue = config.kValue;
  }

  int64_t rowFloats() const {
    return int64_t(config.numKvHeads) * config.headDim;
  }
  size_t element() const { return elementBytes(config.storage); }
  bool quantised() const { return config.winnowed == WinnowedStorage::Int8; }

  /// Appends n fresh random tokens (values pre-rotated when configured).
  void append(int32_t seq, int64_t n) {
    auto keys = randomFloats(n * rowFloats(), rng);
    auto values = randomFloats(n * rowFloats(), rng, 0.5);
    ASSERT_FALSE(bool(cache->append(seq, n, keys.data(), values.data())))
        << "append " << n << " to " << seq;
    SequenceModel &m = model[seq];
    int64_t before = std::max<int64_t>(0, m.tokens - config.bufferTokens);
    m.keys.insert(m.keys.end(), keys.begin(), keys.end());
    m.values.insert(m.values.end(), values.begin(), values.end());
    m.tokens += n;
    int64_t after = std::max<int64_t>(0, m.tokens - config.bufferTokens);
    for (int64_t t = before; t < after; ++t) {
      if (m.pages.empty() || m.pages.back().kKey != kKey ||
          m.pages.back().kValue != kValue ||
          m.pages.back().mask != masksValues(kValue) ||
          m.pages.back().keyMask != masksKeys(kKey) ||
          m.pages.back().used == config.pageTokens)
        m.pages.push_back(
            {kKey, kValue, 0, masksValues(kValue), masksKeys(kKey)});
      ++m.pages.back().used;
      m.keyK.push_back(kKey);
      m.valueK.push_back(kValue);
    }
  }

  /// Whether a page created now with this k_V stores masks: under Auto when
  /// a mask row (D/8 bytes, D being a multiple of 16) is smaller than k_V
  /// index bytes.
  bool masksValues(int32_t pageKValue) const {
    switch (config.valueEncoding) {
    case ValueEncoding::Indices:
      return false;
    case ValueEncoding::Mask:
      return true;
    case ValueEncoding::Auto:
      break;
    }
    return config.headDim / 8 < pageKValue;
  }

  /// Whether a page created now with this k_K stores key masks: under Auto
  /// when a mask row is smaller than k_K index bytes and the G query rows'
  /// expanded scores (G · D/8) cost no more than k_K.
  bool masksKeys(int32_t pageKKey) const {
    switch (config.keyEncoding) {
    case ValueEncoding::Indices:
      return false;
    case ValueEncoding::Mask:
      return true;
    case ValueEncoding::Auto:
      break;
    }
    return config.headDim / 8 < pageKKey &&
           config.groupSize * (config.headDim / 8) <= pageKKey;
  }

  void setK(int32_t newKKey, int32_t newKValue) {
    ASSERT_FALSE(bool(cache->setK(newKKey, newKValue)));
    kKey = newKKey;
    kValue = newKValue;
  }

  void rewinnow(int32_t newKKey, int32_t newKValue) {
    // Remember what was stored: lowered tokens must keep the top k' of it.
    std::map<int32_t, DecompressedSequence> before;
    for (auto &[seq, m] : model) {
      auto d = cache->decompress(seq);
      ASSERT_TRUE(bool(d)) << llvm::toString(d.takeError());
      before.emplace(seq, std::move(*d));
    }
    ASSERT_FALSE(bool(cache->rewinnow(newKKey, newKValue)));
    kKey = newKKey;
    kValue = newKValue;
    for (auto &[seq, m] : model) {
      for (auto &p : m.pages) {
        p.kKey = std::min(p.kKey, newKKey);
        p.kValue = std::min(p.kValue, newKValue);
      }
      for (int32_t &k : m.keyK)
        k = std::min(k, newKKey);
      for (int32_t &k : m.valueK)
        k = std::min(k, newKValue);
      auto now = cache->decompress(seq);
      ASSERT_TRUE(bool(now));
      const DecompressedSequence &old = before.at(seq);
      const int64_t d = config.headDim;
      for (int64_t t = 0; t < m.tokens; ++t)
        for (int64_t h = 0; h < config.numKvHeads; ++h)
          for (bool isKey : {true, false}) {
            const auto &oldRows = isKey ? old.keys : old.values;
            const auto &newRows = isKey ? now->keys : now->values;
            int64_t at = (t * config.numKvHeads + h) * d;
            int32_t k = old.inBuffer[t] ? d
                        : isKey         ? std::min(old.keyK[t], newKKey)
                                        : std::min(old.valueK[t], newKValue);
            auto kept = reference::winnow(
                toDouble(oldRows.data() + at, d).data(), d, k);
            auto want = reference::scatter(kept, d);
            for (int64_t i = 0; i < d; ++i)
              ASSERT_EQ(newRows[at + i], float(want[i]))
                  << "seq " << seq << " token " << t << " head " << h
                  << (isKey ? " key" : " value") << " component " << i;
          }
    }
  }

  void release(int32_t seq) {
    ASSERT_FALSE(bool(cache->release(seq)));
    model.erase(seq);
  }

  size_t expectedBytes(const SequenceModel &m) const {
    size_t bytes = 0;
    if (m.tokens > 0) {
      int64_t b = config.bufferTokens;
      int64_t capacity = b + std::max<int64_t>(1, (b + 7) / 8);
      bytes += 2 * rowFloats() * capacity * element();
    }
    // Per row: two f32 scales under SWAN-Q8, both value arrays (int8 under
    // SWAN-Q8), then key and value indices or masks.
    const size_t winnowed = quantised() ? 1 : element();
    const size_t scales = quantised() ? 2 * sizeof(float) : 0;
    for (auto &p : m.pages)
      bytes += size_t(config.numKvHeads) * config.pageTokens *
               (scales + (p.kKey + p.kValue) * winnowed +
                (p.keyMask ? config.headDim / 8 : p.kKey) +
                (p.mask ? config.headDim / 8 : p.kValue));
    return bytes;
  }

  /// docs/DESIGN.md §6 at the current k: dense costs 2·L·D per query head, SWAN
  /// 2·D² + 2·b·D + (L − b)·(k_K + k_V); below the L where they meet SWAN
  /// costs more.
  int64_t expectedBreakEven() const {
    double k = (kKey + kValue) / 2.0, d = config.headDim;
    if (k >= d)
      return std::numeric_limits<int64_t>::max();
    return int64_t(std::ceil(d * d / (d - k))) + config.bufferTokens;
  }

  /// Placement, pages, bytes and stored contents, exactly.
  void checkState() {
    size_t total = 0;
    for (auto &[seq, m] : model) {
      ASSERT_EQ(cache->tokens(seq), m.tokens) << "seq " << seq;
      auto stats = cache->stats(seq);
      ASSERT_TRUE(bool(stats));
      int64_t buffered = std::min<int64_t>(m.tokens, config.bufferTokens);
      EXPECT_EQ(stats->bufferTokens, buffered);
      EXPECT_EQ(stats->sparseTokens, m.tokens - buffered);
      EXPECT_EQ(stats->pages, int64_t(m.pages.size()));
      EXPECT_EQ(stats->maskPages,
                std::count_if(m.pages.begin(), m.pages.end(),
                              [](const auto &p) { return p.mask; }))
          << "seq " << seq;
      EXPECT_EQ(stats->keyMaskPages,
                std::count_if(m.pages.begin(), m.pages.end(),
                              [](const auto &p) { return p.keyMask; }))
          << "seq " << seq;
      EXPECT_EQ(stats->bytes, expectedBytes(m)) << "seq " << seq;
      EXPECT_EQ(stats->breakEvenTokens, expectedBreakEven());
      EXPECT_EQ(stats->belowBreakEven, m.tokens < expectedBreakEven())
          << "seq " << seq;
      total += expectedBytes(m);
      checkContents(seq, m);
    }
    EXPECT_EQ(cache->bytes(), total);
    EXPECT_EQ(cache->sequenceCount(), int64_t(model.size()));
  }

  /// Every stored row is the rotated original, winnowed to its k: stored
  /// entries match the float64 rotation, and none kept is smaller than one
  /// dropped (up to storage rounding; under SWAN-Q8 within s/2, s the row's
  /// largest magnitude / 127).
  void checkContents(int32_t seq, const SequenceModel &m) {
    auto stored = cache->decompress(seq);
    ASSERT_TRUE(bool(stored));
    ASSERT_EQ(stored->tokens, m.tokens);
    const int64_t d = config.headDim, hCount = config.numKvHeads;
    const int64_t sparse = m.tokens - std::min<int64_t>(m.tokens,
                                                        config.bufferTokens);
    const double rounding =
        config.storage == StorageType::F16 ? 2e-3 : 2e-6; // relative
    for (int64_t t = 0; t < m.tokens; ++t) {
      ASSERT_EQ(bool(stored->inBuffer[t]), t >= sparse) << "token " << t;
      if (t < sparse) {
        ASSERT_EQ(stored->keyK[t], m.keyK[t]) << "token " << t;
        ASSERT_EQ(stored->valueK[t], m.valueK[t]) << "token " << t;
      }
      for (int64_t h = 0; h < hCount; ++h)
        for (bool isKey : {true, false}) {
          int64_t at = (t * hCount + h) * d;
          const float *original = (isKey ? m.keys : m.values).data() + at;
          std::vector<double> rotated;
          if (!isKey && config.valuesPrerotated) {
            rotated = toDouble(original, d);
          } else {
            const auto &rot = isKey ? rotK : rotV;
            rotated = reference::rotate(toDouble(original, d), 1, d,
                                        toDouble(rot.data() + h * d * d, d * d));
          }
          const float *row = (isKey ? stored->keys : stored->values).data() + at;
          int32_t k = t >= sparse ? d : isKey ? m.keyK[t] : m.valueK[t];
          // A kept component below half fp16's smallest subnormal, or below
          // s/2 under SWAN-Q8, is stored as zero and looks dropped.
          double largest = 0;
          for (int64_t i = 0; i < d; ++i)
            largest = std::max(largest, std::fabs(rotated[i]));
          const bool q8 = quantised() && t < sparse;
          const double halfStep = q8 ? largest / 254 * (1 + 1e-5) : 0.0;
          const double underflow = q8 ? halfStep
                                   : config.storage == StorageType::F16
                                       ? 0x1p-25
                                       : 0.0;
          int32_t nonzero = 0, underflowed = 0;
          double smallestKept = std::numeric_limits<double>::infinity();
          double largestDropped = 0;
          for (int64_t i = 0; i < d; ++i) {
            if (row[i] != 0.0f) {
              ++nonzero;
              // (Tokens that left an fp16 buffer were rounded there first.)
              ASSERT_NEAR(row[i], rotated[i],
                          halfStep + rounding * std::fabs(rotated[i]) + 1e-6)
                  << "seq " << seq << " token " << t << " head " << h
                  << " component " << i;
              smallestKept = std::min(smallestKept, std::fabs(rotated[i]));
            } else {
              largestDropped = std::max(largestDropped, std::fabs(rotated[i]));
              underflowed += std::fabs(rotated[i]) <= underflow;
            }
          }
          ASSERT_LE(nonzero, k) << "seq " << seq << " token " << t << " head "
                                << h << (isKey ? " key" : " value");
          ASSERT_GE(nonzero + underflowed, k)
              << "seq " << seq << " token " << t << " head " << h
              << (isKey ? " key" : " value");
          // Re-winnowing int8 rows ranks the stored values: magnitudes
          // within one step s of each other may tie, and ties keep the
          // lower index.
          ASSERT_GE(smallestKept,
                    largestDropped * (1 - 2 * rounding) - 1e-6 - 2 * halfStep)
              << "seq " << seq << " token " << t << " head " << h;
        }
    }
  }

  /// Decode attention on `seqs` (duplicates allowed) against the float64
  /// reference on the decompressed cache, or on the originals when
  /// `againstOriginals` (meaningful with k = D only).
  double checkAttention(const std::vector<int32_t> &seqs,
                        bool againstOriginals = false) {
    const int64_t d = config.headDim, hCount = config.numKvHeads,
                  g = config.groupSize, rows = hCount * g * d;
    auto q = randomFloats(seqs.size() * rows, rng);
    std::vector<float> out(seqs.size() * rows,
                           std::numeric_limits<float>::quiet_NaN());
    float scale = 1.0f / std::sqrt(float(d));
    llvm::Error e = cache->attention(seqs, q.data(), scale, out.data());
    if (e) {
      ADD_FAILURE() << llvm::toString(std::move(e));
      return INFINITY;
    }
    double worst = 0;
    for (size_t i = 0; i < seqs.size(); ++i) {
      const SequenceModel &m = model.at(seqs[i]);
      auto stored = cache->decompress(seqs[i]);
      EXPECT_TRUE(bool(stored));
      for (int64_t h = 0; h < hCount; ++h) {
        std::vector<double> keys(m.tokens * d), values(m.tokens * d);
        for (int64_t t = 0; t < m.tokens; ++t)
          for (int64_t j = 0; j < d; ++j) {
            int64_t at = (t * hCount + h) * d + j;
            keys[t * d + j] = againstOriginals ? m.keys[at] : stored->keys[at];
            values[t * d + j] =
                againstOriginals ? m.values[at] : stored->values[at];
          }
        auto rk = toDouble(rotK.data() + h * d * d, d * d);
        auto rv = toDouble(rotV.data() + h * d * d, d * d);
        if (!againstOriginals) {
          keys = reference::rotateBack(keys, m.tokens, d, rk);
          values = reference::rotateBack(values, m.tokens, d, rv);
        } else if (config.valuesPrerotated) {
          values = reference::rotateBack(values, m.tokens, d, rv);
        }
        int64_t at = (i * hCount + h) * g * d;
        auto want = reference::attention(toDouble(q.data() + at, g * d), g,
                                         keys, values, m.tokens, d, scale);
        if (config.outputRotated)
          want = reference::rotate(want, g, d, rv);
        for (int64_t j = 0; j < g * d; ++j)
          if (!std::isfinite(out[at + j])) {
            ADD_FAILURE() << "output element " << at + j << " not written";
            return INFINITY;
          }
        for (int64_t r = 0; r < g; ++r)
          worst = std::max(worst, relativeError(out.data() + at + r * d, want,
                                                r * d, d));
      }
    }
    return worst;
  }

  std::vector<int32_t> liveSequences() const {
    std::vector<int32_t> seqs;
    for (auto &[seq, m] : model)
      if (m.tokens > 0)
        seqs.push_back(seq);
    return seqs;
  }

  CacheConfig config;
  std::mt19937_64 rng;
  std::vector<float> rotK, rotV;
  std::unique_ptr<Cache> cache;
  std::map<int32_t, SequenceModel> model;
  int32_t kKey = 0, kValue = 0;
};

CacheConfig configFor(const Shape &s) {
  CacheConfig c;
  c.headDim = s.d;
  c.numKvHeads = s.h;
  c.groupSize = s.g;
  c.bufferTokens = s.b;
  c.pageTokens = s.pageTokens;
  c.kKey = s.kKey;
  c.kValue = s.kValue;
  c.storage = s.storage;
  c.winnowed = s.winnowed;
  c.maxSequences = 8;
  return c;
}

/// Kernel arithmetic is f32 on exactly the stored values, for either storage
/// type, so the bound does not depend on it.
constexpr double kDecompressedTolerance = 1e-4;

const char *encodingName(ValueEncoding encoding) {
  switch (encoding) {
  case ValueEncoding::Auto:
    return "auto";
  case ValueEncoding::Indices:
    return "indices";
  case ValueEncoding::Mask:
    return "mask";
  }
  return "unknown";
}

} // namespace

namespace swan {
/// GoogleTest prints parameters through PrintTo, found in the type's
/// namespace.
void PrintTo(ValueEncoding encoding, std::ostream *os) {
  *os << encodingName(encoding);
}
} // namespace swan

namespace {

/// The key and the value encoding a parameterised test runs with.
struct Encodings {
  ValueEncoding keys, values;
  const char *name;
};

std::ostream &operator<<(std::ostream &os, const Encodings &e) {
  return os << e.name;
}

const Encodings kAuto = {ValueEncoding::Auto, ValueEncoding::Auto, "auto"};
const Encodings kIndices = {ValueEncoding::Indices, ValueEncoding::Indices,
                            "indices"};
const Encodings kValueMasks = {ValueEncoding::Indices, ValueEncoding::Mask,
                               "mask"};
const Encodings kBothMasks = {ValueEncoding::Mask, ValueEncoding::Mask,
                              "masks"};

/// Every shape with each explicit encoding: index pages, value masks, and
/// keys and values both as masks.
class CacheShapeTest
    : public ::testing::TestWithParam<std::tuple<Shape, Encodings>> {
protected:
  const Shape &shape() const { return std::get<0>(GetParam()); }
  const Encodings &encodings() const { return std::get<1>(GetParam()); }
  CacheConfig configFor(const Shape &s) const {
    CacheConfig c = ::configFor(s);
    c.keyEncoding = encodings().keys;
    c.valueEncoding = encodings().values;
    return c;
  }
  /// Fresh inputs for each encoding.
  uint64_t seed(uint64_t base) const {
    return base + shape().d + 1000 * int(encodings().values) +
           10000 * int(encodings().keys);
  }
};

TEST_P(CacheShapeTest, DecodeMatchesReferenceOnDecompressedCache) {
  const Shape &s = shape();
  CacheHarness t(configFor(s), seed(0x5eed0001));
  ASSERT_TRUE(t.cache);
  // Prefill lengths around the buffer and page boundaries; ids need not be
  // dense; sequence 5 starts empty.
  const int64_t b = s.b, p = s.pageTokens;
  std::vector<std::pair<int32_t, int64_t>> prefill = {
      {3, 1}, {0, b}, {11, b + 1}, {2, b + 3 * p + 2}, {5, 0}};
  for (auto [seq, n] : prefill)
    t.append(seq, n);
  t.checkState();
  EXPECT_LE(t.checkAttention(t.liveSequences()), kDecompressedTolerance);

  std::mt19937_64 steps(7);
  for (int step = 0; step < 24; ++step) {
    for (auto [seq, n] : prefill) {
      // Mostly one token per step, sometimes a burst that crosses both the
      // buffer and a page boundary at once.
      int64_t count = step % 7 == 3 && seq == 0 ? b + p + 1 : 1;
      t.append(seq, count);
    }
    t.checkState();
    auto seqs = t.liveSequences();
    std::shuffle(seqs.begin(), seqs.end(), steps);
    seqs.push_back(seqs.front()); // a duplicate in the batch is allowed
    EXPECT_LE(t.checkAttention(seqs), kDecompressedTolerance)
        << "step " << step;
    if (HasFatalFailure() || HasFailure())
      return;
  }
}

TEST_P(CacheShapeTest, FullKMatchesDenseAttentionOnOriginals) {
  Shape s = shape();
  s.kKey = s.kValue = s.d;
  CacheHarness t(configFor(s), seed(0x5eed0002));
  ASSERT_TRUE(t.cache);
  t.append(1, 2 * s.b + s.pageTokens + 3);
  t.append(4, 1);
  t.append(6, s.b + 1);
  // int8 rounding: about 1 % rms of each output row over many tokens
  // (KernelsTest), up to 2.2 % over these few.
  const double tolerance = s.winnowed == WinnowedStorage::Int8 ? 3e-2
                           : s.storage == StorageType::F16     ? 5e-3
                                                               : 1e-5;
  for (int step = 0; step < 6; ++step) {
    EXPECT_LE(t.checkAttention({1, 4, 6}, /*againstOriginals=*/true),
              tolerance)
        << "step " << step;
    for (int32_t seq : {1, 4, 6})
      t.append(seq, 1);
  }
  t.checkState();
}

/// Auto too, where k changes: it gives these shapes mask pages at their
/// starting k_V and index pages once k_V falls to D/8 or below, and key
/// masks at G = 1, D = 128 until k_K falls below G · D/8 (elsewhere it would
/// repeat the fixed runs).
class CacheKChangeTest : public CacheShapeTest {};

TEST_P(CacheKChangeTest, RuntimeKAndRewinnowKeepMatching) {
  const Shape &s = shape();
  CacheHarness t(configFor(s), seed(0x5eed0003));
  ASSERT_TRUE(t.cache);
  int64_t compiled = KernelSet::compileCount();
  const int32_t d = s.d;
  auto lower = [&](int32_t k, int32_t by) { return std::max(1, k - by); };
  t.append(0, s.b + 2 * s.pageTokens + 1);
  t.append(1, s.b + 1);
  t.append(2, 3);
  // Each phase: a k change, then decode steps that winnow tokens with it.
  struct Phase {
    bool rewinnow;
    int32_t kKey, kValue;
  };
  std::vector<Phase> phases = {
      {false, lower(s.kKey, 3), lower(s.kValue, 2)},
      {false, std::min(d, s.kKey + 5), std::min(d, s.kValue + 9)},
      {true, lower(s.kKey, 4), lower(s.kValue, 1)},
      {false, std::min(d, s.kKey + 2), std::min(d, s.kValue + 2)},
      {true, lower(s.kKey, 2), d},
      {true, 1, 1},
  };
  for (const Phase &phase : phases) {
    size_t bytesBefore = t.cache->bytes();
    if (phase.rewinnow)
      t.rewinnow(phase.kKey, phase.kValue);
    else
      t.setK(phase.kKey, phase.kValue);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_EQ(t.cache->kKey(), phase.kKey);
    EXPECT_EQ(t.cache->kValue(), phase.kValue);
    t.checkState();
    if (phase.rewinnow)
      EXPECT_LE(t.cache->bytes(), bytesBefore);
    else
      EXPECT_EQ(t.cache->bytes(), bytesBefore);
    for (int step = 0; step < s.pageTokens + 2; ++step) {
      for (int32_t seq : {0, 1, 2})
        t.append(seq, 1);
      if (step % 3 == 0) {
        t.checkState();
        EXPECT_LE(t.checkAttention({2, 0, 1}), kDecompressedTolerance);
      }
      ASSERT_FALSE(HasFailure());
    }
  }
  EXPECT_EQ(KernelSet::compileCount(), compiled)
      << "changing k or lengths recompiled a kernel";
}

TEST_P(CacheShapeTest, ReleaseReturnsMemoryAndFreesTheId) {
  const Shape &s = shape();
  CacheHarness t(configFor(s), seed(0x5eed0004));
  ASSERT_TRUE(t.cache);
  t.append(9, 2 * s.b + s.pageTokens);
  t.append(2, s.b + 1);
  size_t both = t.cache->bytes();
  t.release(9);
  t.checkState();
  EXPECT_LT(t.cache->bytes(), both);
  EXPECT_EQ(t.cache->tokens(9), -1);
  t.append(9, 2);
  t.checkState();
  EXPECT_LE(t.checkAttention({9, 2}), kDecompressedTolerance);
  t.release(9);
  t.release(2);
  EXPECT_EQ(t.cache->bytes(), 0u);
}

std::string shapeAndEncoding(
    const ::testing::TestParamInfo<std::tuple<Shape, Encodings>> &info) {
  return std::string(std::get<0>(info.param).name) + "_" +
         std::get<1>(info.param).name;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, CacheShapeTest,
    ::testing::Combine(::testing::ValuesIn(kShapes),
                       ::testing::Values(kIndices, kValueMasks, kBothMasks)),
    shapeAndEncoding);
INSTANTIATE_TEST_SUITE_P(Shapes, CacheKChangeTest,
                         ::testing::Combine(::testing::ValuesIn(kShapes),
                                            ::testing::Values(kAuto, kIndices,
                                                              kValueMasks,
                                                              kBothMasks)),
                         shapeAndEncoding);

/// Auto chooses each page's encoding when the page is created, from its k_V:
/// masks above D/8, indices at or below it. set_k across the threshold
/// leaves pages of both kinds in one sequence, which must decode and attend
/// as the reference says.
TEST(CacheTest, AutoEncodingIsChosenPerPageAcrossTheThreshold) {
  CacheConfig c;
  c.headDim = 64; // D/8 = 8
  c.numKvHeads = 2;
  c.groupSize = 3;
  c.bufferTokens = 3;
  c.pageTokens = 4;
  c.kKey = 5;
  c.kValue = 9;
  c.storage = StorageType::F16;
  c.maxSequences = 2;
  ASSERT_EQ(c.valueEncoding, ValueEncoding::Auto) << "Auto is the default";
  CacheHarness t(c, 0x5eed0a70);
  ASSERT_TRUE(t.cache);
  using Counts = std::pair<int64_t, int64_t>; // pages, mask pages
  auto pages = [&](int32_t seq) {
    auto stats = t.cache->stats(seq);
    EXPECT_TRUE(bool(stats));
    return stats ? Counts(stats->pages, stats->maskPages) : Counts(-1, -1);
  };
  t.append(0, 3 + 4); // fills one page at k_V = 9
  EXPECT_EQ(pages(0), Counts(1, 1));
  t.setK(5, 8); // a mask row would cost as much as 8 indices
  t.append(0, 4);
  EXPECT_EQ(pages(0), Counts(2, 1));
  t.setK(7, 64);
  t.append(0, 2);
  t.setK(7, 1);
  t.append(0, 3);
  EXPECT_EQ(pages(0), Counts(4, 2));
  t.setK(3, 17);
  t.append(1, 3 + 9); // prefill: three fresh mask pages at once
  EXPECT_EQ(pages(1), Counts(3, 3));
  t.checkState();
  EXPECT_LE(t.checkAttention({0, 1, 0}), kDecompressedTolerance);
}

/// A mask page holds 2·k + D/8 bytes per value row, and per key row when
/// keys are masks too (docs/DESIGN.md §5: 80 instead of 96 at D = 128, k = 32),
/// and keeps its D/8 mask bytes when it is rewinnowed; the figures are
/// worked out by hand.
TEST(CacheTest, MaskPageBytesAreExact) {
  for (const Encodings &encodings : {kValueMasks, kIndices, kBothMasks}) {
    const bool mask = encodings.values == ValueEncoding::Mask;
    const bool keyMask = encodings.keys == ValueEncoding::Mask;
    CacheConfig c;
    c.headDim = 128;
    c.numKvHeads = 2;
    c.groupSize = 1;
    c.bufferTokens = 2;
    c.pageTokens = 8;
    c.kKey = c.kValue = 32;
    c.storage = StorageType::F16;
    c.maxSequences = 1;
    c.keyEncoding = encodings.keys;
    c.valueEncoding = encodings.values;
    CacheHarness t(c, 0x5eed0b17 + mask + 2 * keyMask);
    ASSERT_TRUE(t.cache);
    // The buffer: keys and values, 2 heads, 2 + 1 spare rows of 128 fp16.
    const size_t buffer = 2 * 2 * 3 * 128 * 2;
    t.append(0, 2);
    EXPECT_EQ(t.cache->bytes(), buffer);
    // One page, 2 heads · 8 tokens: keys 64 + 16 (a mask) or 64 + 32
    // (indices), values likewise.
    t.append(0, 1);
    EXPECT_EQ(t.cache->bytes(),
              buffer + 2 * 8 * ((keyMask ? 80 : 96) + (mask ? 80 : 96)))
        << encodings.name;
    // k_V = 4: values 8 + 16 (the mask keeps its size) or 8 + 4.
    t.rewinnow(32, 4);
    EXPECT_EQ(t.cache->bytes(),
              buffer + 2 * 8 * ((keyMask ? 80 : 96) + (mask ? 24 : 12)))
        << encodings.name;
    // k_K = 5: keys 10 + 16 or 10 + 5.
    t.rewinnow(5, 4);
    EXPECT_EQ(t.cache->bytes(),
              buffer + 2 * 8 * ((keyMask ? 26 : 15) + (mask ? 24 : 12)))
        << encodings.name;
    auto stats = t.cache->stats(0);
    ASSERT_TRUE(bool(stats));
    EXPECT_EQ(stats->maskPages, mask ? 1 : 0);
    EXPECT_EQ(stats->keyMaskPages, keyMask ? 1 : 0);
    t.checkState();
    EXPECT_LE(t.checkAttention({0}), kDecompressedTolerance);
  }
}

/// Auto stores keys as masks only where their expanded scores are cheap:
/// G · D/8 <= k_K (and D/8 < k_K). At G = 1, D = 64, k_K = 32 they are;
/// at G = 4, D = 128 not at k_K = 32 (64 > 32), but at k_K = 64. Pages of
/// both kinds in one sequence attend as the reference says.
TEST(CacheTest, AutoKeyEncodingFollowsTheGroupSize) {
  struct Case {
    int32_t d, g;
    std::vector<std::pair<int32_t, bool>> kKeyAndMask;
  } cases[] = {{64, 1, {{32, true}, {8, false}, {9, true}}},
               {128, 4, {{32, false}, {64, true}, {63, false}}}};
  for (const Case &k : cases) {
    CacheConfig c;
    c.headDim = k.d;
    c.numKvHeads = 2;
    c.groupSize = k.g;
    c.bufferTokens = 2;
    c.pageTokens = 3;
    c.kKey = k.kKeyAndMask.front().first;
    c.kValue = 6;
    c.storage = StorageType::F16;
    c.maxSequences = 1;
    ASSERT_EQ(c.keyEncoding, ValueEncoding::Auto) << "Auto is the default";
    CacheHarness t(c, 0x5eed0d00 + k.g);
    ASSERT_TRUE(t.cache);
    t.append(0, 2);
    int64_t pages = 0, keyMaskPages = 0;
    for (auto [kKey, mask] : k.kKeyAndMask) {
      t.setK(kKey, 6);
      t.append(0, 3); // exactly one new page
      ++pages;
      keyMaskPages += mask;
      auto stats = t.cache->stats(0);
      ASSERT_TRUE(bool(stats));
      EXPECT_EQ(stats->pages, pages) << "G " << k.g << " k_K " << kKey;
      EXPECT_EQ(stats->keyMaskPages, keyMaskPages)
          << "G " << k.g << " k_K " << kKey;
      EXPECT_EQ(stats->maskPages, 0) << "k_V = 6 <= D/8";
    }
    t.checkState();
    EXPECT_LE(t.checkAttention({0}), kDecompressedTolerance);
  }
}

/// Rewinnowing a key-mask page keeps the k' largest of the stored key
/// components, ties to the lower dimension, as the reference winnows the
/// stored row; the page stays a key-mask page, and under Auto keys winnowed
/// afterwards at k' <= D/8 go to a new index page. Keys are stored
/// unrotated (R_K = I) and drawn from four magnitudes, so nearly every row
/// is full of ties.
TEST(CacheTest, RewinnowedKeyMaskPagesKeepTheReferenceTopK) {
  const int32_t d = 32, h = 2, tokens = 13, b = 2;
  std::mt19937_64 rng(0x5eed0c0f);
  std::vector<float> rotK(h * d * d, 0.0f);
  for (int32_t head = 0; head < h; ++head)
    for (int32_t i = 0; i < d; ++i)
      rotK[(head * d + i) * d + i] = 1.0f;
  auto rotV = randomOrthogonal(h, d, rng);
  for (StorageType storage : {StorageType::F32, StorageType::F16}) {
    CacheConfig c;
    c.headDim = d;
    c.numKvHeads = h;
    c.groupSize = 1; // G · D/8 = 4 <= 20: Auto stores key masks
    c.bufferTokens = b;
    c.pageTokens = 5;
    c.kKey = 20;
    c.kValue = 6;
    c.valueEncoding = ValueEncoding::Indices;
    c.storage = storage;
    c.maxSequences = 1;
    auto cache = Cache::create(c, rotK, rotV);
    ASSERT_TRUE(bool(cache)) << llvm::toString(cache.takeError());
    std::vector<float> keys(tokens * h * d);
    const float magnitudes[] = {0.5f, 1.0f, 1.5f, 2.0f};
    for (float &v : keys)
      v = magnitudes[rng() % 4] * (rng() % 2 ? 1.0f : -1.0f);
    auto values = randomFloats(tokens * h * d, rng);
    ASSERT_FALSE(bool(cache->append(0, tokens, keys.data(), values.data())));
    auto before = cache->decompress(0);
    ASSERT_TRUE(bool(before));
    const int64_t sparse = tokens - b;
    for (int64_t row = 0; row < sparse * h; ++row) {
      auto want = reference::scatter(
          reference::winnow(toDouble(keys.data() + row * d, d).data(), d, 20),
          d);
      for (int32_t i = 0; i < d; ++i)
        ASSERT_EQ(before->keys[row * d + i], float(want[i]))
            << "row " << row << " component " << i;
    }
    for (int32_t kKey : {11, 3, 1}) {
      ASSERT_FALSE(bool(cache->rewinnow(kKey, 6)));
      auto after = cache->decompress(0);
      ASSERT_TRUE(bool(after));
      for (int64_t row = 0; row < tokens * h; ++row) {
        std::vector<double> want(before->keys.begin() + row * d,
                                 before->keys.begin() + (row + 1) * d);
        if (row < sparse * h)
          want = reference::scatter(reference::winnow(want.data(), d, kKey), d);
        for (int32_t i = 0; i < d; ++i)
          ASSERT_EQ(after->keys[row * d + i], float(want[i]))
              << "k_K " << kKey << " row " << row << " component " << i;
      }
      // The values were not touched.
      EXPECT_EQ(after->values, before->values) << "k_K " << kKey;
      auto stats = cache->stats(0);
      ASSERT_TRUE(bool(stats));
      EXPECT_EQ(stats->keyMaskPages, stats->pages) << "k_K " << kKey;
      EXPECT_EQ(stats->maskPages, 0);
      before = std::move(after);
    }
    // k_K = 1 <= D/8: the next page stores key indices.
    ASSERT_FALSE(bool(cache->append(0, 5, keys.data(), values.data())));
    auto stats = cache->stats(0);
    ASSERT_TRUE(bool(stats));
    EXPECT_EQ(stats->pages, 4);
    EXPECT_EQ(stats->keyMaskPages, 3);
  }
}

/// Rewinnowing a mask page keeps the k' largest of the stored components,
/// ties to the lower dimension, exactly as the reference winnows the stored
/// row; the page stays a mask page, and under Auto tokens winnowed
/// afterwards at k' <= D/8 go to a new index page. Values arrive rotated
/// and are drawn from four magnitudes, so nearly every row is full of ties.
TEST(CacheTest, RewinnowedMaskPagesKeepTheReferenceTopK) {
  const int32_t d = 32, h = 2, tokens = 13, b = 2;
  std::mt19937_64 rng(0x5eed0c0e);
  auto rotK = randomOrthogonal(h, d, rng);
  std::vector<float> rotV(h * d * d, 0.0f);
  for (int32_t head = 0; head < h; ++head)
    for (int32_t i = 0; i < d; ++i)
      rotV[(head * d + i) * d + i] = 1.0f;
  for (StorageType storage : {StorageType::F32, StorageType::F16}) {
    CacheConfig c;
    c.headDim = d;
    c.numKvHeads = h;
    c.groupSize = 2;
    c.bufferTokens = b;
    c.pageTokens = 5;
    c.kKey = 6;
    c.kValue = 20;
    c.storage = storage;
    c.maxSequences = 1;
    c.valuesPrerotated = true;
    auto cache = Cache::create(c, rotK, rotV);
    ASSERT_TRUE(bool(cache)) << llvm::toString(cache.takeError());
    auto keys = randomFloats(tokens * h * d, rng);
    std::vector<float> values(tokens * h * d);
    const float magnitudes[] = {0.5f, 1.0f, 1.5f, 2.0f};
    for (float &v : values)
      v = magnitudes[rng() % 4] * (rng() % 2 ? 1.0f : -1.0f);
    ASSERT_FALSE(bool(cache->append(0, tokens, keys.data(), values.data())));
    auto before = cache->decompress(0);
    ASSERT_TRUE(bool(before));
    const int64_t sparse = tokens - b;
    // What was stored is the reference top 20 of the exact input.
    for (int64_t row = 0; row < sparse * h; ++row) {
      auto want = reference::scatter(
          reference::winnow(toDouble(values.data() + row * d, d).data(), d,
                            20),
          d);
      for (int32_t i = 0; i < d; ++i)
        ASSERT_EQ(before->values[row * d + i], float(want[i]))
            << "row " << row << " component " << i;
    }
    for (int32_t kValue : {11, 3, 1}) {
      ASSERT_FALSE(bool(cache->rewinnow(6, kValue)));
      auto after = cache->decompress(0);
      ASSERT_TRUE(bool(after));
      for (int64_t row = 0; row < tokens * h; ++row) {
        std::vector<double> want(before->values.begin() + row * d,
                                 before->values.begin() + (row + 1) * d);
        if (row < sparse * h)
          want = reference::scatter(reference::winnow(want.data(), d, kValue),
                                    d);
        for (int32_t i = 0; i < d; ++i)
          ASSERT_EQ(after->values[row * d + i], float(want[i]))
              << "k_V " << kValue << " row " << row << " component " << i;
      }
      auto stats = cache->stats(0);
      ASSERT_TRUE(bool(stats));
      EXPECT_EQ(stats->maskPages, stats->pages) << "k_V " << kValue;
      before = std::move(after);
    }
    // k_V = 1 <= D/8: the next page stores indices.
    ASSERT_FALSE(bool(cache->append(0, 5, keys.data(), values.data())));
    auto stats = cache->stats(0);
    ASSERT_TRUE(bool(stats));
    EXPECT_EQ(stats->pages, 4);
    EXPECT_EQ(stats->maskPages, 3);
  }
}

TEST(CacheTest, OutputRotatedAndPrerotatedValues) {
  for (bool prerotated : {false, true}) {
    CacheConfig c = configFor(kShapes[0]);
    c.valuesPrerotated = prerotated;
    c.outputRotated = true;
    CacheHarness t(c, 0x5eed0005 + prerotated);
    ASSERT_TRUE(t.cache);
    t.append(0, 3 * c.bufferTokens);
    t.append(1, 2);
    t.checkState();
    EXPECT_LE(t.checkAttention({0, 1}), kDecompressedTolerance);
  }
}

/// Folding R_V into W_V and W_O must give the same layer output as rotating
/// values in the cache and rotating the attention output back.
TEST(CacheTest, FoldedWeightsMatchUnfoldedPath) {
  const int32_t h = 2, g = 3, d = 32, modelDim = 40, tokens = 29;
  std::mt19937_64 rng(0x5eed0006);
  auto rotK = randomOrthogonal(h, d, rng);
  auto rotV = randomOrthogonal(h, d, rng);
  auto wV = randomFloats(int64_t(modelDim) * h * d, rng, 0.2);
  auto wO = randomFloats(int64_t(h) * g * d * modelDim, rng, 0.2);
  auto x = randomFloats(int64_t(tokens) * modelDim, rng);
  auto keys = randomFloats(int64_t(tokens) * h * d, rng);
  auto q = randomFloats(int64_t(h) * g * d, rng);

  auto project = [&](const std::vector<float> &w) {
    std::vector<float> v(int64_t(tokens) * h * d, 0.0f);
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t c = 0; c < h * d; ++c) {
        double sum = 0;
        for (int64_t i = 0; i < modelDim; ++i)
          sum += double(x[t * modelDim + i]) * w[i * h * d + c];
        v[t * h * d + c] = float(sum);
      }
    return v;
  };
  auto layer = [&](bool folded, const std::vector<float> &values,
                   const std::vector<float> &outProjection) {
    CacheConfig c;
    c.headDim = d;
    c.numKvHeads = h;
    c.groupSize = g;
    c.bufferTokens = 7;
    c.pageTokens = 4;
    // Values keep every component: a winnowed value would keep different
    // near-tied components in the two bases.
    c.kKey = 9;
    c.kValue = d;
    c.storage = StorageType::F32;
    c.valuesPrerotated = c.outputRotated = folded;
    auto cache = Cache::create(c, rotK, rotV);
    EXPECT_TRUE(bool(cache));
    if (!cache) {
      llvm::consumeError(cache.takeError());
      return std::vector<double>();
    }
    EXPECT_FALSE(bool(cache->append(0, tokens, keys.data(), values.data())));
    std::vector<float> o(h * g * d, NAN);
    EXPECT_FALSE(bool(cache->attention({0}, q.data(), 0.17f, o.data())));
    std::vector<double> y(modelDim, 0.0);
    for (int64_t i = 0; i < h * g * d; ++i)
      for (int64_t c2 = 0; c2 < modelDim; ++c2)
        y[c2] += double(o[i]) * outProjection[i * modelDim + c2];
    return y;
  };

  auto plain = layer(false, project(wV), wO);
  auto foldedWV = wV, foldedWO = wO;
  ASSERT_FALSE(bool(foldValueRotation({h, g, d, modelDim}, rotV.data(),
                                      foldedWV.data(), foldedWO.data())));
  auto folded = layer(true, project(foldedWV), foldedWO);
  ASSERT_EQ(plain.size(), size_t(modelDim));
  ASSERT_EQ(folded.size(), size_t(modelDim));
  std::vector<float> got(folded.begin(), folded.end());
  EXPECT_LE(relativeError(got.data(), plain, 0, modelDim), 1e-5);

  // The fold really changed the weights (else the test proves nothing).
  double moved = 0;
  for (size_t i = 0; i < wO.size(); ++i)
    moved = std::max(moved, double(std::fabs(wO[i] - foldedWO[i])));
  EXPECT_GT(moved, 1e-2);
}

TEST(CacheTest, FoldingRejectsBadArguments) {
  float w = 1.0f;
  auto code = [](llvm::Error e) {
    CacheErrorCode c = CacheErrorCode::Internal;
    bool failed = bool(e);
    llvm::handleAllErrors(std::move(e),
                          [&](const CacheError &err) { c = err.getCode(); });
    return failed ? c : CacheErrorCode::Internal;
  };
  EXPECT_EQ(code(foldValueRotation({0, 1, 1, 1}, &w, &w, &w)),
            CacheErrorCode::InvalidArgument);
  EXPECT_EQ(code(foldValueRotation({1, 1, 1, 1}, nullptr, &w, &w)),
            CacheErrorCode::InvalidArgument);
}

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SWAN_MALLOC_IS_REPLACED
#endif
#endif
#if defined(__GLIBC__) && !defined(SWAN_MALLOC_IS_REPLACED)
/// Re-winnowing must give memory back to the process' allocator and, for
/// pages as large as these, to the system: malloc's own count of bytes in
/// use drops by what the cache says it freed.
TEST(CacheTest, StatsSayWhenASequenceIsBelowBreakEven) {
  CacheConfig c;
  c.headDim = 32;
  c.numKvHeads = 2;
  c.groupSize = 3;
  c.bufferTokens = 4;
  c.pageTokens = 16;
  c.kKey = 8;
  c.kValue = 12;
  c.maxSequences = 2;
  CacheHarness t(c, 0x5eed0b0e);
  ASSERT_TRUE(t.cache);
  // k = 10: 1024 / 22 = 46.5, so SWAN pays off from 47 + 4 tokens on.
  EXPECT_EQ(t.cache->breakEvenTokens(), 51);
  t.append(0, 50);
  t.append(1, 51);
  t.checkState();
  EXPECT_TRUE(t.cache->stats(0)->belowBreakEven);
  EXPECT_FALSE(t.cache->stats(1)->belowBreakEven);
  // A smaller k pays off sooner: 1024 / 28 = 36.6, so 37 + 4.
  t.setK(4, 4);
  EXPECT_EQ(t.cache->breakEvenTokens(), 41);
  t.checkState();
  EXPECT_FALSE(t.cache->stats(0)->belowBreakEven);
  t.rewinnow(32, 32 - 1);
  t.checkState();
  EXPECT_EQ(t.cache->breakEvenTokens(), 2048 + 4);
  t.setK(32, 32);
  t.append(1, 30);
  t.checkState();
  EXPECT_EQ(t.cache->breakEvenTokens(), std::numeric_limits<int64_t>::max());
  EXPECT_TRUE(t.cache->stats(1)->belowBreakEven);
}

TEST(CacheTest, RewinnowReturnsMemory) {
  CacheConfig c = configFor(kShapes[1]);
  c.kKey = c.kValue = 96;
  c.pageTokens = 512; // 512 tokens · 192 · 3 B: mmap-sized pages
  CacheHarness t(c, 0x5eed0007);
  ASSERT_TRUE(t.cache);
  t.append(0, 8 * 512 + c.bufferTokens);
  size_t cacheBefore = t.cache->bytes();
  struct mallinfo2 before = mallinfo2();
  t.rewinnow(16, 16);
  struct mallinfo2 after = mallinfo2();
  size_t cacheFreed = cacheBefore - t.cache->bytes();
  // k = 96 > D/8 (and G · D/8 = 16 <= k_K) made these pages store keys and
  // values as masks: per token, both value arrays drop 80 fp16 components;
  // the masks keep their bytes.
  EXPECT_EQ(cacheFreed, size_t(8) * 512 * ((192 - 32) * 2));
  size_t heldBefore = before.uordblks + before.hblkhd;
  size_t heldAfter = after.uordblks + after.hblkhd;
  ASSERT_GT(heldBefore, heldAfter);
  EXPECT_GE(double(heldBefore - heldAfter), 0.95 * double(cacheFreed));
  t.checkState();
}
#endif

} // namespace
