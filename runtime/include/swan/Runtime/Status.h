//===- Status.h - the outcome of a token store call -------------*- C++ -*-===//
//
// The error values of the layers below libswan's API: both token stores (the
// host one and the CUDA one) and the CUDA driver. Plain C++, because the
// CUDA layer links neither LLVM nor MLIR; swan::Cache turns a Status into
// its llvm::Error in one place.
//
//===----------------------------------------------------------------------===//

#ifndef SWAN_RUNTIME_STATUS_H
#define SWAN_RUNTIME_STATUS_H

#include <string>
#include <utility>

namespace swan {

/// Why a call did not succeed. `Unsupported` means no usable driver or
/// device (the C API reports it as SWAN_ERR_UNSUPPORTED); `OutOfMemory`,
/// that device or host memory ran out; `DriverError`, that the CUDA driver
/// failed; `Internal`, that a kernel failed after the arguments were
/// checked, which is a bug.
enum class StatusCode {
  Ok,
  Unsupported,
  DriverError,
  InvalidArgument,
  OutOfMemory,
  Internal
};

class Status {
public:
  static Status ok() { return Status(); }
  static Status error(StatusCode code, std::string message) {
    Status s;
    s.code_ = code;
    s.message_ = std::move(message);
    return s;
  }
  bool isOk() const { return code_ == StatusCode::Ok; }
  StatusCode code() const { return code_; }
  const std::string &message() const { return message_; }

private:
  StatusCode code_ = StatusCode::Ok;
  std::string message_;
};

} // namespace swan

#endif // SWAN_RUNTIME_STATUS_H
