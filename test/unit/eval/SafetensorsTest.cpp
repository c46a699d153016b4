//===- SafetensorsTest.cpp - safetensors round trips and hostile files ----===//

#include "swan/Runtime/Eval/Safetensors.h"

#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace st = swan::safetensors;

namespace {

/// A temporary file removed when the test ends.
struct TempPath {
  llvm::SmallString<128> path;
  TempPath() {
    int fd;
    EXPECT_FALSE(llvm::sys::fs::createTemporaryFile("swan-test", "safetensors",
                                                    fd, path));
    llvm::sys::Process::SafelyCloseFileDescriptor(fd);
  }
  ~TempPath() { llvm::sys::fs::remove(path); }
};

std::vector<float> randomFloats(size_t n, std::mt19937 &rng) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> v(n);
  for (float &x : v)
    x = normal(rng);
  return v;
}

/// What a float becomes after storage as `dtype`.
float stored(st::DType dtype, float x) {
  switch (dtype) {
  case st::DType::F32:
    return x;
  case st::DType::F16:
    return st::halfToFloat(st::floatToHalf(x));
  case st::DType::BF16:
    return st::bfloat16ToFloat(st::floatToBFloat16(x));
  }
  return NAN;
}

TEST(Safetensors, RoundTripsEveryDType) {
  std::mt19937 rng(20261125);
  for (st::DType dtype : {st::DType::F32, st::DType::F16, st::DType::BF16}) {
    std::vector<float> a = randomFloats(7 * 3 * 5, rng);
    std::vector<float> b = randomFloats(11, rng);
    std::vector<float> scalar = randomFloats(1, rng);
    std::vector<float> empty;
    std::vector<st::TensorDecl> decls = {{"layers.0.keys", dtype, {7, 3, 5}},
                                         {"bias", dtype, {11}},
                                         {"scale", dtype, {}},
                                         {"nothing", dtype, {0, 4}}};
    TempPath tmp;
    ASSERT_FALSE(bool(st::write(tmp.path, decls, {&a, &b, &scalar, &empty},
                                {{"source", "generated"}})));

    llvm::Expected<st::File> file = st::File::open(tmp.path);
    ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
    EXPECT_EQ(file->metadata().at("source"), "generated");
    ASSERT_EQ(file->tensors().size(), 4u);
    const std::vector<float> *expected[] = {&a, &b, &scalar, &empty};
    for (size_t i = 0; i < decls.size(); ++i) {
      const st::TensorInfo *info = file->find(decls[i].name);
      ASSERT_NE(info, nullptr) << decls[i].name;
      EXPECT_EQ(info->dtype, dtype);
      EXPECT_EQ(info->shape, decls[i].shape);
      llvm::Expected<std::vector<float>> data = file->readAll(*info);
      ASSERT_TRUE(bool(data)) << llvm::toString(data.takeError());
      ASSERT_EQ(data->size(), expected[i]->size());
      for (size_t j = 0; j < data->size(); ++j)
        EXPECT_EQ((*data)[j], stored(dtype, (*expected[i])[j]))
            << decls[i].name << "[" << j << "] " << st::dtypeName(dtype).str();
    }

    // A slice of rows matches the same rows of the whole tensor.
    const st::TensorInfo *keys = file->find("layers.0.keys");
    std::vector<float> rows(2 * 15, NAN);
    ASSERT_FALSE(bool(file->readRows(*keys, 4, 2, rows.data())));
    for (int j = 0; j < 30; ++j)
      EXPECT_EQ(rows[j], stored(dtype, a[4 * 15 + j]));
    llvm::Error outside = file->readRows(*keys, 6, 2, rows.data());
    ASSERT_TRUE(bool(outside));
    EXPECT_NE(llvm::toString(std::move(outside)).find("outside its 7 rows"),
              std::string::npos);
  }
}

TEST(Safetensors, ConversionsRoundToNearestEven) {
  EXPECT_EQ(st::floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(st::floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(st::halfToFloat(0x3555), 0.333251953125f);
  // 1 + 2^-11 lies halfway between two halves: ties to the even one.
  EXPECT_EQ(st::floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(st::floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(st::floatToHalf(70000.0f), 0x7c00); // overflow to infinity
  EXPECT_EQ(st::floatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(st::floatToBFloat16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(st::floatToBFloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(st::bfloat16ToFloat(0xc040), -3.0f);
}

TEST(Safetensors, StreamingWriterChecksCounts) {
  TempPath tmp;
  llvm::Expected<st::Writer> writer = st::Writer::create(
      tmp.path, {{"x", st::DType::F32, {2, 3}}, {"y", st::DType::F16, {4}}});
  ASSERT_TRUE(bool(writer)) << llvm::toString(writer.takeError());
  std::vector<float> data = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  // Appends may cross tensor boundaries.
  ASSERT_FALSE(bool(writer->append(data.data(), 4)));
  ASSERT_FALSE(bool(writer->append(data.data() + 4, 3)));
  llvm::Error early = writer->finish();
  ASSERT_TRUE(bool(early));
  EXPECT_NE(llvm::toString(std::move(early)).find("tensor 'y'"),
            std::string::npos);

  TempPath tmp2;
  writer = st::Writer::create(tmp2.path, {{"x", st::DType::F32, {2}}});
  ASSERT_TRUE(bool(writer));
  llvm::Error extra = writer->append(data.data(), 3);
  ASSERT_TRUE(bool(extra));
  EXPECT_NE(llvm::toString(std::move(extra)).find("more data"),
            std::string::npos);
}

TEST(Safetensors, WriterRejectsBadDeclarations) {
  TempPath tmp;
  std::vector<std::pair<std::vector<st::TensorDecl>, const char *>> cases = {
      {{{"a", st::DType::F32, {2}}, {"a", st::DType::F16, {1}}},
       "tensor 'a': declared twice"},
      {{{"__metadata__", st::DType::F32, {1}}}, "declared twice"},
      {{{"n", st::DType::F32, {3, -1}}}, "tensor 'n': negative extent"},
      {{{"big", st::DType::F32, {int64_t(1) << 40, int64_t(1) << 40}}},
       "tensor 'big': shape overflows"},
  };
  for (auto &[decls, expected] : cases) {
    llvm::Expected<st::Writer> writer = st::Writer::create(tmp.path, decls);
    ASSERT_FALSE(bool(writer)) << expected;
    std::string message = llvm::toString(writer.takeError());
    EXPECT_NE(message.find(expected), std::string::npos) << message;
  }
  std::vector<float> three(3, 1.0f);
  llvm::Error e = st::write(tmp.path, {{"x", st::DType::F32, {2}}}, {&three});
  ASSERT_TRUE(bool(e));
  EXPECT_NE(llvm::toString(std::move(e)).find("shape holds 2 elements but 3"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Malformed files: each class rejected with a message naming the problem.
//===----------------------------------------------------------------------===//

std::string withLength(uint64_t length, llvm::StringRef rest) {
  char bytes[8];
  llvm::support::endian::write64le(bytes, length);
  return std::string(bytes, 8) + rest.str();
}

std::string makeFile(llvm::StringRef header, size_t dataBytes) {
  return withLength(header.size(), header) + std::string(dataBytes, '\x3c');
}

/// The error message for `bytes`, or "" when the file is accepted.
std::string errorFor(const std::string &bytes) {
  llvm::Expected<st::File> file = st::File::fromBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(bytes, "bad.safetensors"),
      "bad.safetensors");
  if (file)
    return "";
  return llvm::toString(file.takeError());
}

struct MalformedCase {
  const char *what;
  std::string bytes;
  std::vector<const char *> expected; ///< substrings of the message
};

TEST(Safetensors, RejectsEveryMalformedClass) {
  const std::string good =
      R"({"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(errorFor(makeFile(good, 24)), "");

  std::vector<MalformedCase> cases = {
      {"shorter than the length field",
       std::string("\x10\0\0", 3),
       {"truncated", "8-byte header length"}},
      {"header longer than the file",
       withLength(1000, "{}"),
       {"truncated", "header length 1000"}},
      {"absurd header length",
       withLength(uint64_t(1) << 40, "{}"),
       {"absurd header length"}},
      {"absurd header length near 2^64",
       withLength(~uint64_t(0), "{}"),
       {"absurd header length"}},
      {"not JSON", makeFile("{\"t\": [", 0), {"not valid JSON"}},
      {"not UTF-8", makeFile("{\"\xff\": 1}", 0), {"not valid JSON"}},
      {"header not an object", makeFile("[1, 2]", 0), {"not a JSON object"}},
      {"deep nesting",
       makeFile(std::string(5000, '[') + std::string(5000, ']'), 0),
       {"nested deeper"}},
      {"entry not an object",
       makeFile(R"({"t": 3})", 0),
       {"tensor 't'", "not a JSON object"}},
      {"unknown dtype",
       makeFile(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}})", 1),
       {"tensor 'w'", "unsupported dtype 'Q4'"}},
      {"known but unsupported dtype",
       makeFile(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})",
                16),
       {"tensor 'w'", "unsupported dtype 'F64'"}},
      {"missing dtype",
       makeFile(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "'dtype'"}},
      {"missing shape",
       makeFile(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8),
       {"tensor 'w'", "'shape'"}},
      {"negative extent",
       makeFile(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                8),
       {"tensor 'w'", "non-negative"}},
      {"fractional extent",
       makeFile(R"({"w":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})",
                8),
       {"tensor 'w'", "non-negative integers"}},
      {"shape overflow",
       makeFile(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],)"
                R"("data_offsets":[0,0]}})",
                0),
       {"tensor 'w'", "overflows"}},
      {"zero extent hiding an overflow",
       makeFile(R"({"w":{"dtype":"F32","shape":[0,4294967296,4294967296],)"
                R"("data_offsets":[0,0]}})",
                0),
       {"tensor 'w'", "overflows"}},
      {"offsets not a pair",
       makeFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8),
       {"tensor 'w'", "two integers"}},
      {"negative offset",
       makeFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})",
                8),
       {"tensor 'w'", "non-negative"}},
      {"begin after end",
       makeFile(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8),
       {"tensor 'w'", "begin after end"}},
      {"offsets out of range",
       makeFile(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
                12),
       {"tensor 'w'", "out of range", "holds 12 bytes"}},
      {"offsets far out of range",
       makeFile(
           R"({"w":{"dtype":"F32","shape":[1],)"
           R"("data_offsets":[18446744073709551612,18446744073709551615]}})",
           8),
       {"tensor 'w'", "out of range"}},
      {"shape disagrees with bytes",
       makeFile(R"({"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,24]}})",
                24),
       {"tensor 'w'", "shape holds 6 F16 elements", "span 24 bytes"}},
      {"overlapping tensors",
       makeFile(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})",
                16),
       {"overlap tensor"}},
      {"duplicate tensor name",
       makeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                8),
       {"duplicate key 'a'"}},
      {"duplicate key spelled differently",
       makeFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                R"("\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                8),
       {"duplicate key 'a'"}},
      {"duplicate field",
       makeFile(R"({"a":{"dtype":"F32","dtype":"F16","shape":[1],)"
                R"("data_offsets":[0,4]}})",
                4),
       {"duplicate key 'dtype'"}},
      {"metadata not an object",
       makeFile(R"({"__metadata__": [1]})", 0),
       {"__metadata__ is not a JSON object"}},
      {"metadata value not a string",
       makeFile(R"({"__metadata__": {"n": 1}})", 0),
       {"__metadata__ entry 'n'"}},
  };
  for (const MalformedCase &c : cases) {
    std::string message = errorFor(c.bytes);
    EXPECT_NE(message, "") << c.what << ": accepted";
    EXPECT_NE(message.find("bad.safetensors"), std::string::npos) << c.what;
    for (const char *part : c.expected)
      EXPECT_NE(message.find(part), std::string::npos)
          << c.what << ": '" << message << "' lacks '" << part << "'";
  }
}

// Cutting a valid file anywhere gives an error, never a crash or a read
// past the end.
TEST(Safetensors, EveryTruncationIsAnError) {
  std::mt19937 rng(7);
  std::vector<float> a = randomFloats(6, rng), b = randomFloats(5, rng);
  TempPath tmp;
  ASSERT_FALSE(bool(st::write(
      tmp.path, {{"a", st::DType::F32, {2, 3}}, {"b", st::DType::BF16, {5}}},
      {&a, &b}, {{"k", "v"}})));
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> whole =
      llvm::MemoryBuffer::getFile(tmp.path);
  ASSERT_TRUE(bool(whole));
  std::string bytes = (*whole)->getBuffer().str();
  ASSERT_EQ(errorFor(bytes), "");
  for (size_t cut = 0; cut < bytes.size(); ++cut)
    EXPECT_NE(errorFor(bytes.substr(0, cut)), "") << "cut at " << cut;
}

// Flipping bytes of the header gives either a valid file or an error; every
// tensor of a file that is accepted reads within bounds.
TEST(Safetensors, CorruptedHeadersNeverCrash) {
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]}})";
  const std::string bytes = makeFile(header, 32);
  std::mt19937 rng(99);
  std::uniform_int_distribution<size_t> position(0, bytes.size() - 1);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 3000; ++trial) {
    std::string corrupt = bytes;
    for (int flips = 0; flips < 3; ++flips)
      corrupt[position(rng)] = static_cast<char>(byte(rng));
    llvm::Expected<st::File> file = st::File::fromBuffer(
        llvm::MemoryBuffer::getMemBufferCopy(corrupt, "c"), "c");
    if (!file) {
      llvm::consumeError(file.takeError());
      continue;
    }
    for (const st::TensorInfo &info : file->tensors()) {
      llvm::Expected<std::vector<float>> data = file->readAll(info);
      ASSERT_TRUE(bool(data)) << llvm::toString(data.takeError());
    }
  }
}

} // namespace
