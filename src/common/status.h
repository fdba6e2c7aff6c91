// Status and Result<T>: errors as values across module boundaries.
//
// A Status is either OK or carries one code from a closed enum plus a human-readable message.
// Every code maps to exactly one HTTP status and one stable snake_case string (`CodeName`) that
// the server, the CLI, the SDKs and the dashboard all use; `docs/api.md` lists them. Adding a
// code means adding it to all three tables below and to the docs.
//
// Thread-safety: plain values, no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace ym {

enum class Code : std::uint8_t {
  kOk = 0,
  kInvalidJson,           // 400: the body is not well-formed JSON
  kInvalidRequest,        // 400: bad path parameter, query string or header
  kUnauthenticated,       // 401
  kPermissionDenied,      // 403
  kNotFound,              // 404: no such job / queue / route
  kMethodNotAllowed,      // 405: the route exists but not with this method
  kStaleLease,            // 409: lease token does not match the job's current lease
  kInvalidState,          // 409: the job's state does not allow the operation
  kPayloadTooLarge,       // 413: payload or request body over the configured limit
  kUnsupportedMediaType,  // 415: a body that is not application/json
  kValidation,            // 422: well-formed JSON with a wrong type or a value out of range
  kResourceExhausted,     // 429: backpressure; retry later
  kInternal,              // 500: a bug; logged with detail
  kIoError,               // 503: the store could not make a write durable
  kUnavailable,           // 503: the server is starting or draining
  kCorruption,            // 500: the store holds data that does not decode
  kStoreUnavailable,      // 503: the store refuses writes (disk full, I/O error): read-only
  kQueueNotFound,         // 404: a write names a queue that does not exist (and no create)
  kNamespaceLimit,        // 429: an enqueue over its namespace's max_live_jobs or enqueue_rate
  kSingletonConflict,     // 409: a singleton limit's key is held by a live job (named)
  kAlreadyExists,         // 409: a create names something that exists (a schedule id)
  kForbidden,             // 403: the token's role or namespaces do not allow this (net/authz.h)
};

// The stable wire string for a code, e.g. "stale_lease".
std::string_view CodeName(Code code);
// The HTTP status that a code maps to.
int HttpStatus(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // When a retry may succeed, in ms from now (kNamespaceLimit: exact for an enqueue rate, a
  // hint for max_live_jobs); -1 when not known. Sent as Retry-After (whole seconds, rounded up)
  // and as "retry_after_ms" in the JSON error.
  std::int64_t retry_after_ms() const { return retry_after_ms_; }
  Status& WithRetryAfter(std::int64_t ms) {
    retry_after_ms_ = ms;
    return *this;
  }
  // "code_name: message", for logs.
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
  std::int64_t retry_after_ms_ = -1;
};

// Shorthands that read well at call sites: `return NotFound("job 7")`.
inline Status InvalidJson(std::string m) { return {Code::kInvalidJson, std::move(m)}; }
inline Status InvalidRequest(std::string m) { return {Code::kInvalidRequest, std::move(m)}; }
inline Status NotFound(std::string m) { return {Code::kNotFound, std::move(m)}; }
inline Status Forbidden(std::string m) { return {Code::kForbidden, std::move(m)}; }
inline Status QueueNotFound(std::string m) { return {Code::kQueueNotFound, std::move(m)}; }
inline Status Validation(std::string m) { return {Code::kValidation, std::move(m)}; }
inline Status StaleLease(std::string m) { return {Code::kStaleLease, std::move(m)}; }
inline Status InvalidState(std::string m) { return {Code::kInvalidState, std::move(m)}; }
inline Status IoError(std::string m) { return {Code::kIoError, std::move(m)}; }
inline Status Unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
inline Status Internal(std::string m) { return {Code::kInternal, std::move(m)}; }
inline Status Corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
inline Status StoreUnavailable(std::string m) { return {Code::kStoreUnavailable, std::move(m)}; }

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<Status>(v_);
  }
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

}  // namespace ym

// Propagates a non-OK Status from an expression returning Status.
#define YM_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::ym::Status ym_status_ = (expr);        \
    if (!ym_status_.ok()) return ym_status_; \
  } while (0)
