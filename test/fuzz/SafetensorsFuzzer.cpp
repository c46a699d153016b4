//===- SafetensorsFuzzer.cpp - libFuzzer target for the reader ------------===//
//
// Any byte string is either rejected with an error or yields tensors whose
// every element reads within the buffer. Built with SWAN_ENABLE_FUZZERS=ON:
//   build/bin/swan-safetensors-fuzzer -max_total_time=60 CORPUS_DIR
//
//===----------------------------------------------------------------------===//

#include "swan/Runtime/Eval/Safetensors.h"

#include <cmath>
#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  namespace st = swan::safetensors;
  llvm::Expected<st::File> file = st::File::fromBuffer(
      llvm::MemoryBuffer::getMemBuffer(
          llvm::StringRef(reinterpret_cast<const char *>(data), size), "fuzz",
          /*RequiresNullTerminator=*/false),
      "fuzz");
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  for (const st::TensorInfo &info : file->tensors()) {
    // Elements the file claims must lie inside it; reading them is where an
    // unchecked offset would show up under AddressSanitizer.
    llvm::Expected<std::vector<float>> values = file->readAll(info);
    if (!values) {
      llvm::consumeError(values.takeError());
      continue;
    }
    volatile float sink = 0.0f;
    for (float v : *values)
      sink = sink + (std::isnan(v) ? 0.0f : 1.0f);
  }
  return 0;
}
