//===- Safetensors.cpp - strict safetensors reader and writer -------------===//

#include "swan/Runtime/Eval/Safetensors.h"

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"

#include <Eigen/Core>

#include <algorithm>
#include <cstring>

using namespace swan;
using namespace swan::safetensors;

namespace {

/// JSON nesting a valid header never exceeds (file → tensor → shape); the
/// check keeps a hostile header from exhausting the recursive parser's stack.
constexpr int kMaxJsonDepth = 16;

llvm::Error fileError(llvm::StringRef file, const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 file + ": " + why);
}

llvm::Error tensorError(llvm::StringRef file, llvm::StringRef tensor,
                        const llvm::Twine &why) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 file + ": tensor '" + tensor + "': " + why);
}

std::optional<DType> parseDType(llvm::StringRef name) {
  if (name == "F32")
    return DType::F32;
  if (name == "F16")
    return DType::F16;
  if (name == "BF16")
    return DType::BF16;
  return std::nullopt;
}

/// Walks the header's structure before llvm::json sees it, which would
/// recurse without bound on deep nesting and silently keep one of two equal
/// keys. Returns a description of the first problem, or "".
std::string checkJsonStructure(llvm::StringRef text) {
  struct Level {
    bool isObject;
    bool expectingKey;
    llvm::StringSet<> keys;
  };
  llvm::SmallVector<Level, kMaxJsonDepth> levels;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"') {
      size_t close = i + 1;
      while (close < text.size() && text[close] != '"')
        close += text[close] == '\\' ? 2 : 1;
      if (close >= text.size())
        return ""; // unterminated: the parser reports it
      if (!levels.empty() && levels.back().isObject &&
          levels.back().expectingKey) {
        // Decode escapes so "a" and "\u0061" count as the same key.
        llvm::Expected<llvm::json::Value> key =
            llvm::json::parse(text.slice(i, close + 1));
        if (!key) {
          llvm::consumeError(key.takeError());
          return "";
        }
        llvm::StringRef name = *key->getAsString();
        if (!levels.back().keys.insert(name).second)
          return ("duplicate key '" + name + "'").str();
        levels.back().expectingKey = false;
      }
      i = close;
    } else if (c == '{' || c == '[') {
      if (levels.size() == kMaxJsonDepth)
        return "nested deeper than " + std::to_string(kMaxJsonDepth) +
               " levels";
      levels.push_back({c == '{', c == '{', {}});
    } else if ((c == '}' || c == ']') && !levels.empty()) {
      levels.pop_back();
    } else if (c == ',' && !levels.empty() && levels.back().isObject) {
      levels.back().expectingKey = true;
    }
  }
  return "";
}

/// Multiplies with overflow detection; the element count of a shape can be
/// anything a hostile file writes.
bool multiplyChecked(uint64_t a, uint64_t b, uint64_t &out) {
  if (a != 0 && b > UINT64_MAX / a)
    return false;
  out = a * b;
  return true;
}

int64_t product(llvm::ArrayRef<int64_t> extents) {
  int64_t n = 1;
  for (int64_t d : extents)
    n *= d;
  return n;
}

llvm::Expected<TensorInfo> parseTensor(llvm::StringRef file,
                                       llvm::StringRef name,
                                       const llvm::json::Value &value,
                                       uint64_t dataBytes) {
  const llvm::json::Object *entry = value.getAsObject();
  if (!entry)
    return tensorError(file, name, "header entry is not a JSON object");
  TensorInfo info;
  info.name = name.str();

  std::optional<llvm::StringRef> dtype = entry->getString("dtype");
  if (!dtype)
    return tensorError(file, name, "missing string field 'dtype'");
  std::optional<DType> parsed = parseDType(*dtype);
  if (!parsed)
    return tensorError(file, name,
                       "unsupported dtype '" + *dtype +
                           "' (swan reads F32, F16 and BF16)");
  info.dtype = *parsed;

  const llvm::json::Array *shape = entry->getArray("shape");
  if (!shape)
    return tensorError(file, name, "missing array field 'shape'");
  // Every partial product must fit in int64, zero extents aside: a shape
  // like [0, 2^40, 2^40] holds no bytes but would overflow row arithmetic.
  uint64_t elements = 1, nonzeroElements = 1;
  for (const llvm::json::Value &dim : *shape) {
    std::optional<int64_t> extent = dim.getAsInteger();
    if (!extent || *extent < 0)
      return tensorError(file, name,
                         "shape entries must be non-negative integers");
    uint64_t e = static_cast<uint64_t>(*extent);
    if (!multiplyChecked(nonzeroElements, std::max<uint64_t>(e, 1),
                         nonzeroElements) ||
        nonzeroElements > static_cast<uint64_t>(INT64_MAX))
      return tensorError(file, name, "shape overflows 64 bits");
    elements *= e;
    info.shape.push_back(*extent);
  }

  const llvm::json::Array *offsets = entry->getArray("data_offsets");
  if (!offsets || offsets->size() != 2)
    return tensorError(file, name,
                       "'data_offsets' must be an array of two integers");
  std::optional<uint64_t> begin = (*offsets)[0].getAsUINT64();
  std::optional<uint64_t> end = (*offsets)[1].getAsUINT64();
  if (!begin || !end)
    return tensorError(file, name,
                       "'data_offsets' must be non-negative integers");
  if (*begin > *end)
    return tensorError(file, name,
                       "data_offsets [" + llvm::Twine(*begin) + ", " +
                           llvm::Twine(*end) + ") begin after end");
  if (*end > dataBytes)
    return tensorError(file, name,
                       "data_offsets [" + llvm::Twine(*begin) + ", " +
                           llvm::Twine(*end) +
                           ") out of range: the data section holds " +
                           llvm::Twine(dataBytes) + " bytes");
  uint64_t expected;
  if (!multiplyChecked(elements, dtypeSize(info.dtype), expected) ||
      expected != *end - *begin)
    return tensorError(file, name,
                       "shape holds " + llvm::Twine(elements) + " " +
                           dtypeName(info.dtype) + " elements but " +
                           "data_offsets span " + llvm::Twine(*end - *begin) +
                           " bytes");
  info.begin = *begin;
  info.end = *end;
  return info;
}

float loadElement(DType dtype, const uint8_t *p) {
  using namespace llvm::support;
  switch (dtype) {
  case DType::F32: {
    uint32_t bits = endian::read32le(p);
    float x;
    std::memcpy(&x, &bits, sizeof x);
    return x;
  }
  case DType::F16:
    return halfToFloat(endian::read16le(p));
  case DType::BF16:
    return bfloat16ToFloat(endian::read16le(p));
  }
  return 0.0f;
}

void storeElement(DType dtype, float x, uint8_t *p) {
  using namespace llvm::support;
  switch (dtype) {
  case DType::F32: {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    endian::write32le(p, bits);
    return;
  }
  case DType::F16:
    endian::write16le(p, floatToHalf(x));
    return;
  case DType::BF16:
    endian::write16le(p, floatToBFloat16(x));
    return;
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Types and conversions
//===----------------------------------------------------------------------===//

llvm::StringRef safetensors::dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "F32";
  case DType::F16:
    return "F16";
  case DType::BF16:
    return "BF16";
  }
  return "?";
}

int64_t safetensors::dtypeSize(DType dtype) {
  return dtype == DType::F32 ? 4 : 2;
}

uint16_t safetensors::floatToHalf(float x) {
  return Eigen::numext::bit_cast<uint16_t>(Eigen::half(x));
}
float safetensors::halfToFloat(uint16_t bits) {
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::half>(bits));
}
uint16_t safetensors::floatToBFloat16(float x) {
  return Eigen::numext::bit_cast<uint16_t>(Eigen::bfloat16(x));
}
float safetensors::bfloat16ToFloat(uint16_t bits) {
  return static_cast<float>(Eigen::numext::bit_cast<Eigen::bfloat16>(bits));
}

int64_t TensorInfo::numElements() const { return product(shape); }

int64_t TensorInfo::rowElements() const {
  return shape.empty() ? 1 : product(llvm::ArrayRef(shape).drop_front());
}

//===----------------------------------------------------------------------===//
// Reader
//===----------------------------------------------------------------------===//

llvm::Expected<File> File::open(llvm::StringRef path) {
  // Not null-terminated and not volatile: large files are mapped, not read.
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                  /*RequiresNullTerminator=*/false);
  if (!buffer)
    return fileError(path, "cannot open: " + buffer.getError().message());
  return fromBuffer(std::move(*buffer), path);
}

llvm::Expected<File>
File::fromBuffer(std::unique_ptr<llvm::MemoryBuffer> buffer,
                 llvm::StringRef name) {
  llvm::StringRef contents = buffer->getBuffer();
  const uint64_t size = contents.size();
  if (size < 8)
    return fileError(name, "truncated: " + llvm::Twine(size) +
                               " bytes, shorter than the 8-byte header "
                               "length");
  uint64_t headerBytes = llvm::support::endian::read64le(contents.data());
  if (headerBytes > kMaxHeaderBytes)
    return fileError(name, "absurd header length " + llvm::Twine(headerBytes) +
                               " (limit " + llvm::Twine(kMaxHeaderBytes) + ")");
  if (headerBytes > size - 8)
    return fileError(name, "truncated: header length " +
                               llvm::Twine(headerBytes) + " but only " +
                               llvm::Twine(size - 8) +
                               " bytes follow the length");

  llvm::StringRef headerText = contents.substr(8, headerBytes);
  std::string structure = checkJsonStructure(headerText);
  if (!structure.empty())
    return fileError(name, "header JSON: " + structure);
  llvm::Expected<llvm::json::Value> header = llvm::json::parse(headerText);
  if (!header)
    return fileError(name, "header is not valid JSON: " +
                               llvm::toString(header.takeError()));
  const llvm::json::Object *root = header->getAsObject();
  if (!root)
    return fileError(name, "header is not a JSON object");

  File file;
  file.fileName = name.str();
  file.dataStart = 8 + headerBytes;
  const uint64_t dataBytes = size - file.dataStart;
  for (const auto &[key, value] : *root) {
    if (key == "__metadata__") {
      const llvm::json::Object *meta = value.getAsObject();
      if (!meta)
        return fileError(name, "__metadata__ is not a JSON object");
      for (const auto &[metaKey, metaValue] : *meta) {
        std::optional<llvm::StringRef> text = metaValue.getAsString();
        if (!text)
          return fileError(name, "__metadata__ entry '" + metaKey.str() +
                                     "' is not a string");
        file.meta[metaKey.str()] = text->str();
      }
      continue;
    }
    llvm::Expected<TensorInfo> info =
        parseTensor(name, key.str(), value, dataBytes);
    if (!info)
      return info.takeError();
    file.infos.push_back(std::move(*info));
  }

  // Sorted by offset (then name, for a deterministic order), neighbours must
  // not share a byte. Empty tensors occupy nothing and overlap nothing.
  llvm::sort(file.infos, [](const TensorInfo &a, const TensorInfo &b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  const TensorInfo *previous = nullptr;
  for (const TensorInfo &info : file.infos) {
    if (info.begin == info.end)
      continue;
    if (previous && info.begin < previous->end)
      return tensorError(name, info.name,
                         "data_offsets [" + llvm::Twine(info.begin) + ", " +
                             llvm::Twine(info.end) + ") overlap tensor '" +
                             previous->name + "' [" +
                             llvm::Twine(previous->begin) + ", " +
                             llvm::Twine(previous->end) + ")");
    previous = &info;
  }
  file.buffer = std::move(buffer);
  return file;
}

const TensorInfo *File::find(llvm::StringRef tensorName) const {
  for (const TensorInfo &info : infos)
    if (info.name == tensorName)
      return &info;
  return nullptr;
}

llvm::ArrayRef<uint8_t> File::bytes(const TensorInfo &tensor) const {
  const auto *base =
      reinterpret_cast<const uint8_t *>(buffer->getBufferStart()) + dataStart;
  return llvm::ArrayRef<uint8_t>(base + tensor.begin, base + tensor.end);
}

llvm::Error File::readRows(const TensorInfo &tensor, int64_t firstRow,
                           int64_t rows, float *out) const {
  int64_t total = tensor.shape.empty() ? 1 : tensor.shape[0];
  if (firstRow < 0 || rows < 0 || firstRow > total || rows > total - firstRow)
    return tensorError(fileName, tensor.name,
                       "rows [" + llvm::Twine(firstRow) + ", " +
                           llvm::Twine(firstRow + rows) + ") outside its " +
                           llvm::Twine(total) + " rows");
  const int64_t elementBytes = dtypeSize(tensor.dtype);
  const int64_t count = rows * tensor.rowElements();
  const uint8_t *p =
      bytes(tensor).data() + firstRow * tensor.rowElements() * elementBytes;
  for (int64_t i = 0; i < count; ++i)
    out[i] = loadElement(tensor.dtype, p + i * elementBytes);
  return llvm::Error::success();
}

llvm::Expected<std::vector<float>>
File::readAll(const TensorInfo &tensor) const {
  std::vector<float> out(tensor.numElements());
  int64_t rows = tensor.shape.empty() ? 1 : tensor.shape[0];
  if (llvm::Error e = readRows(tensor, 0, rows, out.data()))
    return std::move(e);
  return out;
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

llvm::Expected<Writer>
Writer::create(llvm::StringRef path, std::vector<TensorDecl> tensors,
               const std::map<std::string, std::string> &metadata) {
  llvm::json::Object header;
  if (!metadata.empty()) {
    llvm::json::Object meta;
    for (const auto &[key, value] : metadata)
      meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const TensorDecl &decl : tensors) {
    if (decl.name == "__metadata__" || header.find(decl.name) != header.end())
      return tensorError(path, decl.name, "declared twice");
    uint64_t elements = 1;
    llvm::json::Array shape;
    for (int64_t d : decl.shape) {
      if (d < 0)
        return tensorError(path, decl.name, "negative extent in shape");
      if (!multiplyChecked(elements, static_cast<uint64_t>(d), elements) ||
          elements > static_cast<uint64_t>(INT64_MAX) / 4)
        return tensorError(path, decl.name, "shape overflows 64 bits");
      shape.push_back(d);
    }
    uint64_t end = offset + elements * dtypeSize(decl.dtype);
    if (end < offset || end > static_cast<uint64_t>(INT64_MAX))
      return tensorError(path, decl.name, "file would exceed 2^63 bytes");
    header[decl.name] =
        llvm::json::Object{{"dtype", dtypeName(decl.dtype)},
                           {"shape", std::move(shape)},
                           {"data_offsets", llvm::json::Array{offset, end}}};
    offset = end;
  }
  std::string text;
  llvm::raw_string_ostream(text) << llvm::json::Value(std::move(header));
  // Pad with spaces so the data section starts 8-byte aligned.
  text.append((8 - text.size() % 8) % 8, ' ');

  std::error_code ec;
  auto os =
      std::make_unique<llvm::raw_fd_ostream>(path, ec, llvm::sys::fs::OF_None);
  if (ec)
    return fileError(path, "cannot create: " + ec.message());
  char length[8];
  llvm::support::endian::write64le(length, text.size());
  os->write(length, 8);
  *os << text;

  Writer writer;
  writer.path = path.str();
  writer.os = std::move(os);
  writer.decls = std::move(tensors);
  return writer;
}

llvm::Error Writer::append(const float *data, int64_t count) {
  llvm::SmallVector<uint8_t, 4096> staging;
  while (count > 0) {
    while (current < decls.size() &&
           writtenInCurrent == product(decls[current].shape)) {
      ++current;
      writtenInCurrent = 0;
    }
    if (current == decls.size())
      return fileError(path, "more data appended than the tensors declare");
    const TensorDecl &decl = decls[current];
    int64_t room = product(decl.shape) - writtenInCurrent;
    int64_t n = std::min<int64_t>({room, count, 1024});
    const int64_t elementBytes = dtypeSize(decl.dtype);
    staging.resize(n * elementBytes);
    for (int64_t i = 0; i < n; ++i)
      storeElement(decl.dtype, data[i], staging.data() + i * elementBytes);
    os->write(reinterpret_cast<const char *>(staging.data()), staging.size());
    data += n;
    count -= n;
    writtenInCurrent += n;
  }
  if (os->has_error())
    return fileError(path, "write failed: " + os->error().message());
  return llvm::Error::success();
}

llvm::Error Writer::finish() {
  while (current < decls.size() &&
         writtenInCurrent == product(decls[current].shape)) {
    ++current;
    writtenInCurrent = 0;
  }
  if (current != decls.size())
    return tensorError(path, decls[current].name,
                       "only " + llvm::Twine(writtenInCurrent) +
                           " elements written before finish");
  os->close();
  if (os->has_error())
    return fileError(path, "write failed: " + os->error().message());
  return llvm::Error::success();
}

llvm::Error safetensors::write(llvm::StringRef path,
                               llvm::ArrayRef<TensorDecl> decls,
                               llvm::ArrayRef<const std::vector<float> *> data,
                               const std::map<std::string, std::string> &meta) {
  if (decls.size() != data.size())
    return fileError(path, "one data vector per declared tensor expected");
  for (size_t i = 0; i < decls.size(); ++i) {
    int64_t elements = product(decls[i].shape);
    if (static_cast<int64_t>(data[i]->size()) != elements)
      return tensorError(path, decls[i].name,
                         "shape holds " + llvm::Twine(elements) +
                             " elements but " + llvm::Twine(data[i]->size()) +
                             " were given");
  }
  llvm::Expected<Writer> writer = Writer::create(
      path, std::vector<TensorDecl>(decls.begin(), decls.end()), meta);
  if (!writer)
    return writer.takeError();
  for (const std::vector<float> *tensor : data)
    if (llvm::Error e = writer->append(tensor->data(), tensor->size()))
      return e;
  return writer->finish();
}
