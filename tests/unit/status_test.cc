// common/status.h: every error code has the HTTP status and the wire name of docs/api.md's error
// table, and the server renders an error reply with that status.
#include "common/status.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace ym {
namespace {

TEST(StatusCodeTest, EveryCodeHasTheDocumentedHttpStatusAndName) {
  struct Row {
    Code code;
    int http;
    const char* name;
  };
  // docs/api.md, "Errors".
  const std::vector<Row> table = {
      {Code::kInvalidJson, 400, "invalid_json"},
      {Code::kInvalidRequest, 400, "invalid_request"},
      {Code::kUnauthenticated, 401, "unauthenticated"},
      {Code::kPermissionDenied, 403, "permission_denied"},
      {Code::kNotFound, 404, "not_found"},
      {Code::kMethodNotAllowed, 405, "method_not_allowed"},
      {Code::kStaleLease, 409, "stale_lease"},
      {Code::kInvalidState, 409, "invalid_state"},
      {Code::kPayloadTooLarge, 413, "payload_too_large"},
      {Code::kUnsupportedMediaType, 415, "unsupported_media_type"},
      {Code::kValidation, 422, "validation_failed"},
      {Code::kResourceExhausted, 429, "resource_exhausted"},
      {Code::kInternal, 500, "internal"},
      {Code::kCorruption, 500, "corruption"},
      {Code::kUnavailable, 503, "unavailable"},
      {Code::kIoError, 503, "io_error"},
      {Code::kStoreUnavailable, 503, "store_unavailable"},
      {Code::kQueueNotFound, 404, "queue_not_found"},
      {Code::kNamespaceLimit, 429, "namespace_limit"},
      {Code::kSingletonConflict, 409, "singleton_conflict"},
      {Code::kAlreadyExists, 409, "already_exists"},
      {Code::kForbidden, 403, "forbidden"},
  };
  std::set<std::string> names;
  for (const Row& r : table) {
    EXPECT_EQ(HttpStatus(r.code), r.http) << r.name;
    EXPECT_EQ(CodeName(r.code), r.name);
    names.insert(r.name);
  }
  // Every error code is in the table (kOk comes before them, kForbidden is the last), and
  // names are unique. A new code goes at the end of the enum and here.
  EXPECT_EQ(table.size(), static_cast<std::size_t>(Code::kForbidden));
  EXPECT_EQ(CodeName(static_cast<Code>(table.size() + 1)), CodeName(Code::kInternal))
      << "a code after kForbidden is missing from this table";
  EXPECT_EQ(names.size(), table.size());
  EXPECT_EQ(HttpStatus(Code::kOk), 200);
  EXPECT_EQ(CodeName(Code::kOk), "ok");
}

}  // namespace
}  // namespace ym
