#include "common/status.h"

namespace ym {

std::string_view CodeName(Code code) {
  switch (code) {
    case Code::kOk:
      return "ok";
    case Code::kInvalidJson:
      return "invalid_json";
    case Code::kInvalidRequest:
      return "invalid_request";
    case Code::kUnauthenticated:
      return "unauthenticated";
    case Code::kPermissionDenied:
      return "permission_denied";
    case Code::kNotFound:
      return "not_found";
    case Code::kMethodNotAllowed:
      return "method_not_allowed";
    case Code::kStaleLease:
      return "stale_lease";
    case Code::kInvalidState:
      return "invalid_state";
    case Code::kPayloadTooLarge:
      return "payload_too_large";
    case Code::kUnsupportedMediaType:
      return "unsupported_media_type";
    case Code::kValidation:
      return "validation_failed";
    case Code::kResourceExhausted:
      return "resource_exhausted";
    case Code::kInternal:
      return "internal";
    case Code::kIoError:
      return "io_error";
    case Code::kUnavailable:
      return "unavailable";
    case Code::kCorruption:
      return "corruption";
    case Code::kStoreUnavailable:
      return "store_unavailable";
    case Code::kQueueNotFound:
      return "queue_not_found";
    case Code::kNamespaceLimit:
      return "namespace_limit";
    case Code::kSingletonConflict:
      return "singleton_conflict";
    case Code::kAlreadyExists:
      return "already_exists";
    case Code::kForbidden:
      return "forbidden";
  }
  return "internal";
}

int HttpStatus(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kInvalidJson:
      return 400;
    case Code::kInvalidRequest:
      return 400;
    case Code::kUnauthenticated:
      return 401;
    case Code::kPermissionDenied:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kMethodNotAllowed:
      return 405;
    case Code::kStaleLease:
      return 409;
    case Code::kInvalidState:
      return 409;
    case Code::kPayloadTooLarge:
      return 413;
    case Code::kUnsupportedMediaType:
      return 415;
    case Code::kValidation:
      return 422;
    case Code::kResourceExhausted:
      return 429;
    case Code::kInternal:
      return 500;
    case Code::kIoError:
      return 503;
    case Code::kUnavailable:
      return 503;
    case Code::kCorruption:
      return 500;
    case Code::kStoreUnavailable:
      return 503;
    case Code::kQueueNotFound:
      return 404;
    case Code::kNamespaceLimit:
      return 429;
    case Code::kSingletonConflict:
      return 409;
    case Code::kAlreadyExists:
      return 409;
    case Code::kForbidden:
      return 403;
  }
  return 500;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string s(CodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

}  // namespace ym
