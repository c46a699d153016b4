//===- Checkpoint.cpp - llama2.c checkpoints, validated -------------------===//

#include "swan/Runtime/Model/Checkpoint.h"

#include "llvm/ADT/Twine.h"
#include "llvm/Support/Endian.h"

#include <cmath>
#include <string>

using namespace swan;
using namespace swan::model;

namespace {

constexpr uint64_t kHeaderBytes = 7 * sizeof(int32_t);
/// Far above any llama2.c model; keeps each tensor's element count (a
/// product of at most three sides) below 2^60. Their sum is checked apart.
constexpr int64_t kMaxSide = 1 << 20;

llvm::Error checkpointError(llvm::StringRef file, const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 file + ": " + why);
}

} // namespace

llvm::Expected<Checkpoint> Checkpoint::load(llvm::StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                            /*RequiresNullTerminator=*/false);
  if (!buffer)
    return checkpointError(path, "cannot read: " + buffer.getError().message());
  return fromBuffer(std::move(*buffer));
}

llvm::Expected<Checkpoint>
Checkpoint::fromBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer) {
  const llvm::StringRef name = buffer->getBufferIdentifier();
  const uint64_t size = buffer->getBufferSize();
  if (size < kHeaderBytes)
    return checkpointError(name, "truncated: " + llvm::Twine(size) +
                                     " bytes, the header alone takes 28");
  // Floats are read in place; mapped files and heap buffers are aligned.
  if (reinterpret_cast<uintptr_t>(buffer->getBufferStart()) % alignof(float))
    return checkpointError(name, "buffer is not aligned for float32");

  int32_t h[7];
  for (int i = 0; i < 7; ++i)
    h[i] = llvm::support::endian::read32le(buffer->getBufferStart() + 4 * i);
  ModelConfig c;
  c.dim = h[0];
  c.hidden = h[1];
  c.layers = h[2];
  c.heads = h[3];
  c.kvHeads = h[4];
  c.sharedClassifier = h[5] > 0;
  c.vocab = h[5] == INT32_MIN ? 0 : std::abs(h[5]);
  c.seqLen = h[6];

  const std::pair<const char *, int32_t> sides[] = {
      {"dim", c.dim},       {"hidden_dim", c.hidden},  {"n_layers", c.layers},
      {"n_heads", c.heads}, {"n_kv_heads", c.kvHeads}, {"vocab_size", c.vocab},
      {"seq_len", c.seqLen}};
  for (auto [field, value] : sides)
    if (value < 1 || value > kMaxSide)
      return checkpointError(name, llvm::Twine("bad header: ") + field + " = " +
                                       llvm::Twine(value) + " (expected 1.." +
                                       llvm::Twine(kMaxSide) + ")");
  if (c.dim % c.heads != 0)
    return checkpointError(name, "bad header: dim " + llvm::Twine(c.dim) +
                                     " is not a multiple of n_heads " +
                                     llvm::Twine(c.heads));
  if (c.heads % c.kvHeads != 0)
    return checkpointError(name, "bad header: n_heads " + llvm::Twine(c.heads) +
                                     " is not a multiple of n_kv_heads " +
                                     llvm::Twine(c.kvHeads));
  if (c.headDim() % 2 != 0)
    return checkpointError(name, "bad header: head dimension " +
                                     llvm::Twine(c.headDim()) +
                                     " is odd; RoPE rotates pairs");

  // Element counts in file order; int64 cannot overflow with kMaxSide.
  const int64_t dim = c.dim, kv = c.kvDim(), hid = c.hidden, L = c.layers;
  const int64_t counts[] = {int64_t(c.vocab) * dim,          // embedding
                            L * dim,                         // rms_att
                            L * dim * dim,                   // wq
                            L * kv * dim,                    // wk
                            L * kv * dim,                    // wv
                            L * dim * dim,                   // wo
                            L * dim,                         // rms_ffn
                            L * hid * dim,                   // w1
                            L * dim * hid,                   // w2
                            L * hid * dim,                   // w3
                            dim,                             // rms_final
                            int64_t(c.seqLen) * c.headDim(), // legacy RoPE
                            c.sharedClassifier ? 0 : int64_t(c.vocab) * dim};
  const char *names[] = {
      "token_embedding", "rms_att", "wq", "wk", "wv",        "wo",
      "rms_ffn",         "w1",      "w2", "w3", "rms_final", "rope_table",
      "classifier"};
  // The floats the header describes, against those the file holds: no
  // product with the element size, which could wrap.
  uint64_t floats = 0;
  bool overflow = false;
  for (int64_t n : counts)
    overflow |= __builtin_add_overflow(floats, uint64_t(n), &floats);
  const uint64_t held = (size - kHeaderBytes) / sizeof(float);
  if (overflow || floats != held || (size - kHeaderBytes) % sizeof(float)) {
    const std::string described =
        overflow ? std::string("more than 2^64 floats")
                 : std::to_string(floats) + " floats after it";
    return checkpointError(
        name, llvm::Twine(!overflow && floats > held ? "truncated: "
                                                     : "size mismatch: ") +
                  llvm::Twine(size) + " bytes, the header (dim " +
                  llvm::Twine(c.dim) + ", " + llvm::Twine(c.layers) +
                  " layers, vocab " + llvm::Twine(c.vocab) +
                  (c.sharedClassifier ? ", shared classifier" : "") +
                  ") describes " + described);
  }

  Checkpoint cp;
  const float *p =
      reinterpret_cast<const float *>(buffer->getBufferStart() + kHeaderBytes);
  const float *starts[13];
  for (int i = 0; i < 13; ++i) {
    starts[i] = p;
    if (i == 11) { // the legacy RoPE table is never read
      p += counts[i];
      continue;
    }
    for (int64_t j = 0; j < counts[i]; ++j, ++p)
      if (!std::isfinite(*p))
        return checkpointError(name, llvm::Twine("non-finite weight in ") +
                                         names[i] + " at element " +
                                         llvm::Twine(j));
  }
  cp.cfg = c;
  cp.embeddingTable = starts[0];
  cp.rmsAtt = starts[1];
  cp.wq = starts[2];
  cp.wk = starts[3];
  cp.wv = starts[4];
  cp.wo = starts[5];
  cp.rmsFfn = starts[6];
  cp.w1 = starts[7];
  cp.w2 = starts[8];
  cp.w3 = starts[9];
  cp.finalNorm = starts[10];
  cp.classifierMatrix = c.sharedClassifier ? starts[0] : starts[12];
  cp.file = std::move(buffer);
  return cp;
}

LayerWeights Checkpoint::layer(int32_t i) const {
  const int64_t dim = cfg.dim, kv = cfg.kvDim(), hid = cfg.hidden;
  return {rmsAtt + i * dim,   wq + i * dim * dim, wk + i * kv * dim,
          wv + i * kv * dim,  wo + i * dim * dim, rmsFfn + i * dim,
          w1 + i * hid * dim, w2 + i * dim * hid, w3 + i * hid * dim};
}
