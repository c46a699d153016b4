//===- ModelFilesFuzzer.cpp - libFuzzer target for llama2.c files ---------===//
//
// The first byte picks the reader: 'c' a checkpoint, anything else a
// tokenizer (its vocabulary size from the next byte). Any byte string is
// either rejected with an error or loads; a loaded checkpoint runs one
// forward pass, a loaded tokenizer encodes and decodes, all inside the
// buffer. Built with SWAN_ENABLE_FUZZERS=ON:
//   build-asan/bin/swan-model-files-fuzzer -max_total_time=60 CORPUS_DIR
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/Model/Attention.h"
#include "swan/Runtime/Model/Tokenizer.h"

#include <cstddef>
#include <cstdint>

using namespace swan::model;

namespace {

void fuzzCheckpoint(llvm::StringRef bytes) {
  // A copy: the checkpoint reads floats in place and needs them aligned.
  auto checkpoint = Checkpoint::fromBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(bytes, "fuzz"));
  if (!checkpoint) {
    llvm::consumeError(checkpoint.takeError());
    return;
  }
  Transformer transformer(*checkpoint);
  DenseAttention cache(checkpoint->config());
  const int32_t last = checkpoint->config().vocab - 1;
  auto logits = transformer.forward({0, last}, 0, cache);
  if (!logits)
    llvm::consumeError(logits.takeError());
}

void fuzzTokenizer(llvm::StringRef bytes) {
  if (bytes.empty())
    return;
  const int32_t vocab = 1 + static_cast<uint8_t>(bytes[0]);
  auto tokenizer = Tokenizer::parse(bytes.drop_front(), "fuzz", vocab);
  if (!tokenizer) {
    llvm::consumeError(tokenizer.takeError());
    return;
  }
  for (llvm::StringRef text :
       {llvm::StringRef("Once upon a time"),
        llvm::StringRef("\xC3\xA9\xF0\x9F\x98\x80\n"), bytes.take_back(16)}) {
    std::vector<int32_t> ids = tokenizer->encode(text, /*bos=*/true);
    for (int32_t id : ids)
      if (id < 0 || id >= tokenizer->vocab())
        __builtin_trap(); // an id the model could not embed
    volatile size_t sink = tokenizer->decode(ids).size();
    (void)sink;
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  if (bytes[0] == 'c')
    fuzzCheckpoint(bytes.drop_front());
  else
    fuzzTokenizer(bytes.drop_front());
  return 0;
}
