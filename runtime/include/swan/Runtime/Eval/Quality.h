//===- Quality.h - compression quality at equal memory ---------*- C++ -*-===//
//
// docs/DESIGN.md §7: does winnowing in the rotated basis beat simpler ways of
// spending the same bytes? Each method below is given a budget in bytes per
// cached token per KV head (keys and values together; dense fp16 costs
// 4·D), turned into its own parameter (k, rank, window), and its decode
// attention is compared with uncompressed float64 attention
// (swan::reference) at a set of decode positions, for every query head.
//
// Byte accounting (fp16 values, uint8 indices; rotations and scales of the
// whole model are not counted, per-token scales are):
//   swan            buffer of b dense tokens (4·D each) + older tokens
//                   winnowed, 3·k bytes per vector (index encoding)
//   swan-mask       the same with the mask encoding, 2·k + D/8 per vector
//   swan-q8         SWAN-Q8: the kept values as int8 with an f32 scale per
//                   vector (round(x / s), s = max|x| / 127 over the kept
//                   ones): 2·k + 4 bytes per vector with indices
//   swan-q8-mask    the same with the mask encoding, k + D/8 + 4
//   swan-q8-norotate swan-q8 with R = I
//   swan-nobuffer   every token winnowed, index encoding
//   topk-norotate   swan with R = I: winnowing in the original basis
//   lowrank         the first r rotated coordinates of every vector, 2·r
//   window          the most recent W tokens only, dense
//   int8, int6, int5, int4
//                   symmetric per-token (per-vector) absmax quantisation in
//                   the original basis, ceil(bits·D/8) bytes + a 2-byte
//                   scale; their cost is fixed, so they are one point each
//   int4-grouped    int4 with one 2-byte scale per group of 16 or 32
//                   components: D/2 + 2·D/group bytes, two points
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_EVAL_QUALITY_H
#define SWAN_RUNTIME_EVAL_QUALITY_H

#include "swan/Runtime/Eval/Calibration.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace swan::quality {

enum class Method {
  Swan,
  SwanMask,
  SwanQ8,
  SwanQ8Mask,
  SwanNoBuffer,
  TopKNoRotation,
  SwanQ8NoRotation,
  LowRank,
  SlidingWindow,
  Int8,
  Int6,
  Int5,
  Int4,
  Int4Grouped
};

llvm::ArrayRef<Method> allMethods();
llvm::StringRef methodName(Method method);
/// What the method's parameter means ("k", "rank", "window", "bits",
/// "group").
llvm::StringRef parameterName(Method method);
/// The quantisers: their cost does not follow a budget.
bool isQuantised(Method method);
/// Methods that store rotated coordinates.
bool rotates(Method method);
/// Methods that keep the most recent tokens dense.
bool hasBuffer(Method method);

/// Bytes of the per-vector scale of SWAN-Q8 (f32: any fp16 or f32 row's
/// scale keeps full precision, tiny rows included).
constexpr int64_t kQ8ScaleBytes = 4;

/// A method with its parameter chosen.
struct Setting {
  Method method = Method::Swan;
  int64_t parameter = 0; ///< k, rank, window, bits or group
  int64_t buffer = 0; ///< dense buffer tokens (swan, swan-mask, topk-norotate)
  /// Diagnosis of where the error comes from: when false, that side of the
  /// cache is kept exact (the byte accounting is unchanged).
  bool compressKeys = true, compressValues = true;
};

/// What the query at position t sees of tokens 0..t: [first, exactFrom) as
/// the method stores them, [exactFrom, t] exactly (the buffer or the
/// window), nothing before `first` (what a window dropped).
struct VisibleTokens {
  int64_t first = 0, exactFrom = 0;
};
VisibleTokens visibleTokens(const Setting &setting, int64_t t);

/// "k=12", "rank=24", "window=93", "group=16"; "-" for the per-vector
/// quantisers, whose bits the method's name says.
std::string parameterText(const Setting &setting);

/// Bytes per cached token per KV head that `setting` costs for a cache of
/// `tokens` tokens.
double bytesPerToken(const Setting &setting, int64_t tokens, int64_t headDim);

/// The largest parameter whose cost fits `budget` bytes per token, or
/// nullopt when even the smallest does not fit (or, for a quantiser, when
/// its fixed cost exceeds the budget; int4-grouped takes groups of 16 when
/// they fit, else 32).
std::optional<Setting> settingForBudget(Method method, double budget,
                                        int64_t tokens, int64_t headDim,
                                        int64_t buffer);

/// Every quantiser's settings, one point each: int8, int6, int5, int4,
/// int4 in groups of 32, and of 16.
std::vector<Setting> quantisedSettings();

/// One vector as `setting` stores it, in the method's basis (rotated for
/// the methods that rotate): winnowed, truncated or quantised. `out` and
/// `row` hold `dim` values. The buffer and the window are not a property
/// of one vector; callers apply them.
void reconstruct(const Setting &setting, const double *row, int64_t dim,
                 double *out);

/// One layer's data to evaluate on.
struct Input {
  int64_t tokens = 0, kvHeads = 0, headDim = 0, queryGroup = 1;
  std::vector<float> keys, values; ///< [tokens][kvHeads][headDim]
  std::vector<float> queries;      ///< [tokens][kvHeads*queryGroup][headDim]
  Rotations keyRotations, valueRotations;
  double scale = 0.0; ///< 0: 1/sqrt(headDim)
};

struct Metrics {
  double relativeError = 0.0; ///< mean of ‖o − ô‖ / ‖o‖
  double top1 = 0.0;          ///< share of queries with the same argmax
  double top8 = 0.0;          ///< mean |top8 ∩ top8̂| / 8
  int64_t queries = 0;
};

/// Precomputes the exact attention at the chosen decode positions, then
/// evaluates any setting against it. The cache seen at position t holds
/// tokens 0..t; the query is row t of Input::queries.
class Evaluator {
public:
  static llvm::Expected<Evaluator> create(Input input,
                                          std::vector<int64_t> positions);
  Metrics evaluate(const Setting &setting) const;
  const Input &input() const { return data; }
  llvm::ArrayRef<int64_t> positions() const { return decodePositions; }

private:
  Evaluator() = default;
  Input data;
  std::vector<int64_t> decodePositions;
  double scale = 0.0;
  // Per KV head, in double: original and rotated keys and values [tokens][D].
  std::vector<std::vector<double>> keys, values, rotatedKeys, rotatedValues;
  std::vector<std::vector<double>> keyRotation, valueRotation; // [D][D]
  // Per (position, KV head): queries [G][D], rotated queries, exact outputs
  // and exact weights [G][t + 1].
  struct Exact {
    std::vector<double> queries, rotatedQueries, output, weights;
  };
  std::vector<Exact> exact;
};

} // namespace swan::quality

#endif // SWAN_RUNTIME_EVAL_QUALITY_H
