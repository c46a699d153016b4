//===- Safetensors.h - strict safetensors reader and writer ----*- C++ -*-===//
//
// The safetensors format: an 8-byte little-endian header length N, N bytes
// of JSON mapping each tensor name to {dtype, shape, data_offsets} (offsets
// relative to the data section that follows the header; an optional
// "__metadata__" object of string values), then the raw little-endian data.
//
// The reader trusts nothing in the file: every inconsistency (truncation,
// offsets out of range or overlapping, shapes that disagree with byte counts,
// unknown dtypes, absurd header lengths, malformed JSON) is an llvm::Error
// naming the file, the tensor and the problem. Files are memory-mapped, and
// tensors can be converted a slice of rows at a time, so inputs larger than
// memory stream through the page cache.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_EVAL_SAFETENSORS_H
#define SWAN_RUNTIME_EVAL_SAFETENSORS_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace swan::safetensors {

/// The element types swan reads and writes; others are rejected by name.
enum class DType { F32, F16, BF16 };

llvm::StringRef dtypeName(DType dtype);
int64_t dtypeSize(DType dtype);

/// Header lengths above this are rejected before anything is allocated
/// (the limit the reference implementation uses).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0; ///< Byte range within the data section.

  int64_t numElements() const;
  /// Elements per index of the first dimension (1 for a scalar).
  int64_t rowElements() const;
};

/// A validated safetensors file, memory-mapped.
class File {
public:
  /// Opens and validates `path`.
  static llvm::Expected<File> open(llvm::StringRef path);
  /// Validates a file already in memory; `name` only labels errors.
  static llvm::Expected<File>
  fromBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer, llvm::StringRef name);

  llvm::StringRef name() const { return fileName; }
  /// Tensors in data-offset order.
  llvm::ArrayRef<TensorInfo> tensors() const { return infos; }
  const TensorInfo *find(llvm::StringRef tensorName) const;
  const std::map<std::string, std::string> &metadata() const { return meta; }

  /// The tensor's raw little-endian bytes.
  llvm::ArrayRef<uint8_t> bytes(const TensorInfo &tensor) const;

  /// Converts rows [firstRow, firstRow + rows) of the tensor's first
  /// dimension to float into `out` (rows · rowElements() floats).
  llvm::Error readRows(const TensorInfo &tensor, int64_t firstRow, int64_t rows,
                       float *out) const;
  /// The whole tensor as float.
  llvm::Expected<std::vector<float>> readAll(const TensorInfo &tensor) const;

private:
  File() = default;
  std::unique_ptr<llvm::MemoryBuffer> buffer;
  std::string fileName;
  std::vector<TensorInfo> infos;
  std::map<std::string, std::string> meta;
  uint64_t dataStart = 0;
};

/// A tensor to write: its data is converted from float to `dtype`
/// (round to nearest even).
struct TensorDecl {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

/// Streams a safetensors file: the header is written first from the
/// declared tensors, then their data in declaration order, so outputs of
/// any size never have to be held in memory.
class Writer {
public:
  static llvm::Expected<Writer>
  create(llvm::StringRef path, std::vector<TensorDecl> tensors,
         const std::map<std::string, std::string> &metadata = {});

  /// Appends the next `count` elements (they may cross tensor boundaries).
  llvm::Error append(const float *data, int64_t count);
  /// Checks every declared element was written, then closes the file.
  llvm::Error finish();

private:
  Writer() = default;
  std::string path;
  std::unique_ptr<llvm::raw_fd_ostream> os;
  std::vector<TensorDecl> decls;
  size_t current = 0; ///< Tensor being written.
  int64_t writtenInCurrent = 0;
};

/// Writes whole tensors at once; data[i] holds decls[i]'s elements.
llvm::Error write(llvm::StringRef path, llvm::ArrayRef<TensorDecl> decls,
                  llvm::ArrayRef<const std::vector<float> *> data,
                  const std::map<std::string, std::string> &metadata = {});

/// Float conversions of the stored types (round to nearest even).
uint16_t floatToHalf(float x);
float halfToFloat(uint16_t bits);
uint16_t floatToBFloat16(float x);
float bfloat16ToFloat(uint16_t bits);

} // namespace swan::safetensors

#endif // SWAN_RUNTIME_EVAL_SAFETENSORS_H
