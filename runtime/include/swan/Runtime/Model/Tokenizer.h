//===- Tokenizer.h - llama2.c's BPE tokenizer ------------------*- C++ -*-===//
//
// The tokenizer file of llama2.c: an int32 max_token_length, then per token
// of the vocabulary a float32 merge score, an int32 byte length and the
// bytes. Encoding is sentencepiece's BPE as llama2.c runs it: a leading
// space (the dummy prefix), one token per UTF-8 character, bytes without a
// token as their byte-fallback tokens <0xNN> (<unk> in a vocabulary without
// them), then the adjacent
// pair whose merged piece has the best score is merged until none is left.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_MODEL_TOKENIZER_H
#define SWAN_RUNTIME_MODEL_TOKENIZER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace swan::model {

class Tokenizer {
public:
  static constexpr int32_t kUnknown = 0, kBos = 1, kEos = 2;

  /// Reads and validates a tokenizer of exactly `vocab` tokens (the model's;
  /// at least 3: <unk>, BOS and EOS are ids 0, 1 and 2).
  static llvm::Expected<Tokenizer> load(llvm::StringRef path, int32_t vocab);
  /// The same from bytes in memory; `name` names them in errors.
  static llvm::Expected<Tokenizer> parse(llvm::StringRef bytes,
                                         llvm::StringRef name, int32_t vocab);

  int32_t vocab() const { return static_cast<int32_t>(pieces.size()); }
  llvm::StringRef piece(int32_t token) const { return pieces[token]; }

  /// Token ids of `text`, after BOS when `bos`.
  std::vector<int32_t> encode(llvm::StringRef text, bool bos) const;
  /// The text `token` adds after `previous`: the dummy-prefix space is
  /// dropped after BOS, byte tokens are their byte, and a token outside the
  /// vocabulary is no text.
  std::string decode(int32_t previous, int32_t token) const;
  /// The text of a whole token sequence, decoded token after token.
  std::string decode(llvm::ArrayRef<int32_t> tokens) const;

private:
  Tokenizer() = default;

  std::vector<std::string> pieces;
  std::vector<float> scores;
  llvm::StringMap<int32_t> ids;
  /// The id of each byte's <0xNN> piece, -1 where the vocabulary has none.
  std::array<int32_t, 256> byteTokens = filledWith(-1);

  static std::array<int32_t, 256> filledWith(int32_t value) {
    std::array<int32_t, 256> a;
    a.fill(value);
    return a;
  }
};

} // namespace swan::model

#endif // SWAN_RUNTIME_MODEL_TOKENIZER_H
