//===- KVDump.cpp - tensor names and layer reader of K/V dumps ------------===//

#include "swan/Runtime/Eval/KVDump.h"

#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FormatVariadic.h"

using namespace swan;
using namespace swan::kvdump;

namespace {

constexpr llvm::StringLiteral kLayerPrefix = "layers.";
constexpr llvm::StringLiteral kSourceKey = "source";
constexpr llvm::StringLiteral kGeneratedSource = "generated";

constexpr Part kAllParts[] = {Part::Keys, Part::Values, Part::Queries,
                              Part::KeyRotation, Part::ValueRotation};

} // namespace

llvm::StringRef kvdump::partName(Part part) {
  switch (part) {
  case Part::Keys:
    return "keys";
  case Part::Values:
    return "values";
  case Part::Queries:
    return "queries";
  case Part::KeyRotation:
    return "rot_k";
  case Part::ValueRotation:
    return "rot_v";
  }
  llvm_unreachable("unknown K/V dump part");
}

std::string kvdump::tensorName(int64_t layer, Part part) {
  return llvm::formatv("{0}{1}.{2}", kLayerPrefix, layer, partName(part)).str();
}

std::optional<TensorName> kvdump::parseTensorName(llvm::StringRef name) {
  if (!name.consume_front(kLayerPrefix))
    return std::nullopt;
  auto [number, rest] = name.split('.');
  int64_t layer;
  if (number.empty() || number.getAsInteger(10, layer) || layer < 0)
    return std::nullopt;
  for (Part part : kAllParts)
    if (rest == partName(part))
      return TensorName{layer, part};
  return std::nullopt;
}

bool kvdump::isGenerated(const safetensors::File &file) {
  auto it = file.metadata().find(kSourceKey.str());
  return it != file.metadata().end() && it->second == kGeneratedSource;
}

void kvdump::markGenerated(std::map<std::string, std::string> &metadata) {
  metadata[kSourceKey.str()] = kGeneratedSource.str();
}

bool LayerTensors::keysValuesAgree() const {
  return keys && values && keys->shape.size() == 3 &&
         keys->shape == values->shape;
}

bool LayerTensors::queriesAgree() const {
  if (!keys || !queries || keys->shape.size() != 3 ||
      queries->shape.size() != 3)
    return false;
  const std::vector<int64_t> &k = keys->shape, &q = queries->shape;
  // kv_heads = 0 would divide by zero below.
  return q[0] == k[0] && q[2] == k[2] && k[1] > 0 && q[1] % k[1] == 0;
}

LayerTensors kvdump::findLayer(const safetensors::File &file, int64_t layer) {
  LayerTensors tensors;
  tensors.keys = file.find(tensorName(layer, Part::Keys));
  tensors.values = file.find(tensorName(layer, Part::Values));
  tensors.queries = file.find(tensorName(layer, Part::Queries));
  return tensors;
}

llvm::Expected<LayerSamples> kvdump::readLayer(const safetensors::File &file,
                                               const LayerTensors &tensors,
                                               int64_t tokens) {
  auto error = [&](const llvm::Twine &why) -> llvm::Error {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   file.name() + ": " + why);
  };
  if (!tensors.keysValuesAgree() ||
      (tensors.queries && !tensors.queriesAgree()))
    return error("keys, values [tokens, kv_heads, head_dim] and queries "
                 "[tokens, kv_heads * group, head_dim] disagree");
  LayerSamples samples;
  samples.kvHeads = tensors.keys->shape[1];
  samples.headDim = tensors.keys->shape[2];
  if (tokens < 0 || tokens > tensors.keys->shape[0])
    return error("cannot read " + llvm::Twine(tokens) + " tokens of " +
                 llvm::Twine(tensors.keys->shape[0]));
  samples.tokens = tokens;
  // Vectors are sized only now that the shapes and the count are known good.
  auto read = [&](const safetensors::TensorInfo &tensor,
                  std::vector<float> &out) {
    out.resize(tokens * tensor.rowElements());
    return file.readRows(tensor, 0, tokens, out.data());
  };
  if (llvm::Error e = read(*tensors.keys, samples.keys))
    return std::move(e);
  if (llvm::Error e = read(*tensors.values, samples.values))
    return std::move(e);
  if (tensors.queries) {
    samples.group = tensors.queries->shape[1] / samples.kvHeads;
    if (llvm::Error e = read(*tensors.queries, samples.queries))
      return std::move(e);
  }
  return samples;
}
