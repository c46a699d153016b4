//===- ModelCalibration.h - rotations from a model's own stories -*- C++
//-*-===//
//
// A real model's rotations come from its own keys and values: it samples
// stories from BOS (temperature 1, seeds of their own, disjoint from the
// seeds the quality tools evaluate on), its dense cache collects every
// layer's keys and values, and each layer is calibrated (Calibration.h).
// The result is kept beside the model as a rotation file (KVDump.h's
// layers.<i>.rot_k / rot_v) and reused while its metadata still matches.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_EVAL_MODELCALIBRATION_H
#define SWAN_RUNTIME_EVAL_MODELCALIBRATION_H

#include "swan/Runtime/Model/Transformer.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace swan {

/// Seeds of the stories rotations are calibrated on; evaluation seeds start
/// at 0 and stay below this.
constexpr uint64_t kCalibrationSeedBase = 1000000;

/// A story the model writes from BOS, sampled at `temperature` with `seed`:
/// BOS, then tokens until the model emits BOS or EOS (not kept) or the
/// context is full.
llvm::Expected<std::vector<int32_t>>
sampleStory(const model::Transformer &transformer, uint64_t seed,
            float temperature = 1.0f);

/// Per layer, [kvHeads][D][D] rotations of keys and of values.
struct ModelRotations {
  std::vector<std::vector<float>> keys, values;
};

/// Calibrates every layer on the K/V of `stories` sampled stories (seeds
/// kCalibrationSeedBase + i); `progress` is told each story done.
llvm::Expected<ModelRotations>
calibrateModel(const model::Transformer &transformer, int64_t stories,
               const std::function<void(int64_t)> &progress = {});

/// The rotations of `modelPath` for `stories` calibration stories: read
/// from modelPath + ".rotations.safetensors" when that file was calibrated
/// the same way on the same model (its size and a sampled hash), else
/// calibrated and written
/// there (a directory that cannot be written only loses the cache).
llvm::Expected<ModelRotations>
cachedModelRotations(const model::Transformer &transformer,
                     llvm::StringRef modelPath, int64_t stories,
                     const std::function<void(int64_t)> &progress = {});

} // namespace swan

#endif // SWAN_RUNTIME_EVAL_MODELCALIBRATION_H
