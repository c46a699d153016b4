//===- KVDump.h - tensor names and layer reader of K/V dumps ----*- C++ -*-===//
//
// A K/V dump is a safetensors file (Safetensors.h) holding, per layer <i>,
//   layers.<i>.keys     [tokens, kv_heads, head_dim], keys after RoPE
//   layers.<i>.values   [tokens, kv_heads, head_dim]
//   layers.<i>.queries  [tokens, kv_heads * group, head_dim], optional: the
//                       decode queries, row t attending tokens 0..t
// and a rotation file (swan-calibrate's output) holds, per layer,
//   layers.<i>.rot_k, layers.<i>.rot_v  [kv_heads, head_dim, head_dim]
// Generated data says so in the file's metadata, so that no report passes it
// off as a real model's cache.
//
// swan-calibrate writes these files and swan-demo and swan-quality read
// them; all three take the names and the layer reader from here.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_EVAL_KVDUMP_H
#define SWAN_RUNTIME_EVAL_KVDUMP_H

#include "swan/Runtime/Eval/Safetensors.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace swan::kvdump {

/// The tensors a dump or a rotation file holds per layer.
enum class Part { Keys, Values, Queries, KeyRotation, ValueRotation };

/// The last component of a part's tensor name: "keys", ..., "rot_v".
llvm::StringRef partName(Part part);

/// "layers.<layer>.<part>".
std::string tensorName(int64_t layer, Part part);

struct TensorName {
  int64_t layer;
  Part part;
};

/// Takes "layers.<layer>.<part>" apart; std::nullopt for any other name,
/// a negative layer included. Leading zeros are accepted ("layers.01.keys"
/// is layer 1), as they always were.
std::optional<TensorName> parseTensorName(llvm::StringRef name);

/// Whether the file's metadata labels it generated data.
bool isGenerated(const safetensors::File &file);
/// Labels a file about to be written as generated data.
void markGenerated(std::map<std::string, std::string> &metadata);

/// One layer's samples in a file; null where the file has none.
struct LayerTensors {
  const safetensors::TensorInfo *keys = nullptr;
  const safetensors::TensorInfo *values = nullptr;
  const safetensors::TensorInfo *queries = nullptr;

  /// Keys and values are both [tokens, kv_heads, head_dim].
  bool keysValuesAgree() const;
  /// Queries are [tokens, kv_heads * group, head_dim] for the keys' tokens,
  /// kv_heads and head_dim.
  bool queriesAgree() const;
};

/// Looks the layer's keys, values and queries up by name.
LayerTensors findLayer(const safetensors::File &file, int64_t layer);

/// The first `tokens` tokens of one layer, as float.
struct LayerSamples {
  int64_t tokens = 0, kvHeads = 0, headDim = 0;
  /// Query heads per KV head; 0 when the file holds no queries.
  int64_t group = 0;
  std::vector<float> keys, values; ///< [tokens][kvHeads][headDim]
  std::vector<float> queries;      ///< [tokens][kvHeads * group][headDim]
};

/// Reads tokens [0, tokens) of keys, values and, when present, queries.
/// The tools check the shapes first to word the error for their users; here
/// a disagreement or a token count out of range is a plain error.
llvm::Expected<LayerSamples> readLayer(const safetensors::File &file,
                                       const LayerTensors &tensors,
                                       int64_t tokens);

} // namespace swan::kvdump

#endif // SWAN_RUNTIME_EVAL_KVDUMP_H
