// yardmaster::Status and yardmaster::Result<T>: how the public C++ SDK reports errors.
//
// What: a Status is OK or carries the API's stable error code name (docs/api.md, "Errors":
// "not_found", "stale_lease", "validation_failed", ...) plus a message and the HTTP status of the
// reply. The SDK never throws for a failed call; it returns a Status or a Result<T>, so callers
// branch on `code()` the same way the server, the CLI and the other SDKs do.
//
// Codes the SDK adds on its own side:
//   - "unavailable" with http_status() == 0: no reply arrived (refused, reset, timed out);
//     the server is unreachable and the call may be retried.
//   - "internal": a reply did not have the documented shape.
//   - "invalid_request": a bad argument detected before anything was sent (e.g. a bad URL).
//
// Threads: plain values; no shared state. This header depends on the standard library only.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace yardmaster {

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(std::string code, std::string message, int http_status = 0)
      : code_(std::move(code)), message_(std::move(message)), http_status_(http_status) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_.empty(); }
  // The API's error code name; empty when ok().
  const std::string& code() const { return code_; }
  const std::string& message() const { return message_; }
  // The HTTP status of the error reply; 0 when no reply arrived or the error is local.
  int http_status() const { return http_status_; }
  // True when retrying the same call later can succeed: the server was unreachable, busy
  // (429) or temporarily unable (503).
  bool transient() const {
    return code_ == "unavailable" || code_ == "io_error" || code_ == "store_unavailable" ||
           code_ == "resource_exhausted";
  }
  // "code: message", or "ok".
  std::string ToString() const { return ok() ? "ok" : code_ + ": " + message_; }

 private:
  std::string code_;
  std::string message_;
  int http_status_ = 0;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  // OK when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace yardmaster
