//===- CheckpointTest.cpp - llama2.c checkpoints and tokenizers -----------===//
//
// Small checkpoints and tokenizers written here in llama2.c's format, with
// random weights: they load back exactly, and every corruption is rejected
// with a message that names it.
//
//===----------------------------------------------------------------------===//

#include "ModelFixture.h"

#include "swan/Runtime/Model/Tokenizer.h"

#include "gtest/gtest.h"

#include <cmath>
#include <cstring>

using namespace swan;
using namespace swan::model;
using namespace swan::test;

namespace {

std::string loadError(std::string bytes) {
  auto cp = Checkpoint::fromBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(bytes, "model.bin"));
  if (cp)
    return "";
  return llvm::toString(cp.takeError());
}

TEST(CheckpointTest, RoundTripsEveryTensor) {
  for (bool shared : {true, false}) {
    SmallModel m = SmallModel::random(tinyConfig(shared), 7);
    auto cp = m.load();
    ASSERT_TRUE(bool(cp)) << llvm::toString(cp.takeError());
    const ModelConfig &c = cp->config();
    EXPECT_EQ(c.dim, m.config.dim);
    EXPECT_EQ(c.hidden, m.config.hidden);
    EXPECT_EQ(c.layers, m.config.layers);
    EXPECT_EQ(c.heads, m.config.heads);
    EXPECT_EQ(c.kvHeads, m.config.kvHeads);
    EXPECT_EQ(c.vocab, m.config.vocab);
    EXPECT_EQ(c.seqLen, m.config.seqLen);
    EXPECT_EQ(c.sharedClassifier, shared);
    for (int32_t l = 0; l < c.layers; ++l) {
      LayerWeights w = cp->layer(l);
      EXPECT_EQ(*w.wq, m.tensor("wq")[l * c.dim * c.dim]);
      EXPECT_EQ(*w.wk, m.tensor("wk")[l * c.kvDim() * c.dim]);
      EXPECT_EQ(*w.w2, m.tensor("w2")[l * c.dim * c.hidden]);
      EXPECT_EQ(w.rmsFfn[c.dim - 1], m.tensor("rms_ffn")[(l + 1) * c.dim - 1]);
    }
    EXPECT_EQ(cp->rmsFinal()[0], m.tensor("rms_final")[0]);
    const std::vector<float> &cls =
        m.tensor(shared ? "token_embedding" : "classifier");
    EXPECT_EQ(
        std::memcmp(cp->classifier(), cls.data(), cls.size() * sizeof(float)),
        0);
  }
}

TEST(CheckpointTest, RejectsCorruptFiles) {
  SmallModel m = SmallModel::random(tinyConfig(true), 3);
  const std::string good = m.bytes();
  ASSERT_EQ(loadError(good), "");

  EXPECT_NE(loadError(good.substr(0, 20)).find("header alone"),
            std::string::npos);
  EXPECT_NE(loadError(good.substr(0, good.size() - 4)).find("truncated"),
            std::string::npos);
  EXPECT_NE(loadError(good + std::string(4, '\0')).find("size mismatch"),
            std::string::npos);

  auto withHeader = [&](int field, int32_t value) {
    std::string bytes = good;
    std::memcpy(&bytes[4 * field], &value, 4);
    return loadError(bytes);
  };
  EXPECT_NE(withHeader(3, 0).find("n_heads = 0"), std::string::npos);
  EXPECT_NE(withHeader(0, -5).find("dim = -5"), std::string::npos);
  EXPECT_NE(withHeader(3, 3).find("not a multiple of n_heads"),
            std::string::npos);
  EXPECT_NE(withHeader(4, 3).find("not a multiple of n_kv_heads"),
            std::string::npos);
  // A vocabulary the file's size does not match.
  EXPECT_NE(withHeader(5, m.config.vocab + 1).find("describes"),
            std::string::npos);
  // An unshared classifier the file does not hold.
  EXPECT_NE(withHeader(5, -m.config.vocab).find("truncated"),
            std::string::npos);

  // A header whose float count wraps 2^64 once multiplied by 4: a 36-byte
  // file must not pass for it.
  {
    int32_t header[7] = {1 << 20, 699048,           1 << 20,      1 << 19,
                         1,       -((1 << 20) - 1), (1 << 19) + 1};
    std::string bytes(reinterpret_cast<const char *>(header), sizeof header);
    bytes += std::string(8, '\0');
    EXPECT_NE(loadError(bytes).find("truncated: 36 bytes"), std::string::npos)
        << loadError(bytes);
  }

  std::string nan = good;
  const float bad = NAN;
  const size_t wkOffset = 28 + 4 * m.offset("wk");
  std::memcpy(&nan[wkOffset + 4 * 5], &bad, 4);
  EXPECT_NE(loadError(nan).find("non-finite weight in wk at element 5"),
            std::string::npos)
      << loadError(nan);

  auto missing = Checkpoint::load("/nonexistent/model.bin");
  ASSERT_FALSE(bool(missing));
  EXPECT_NE(llvm::toString(missing.takeError()).find("/nonexistent/model.bin"),
            std::string::npos);
}

TEST(TokenizerTest, EncodesByMergesAndDecodes) {
  TinyTokenizer t = TinyTokenizer::make();
  auto tok = Tokenizer::parse(t.bytes(), "tokenizer.bin", t.vocab());
  ASSERT_TRUE(bool(tok)) << llvm::toString(tok.takeError());
  // " ab" merges through " a" (score 1) or "ab" (score 2): the better pair,
  // "ab", first, then " " + "ab" = " ab".
  std::vector<int32_t> ids = tok->encode("ab", /*bos=*/true);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], Tokenizer::kBos);
  EXPECT_EQ(tok->piece(ids[1]), " ab");
  EXPECT_EQ(tok->decode(ids), "ab");
  // No piece for 'é' (two bytes) or '\n': byte fallback, decoded back.
  std::vector<int32_t> bytes = tok->encode("b\xC3\xA9\n", /*bos=*/false);
  ASSERT_EQ(bytes.size(), 5u);
  EXPECT_EQ(tok->piece(bytes[0]), " ");
  EXPECT_EQ(tok->piece(bytes[1]), "b");
  EXPECT_EQ(bytes[2], 3 + 0xC3);
  EXPECT_EQ(bytes[3], 3 + 0xA9);
  EXPECT_EQ(bytes[4], 3 + '\n');
  EXPECT_EQ(tok->decode(Tokenizer::kBos, bytes[0]), "");
  EXPECT_EQ(tok->decode(bytes), "b\xC3\xA9\n");
  EXPECT_EQ(tok->encode("", true), std::vector<int32_t>{Tokenizer::kBos});
}

TEST(TokenizerTest, WithoutByteTokensUnknownBytesAreUnk) {
  TinyTokenizer t = TinyTokenizer::make();
  // <unk>, <s>, </s> and the pieces, no byte tokens.
  t.tokens.erase(t.tokens.begin() + 3, t.tokens.begin() + 3 + 256);
  auto tok = Tokenizer::parse(t.bytes(), "tokenizer.bin", t.vocab());
  ASSERT_TRUE(bool(tok)) << llvm::toString(tok.takeError());
  std::vector<int32_t> ids = tok->encode("a\xFF", /*bos=*/false);
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(tok->piece(ids[0]), " a");
  EXPECT_EQ(ids[1], Tokenizer::kUnknown);
  EXPECT_EQ(tok->decode(Tokenizer::kBos, t.vocab()), "");
}

TEST(TokenizerTest, RejectsCorruptFiles) {
  TinyTokenizer t = TinyTokenizer::make();
  const std::string good = t.bytes();
  auto error = [&](const std::string &bytes, int32_t vocab) {
    auto tok = Tokenizer::parse(bytes, "tokenizer.bin", vocab);
    return tok ? std::string() : llvm::toString(tok.takeError());
  };
  ASSERT_EQ(error(good, t.vocab()), "");
  EXPECT_NE(error(good.substr(0, 2), t.vocab()).find("truncated"),
            std::string::npos);
  EXPECT_NE(error(good.substr(0, good.size() - 1), t.vocab())
                .find("truncated in the bytes of token"),
            std::string::npos);
  EXPECT_NE(error(good, t.vocab() - 1).find("bytes follow"), std::string::npos);
  EXPECT_NE(error(good, t.vocab() + 1).find("truncated"), std::string::npos);
  // BOS and EOS are ids 1 and 2: a smaller vocabulary has no place for them.
  EXPECT_NE(error(good, 2).find("vocabulary size 2 leaves no room"),
            std::string::npos);
  std::string nan = good;
  const float bad = NAN;
  std::memcpy(&nan[4], &bad, 4); // the score of token 0
  EXPECT_NE(error(nan, t.vocab()).find("non-finite score of token 0"),
            std::string::npos);
  std::string negative = good;
  const int32_t len = -1;
  std::memcpy(&negative[8], &len, 4); // the length of token 0
  EXPECT_NE(error(negative, t.vocab()).find("bad length -1 of token 0"),
            std::string::npos);
}

} // namespace
