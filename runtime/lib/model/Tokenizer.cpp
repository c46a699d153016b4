//===- Tokenizer.cpp - llama2.c's BPE tokenizer ---------------------------===//

#include "swan/Runtime/Model/Tokenizer.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>
#include <cstring>

using namespace swan;
using namespace swan::model;

namespace {

/// Longer pieces are a corrupt file, not a tokenizer.
constexpr int32_t kMaxPieceBytes = 1 << 16;

llvm::Error tokenizerError(llvm::StringRef file, const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 file + ": " + why);
}

/// The byte of a piece spelled <0xNN>, if it is one.
std::optional<uint8_t> byteOf(llvm::StringRef piece) {
  unsigned value;
  if (piece.size() == 6 && piece.starts_with("<0x") && piece.ends_with(">") &&
      !piece.substr(3, 2).getAsInteger(16, value))
    return static_cast<uint8_t>(value);
  return std::nullopt;
}

} // namespace

llvm::Expected<Tokenizer> Tokenizer::load(llvm::StringRef path, int32_t vocab) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return tokenizerError(path, "cannot read: " + buffer.getError().message());
  return parse((*buffer)->getBuffer(), path, vocab);
}

llvm::Expected<Tokenizer>
Tokenizer::parse(llvm::StringRef bytes, llvm::StringRef name, int32_t vocab) {
  if (vocab <= kEos)
    return tokenizerError(name, "vocabulary size " + llvm::Twine(vocab) +
                                    " leaves no room for <unk>, BOS and EOS");
  size_t at = 0;
  auto readWord = [&](const char *what,
                      int32_t token) -> llvm::Expected<uint32_t> {
    if (bytes.size() - at < 4)
      return tokenizerError(name, "truncated at byte " + llvm::Twine(at) +
                                      " (" + what + " of token " +
                                      llvm::Twine(token) + " of " +
                                      llvm::Twine(vocab) + ")");
    uint32_t w = llvm::support::endian::read32le(bytes.data() + at);
    at += 4;
    return w;
  };
  auto maxLength = readWord("max_token_length", -1);
  if (!maxLength)
    return maxLength.takeError();
  if (static_cast<int32_t>(*maxLength) < 1)
    return tokenizerError(name, "bad header: max_token_length " +
                                    llvm::Twine(int32_t(*maxLength)));

  Tokenizer t;
  t.pieces.reserve(vocab);
  t.scores.reserve(vocab);
  for (int32_t i = 0; i < vocab; ++i) {
    auto scoreBits = readWord("score", i);
    if (!scoreBits)
      return scoreBits.takeError();
    float score;
    std::memcpy(&score, &*scoreBits, sizeof score);
    if (!std::isfinite(score))
      return tokenizerError(name,
                            "non-finite score of token " + llvm::Twine(i));
    auto length = readWord("length", i);
    if (!length)
      return length.takeError();
    const int32_t len = static_cast<int32_t>(*length);
    if (len < 0 || len > kMaxPieceBytes)
      return tokenizerError(name, "bad length " + llvm::Twine(len) +
                                      " of token " + llvm::Twine(i));
    if (bytes.size() - at < static_cast<size_t>(len))
      return tokenizerError(name, "truncated in the bytes of token " +
                                      llvm::Twine(i) + " of " +
                                      llvm::Twine(vocab));
    t.pieces.emplace_back(bytes.substr(at, len));
    t.scores.push_back(score);
    at += len;
  }
  if (at != bytes.size())
    return tokenizerError(name, llvm::Twine(bytes.size() - at) +
                                    " bytes follow the " + llvm::Twine(vocab) +
                                    " tokens the model's vocabulary has");
  // A piece spelled twice keeps its first id (llama2.c's sorted search may
  // find either; real tokenizers spell each piece once).
  for (int32_t i = 0; i < vocab; ++i) {
    t.ids.try_emplace(t.pieces[i], i);
    if (std::optional<uint8_t> byte = byteOf(t.pieces[i]);
        byte && t.byteTokens[*byte] < 0)
      t.byteTokens[*byte] = i;
  }
  return t;
}

std::vector<int32_t> Tokenizer::encode(llvm::StringRef text, bool bos) const {
  std::vector<int32_t> tokens;
  if (bos)
    tokens.push_back(kBos);
  if (text.empty())
    return tokens;
  // sentencepiece's dummy prefix.
  if (auto it = ids.find(" "); it != ids.end())
    tokens.push_back(it->second);
  for (size_t i = 0; i < text.size();) {
    // One UTF-8 character: a lead byte and its continuation bytes.
    size_t len = 1;
    while (i + len < text.size() && len < 4 &&
           (static_cast<uint8_t>(text[i + len]) & 0xC0) == 0x80)
      ++len;
    llvm::StringRef ch = text.substr(i, len);
    if (auto it = ids.find(ch); it != ids.end()) {
      tokens.push_back(it->second);
    } else {
      // Byte fallback where the vocabulary has the byte's token, else <unk>.
      for (char byte : ch) {
        int32_t id = byteTokens[static_cast<uint8_t>(byte)];
        tokens.push_back(id >= 0 ? id : kUnknown);
      }
    }
    i += len;
  }
  // Merge the best-scoring adjacent pair until no pair is a piece.
  std::string merged;
  for (;;) {
    float best = -INFINITY;
    int32_t bestId = -1;
    size_t bestAt = 0;
    for (size_t i = 0; i + 1 < tokens.size(); ++i) {
      merged = pieces[tokens[i]] + pieces[tokens[i + 1]];
      auto it = ids.find(merged);
      if (it != ids.end() && scores[it->second] > best) {
        best = scores[it->second];
        bestId = it->second;
        bestAt = i;
      }
    }
    if (bestId < 0)
      break;
    tokens[bestAt] = bestId;
    tokens.erase(tokens.begin() + bestAt + 1);
  }
  return tokens;
}

std::string Tokenizer::decode(int32_t previous, int32_t token) const {
  if (token < 0 || token >= vocab())
    return "";
  llvm::StringRef piece = pieces[token];
  if (previous == kBos && piece.starts_with(" "))
    piece = piece.drop_front();
  if (std::optional<uint8_t> byte = byteOf(piece))
    return std::string(1, static_cast<char>(*byte));
  return piece.str();
}

std::string Tokenizer::decode(llvm::ArrayRef<int32_t> tokens) const {
  std::string text;
  int32_t previous = kBos;
  for (int32_t token : tokens) {
    if (token != kBos)
      text += decode(previous, token);
    previous = token;
  }
  return text;
}
