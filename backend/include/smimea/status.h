// Status and Result<T>: how every core function reports failure.
//
// A Status is either OK (no allocation: the representation is a null pointer) or carries a
// code and a one-line message that says what failed, on which object, and why. Result<T>
// holds either a value or a non-OK Status. No exception crosses the core's public headers.
// Both types are plain values; they are not shared between threads.
#pragma once

#include <cassert>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace smimea {

class [[nodiscard]] Status {
 public:
  enum class Code : std::uint8_t {
    kOk = 0,
    kNotFound,          // the object does not exist
    kInvalidArgument,   // bad input: refused, nothing changed
    kConflict,          // the input is valid but clashes with the store (duplicate, limit)
    kPermissionDenied,  // outside what the caller may do (an API token's scope, read-only)
    kStoreError,        // the database failed (locked, corrupt, I/O)
    kConfigError,       // the configuration is invalid
  };

  Status() = default;
  Status(const Status& other) : rep_(other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr) {}
  Status& operator=(const Status& other) {
    rep_ = other.rep_ ? std::make_unique<Rep>(*other.rep_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  static Status not_found(std::string_view what, std::string_view why) {
    return Status(Code::kNotFound, what, why);
  }
  static Status invalid_argument(std::string_view what, std::string_view why) {
    return Status(Code::kInvalidArgument, what, why);
  }
  static Status conflict(std::string_view what, std::string_view why) {
    return Status(Code::kConflict, what, why);
  }
  static Status permission_denied(std::string_view what, std::string_view why) {
    return Status(Code::kPermissionDenied, what, why);
  }
  static Status store_error(std::string_view what, std::string_view why) {
    return Status(Code::kStoreError, what, why);
  }
  static Status config_error(std::string_view what, std::string_view why) {
    return Status(Code::kConfigError, what, why);
  }

  bool ok() const { return rep_ == nullptr; }
  Code code() const { return rep_ ? rep_->code : Code::kOk; }
  bool is_not_found() const { return code() == Code::kNotFound; }

  // The message without a code prefix: "alice.pem: not a certificate (PEM or DER)".
  // Empty for OK.
  const std::string& message() const;

  // Returns a copy whose message is "context: <message>".
  Status with_context(std::string_view context) const;

 private:
  struct Rep {
    Code code;
    std::string message;
  };
  Status(Code code, std::string_view what, std::string_view why);
  std::unique_ptr<Rep> rep_;
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor): by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok());
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

// Returns early with the Status of a failed expression.
#define SMIMEA_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::smimea::Status smimea_status_ = (expr);        \
    if (!smimea_status_.ok()) return smimea_status_; \
  } while (0)

}  // namespace smimea
