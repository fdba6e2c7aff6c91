// Router: the one route table of docs/api.md and the request checks every route shares.
//
// RouteRequest() matches a method and request target against the table and applies the
// route-independent rules, in this order:
//   404 not_found            no route has this path
//   405 method_not_allowed   a route has this path but not this method (`allow` lists them)
//   400 invalid_request      a bad path parameter (a job id that is not a positive decimal, a
//                            queue name outside [A-Za-z0-9_.:-]), a bad percent escape, or a
//                            query string on a route that takes none
//   413 payload_too_large    a body over max_request_bytes
//   415 unsupported_media_type  a non-empty body whose Content-Type is not application/json
//                            (parameters such as charset are allowed)
//
// Custom methods use the `:verb` suffix of the last path segment (`/v1/jobs/42:ack`,
// `/v1/jobs:batch`). Queue names may themselves contain ':', so the suffix after the last ':'
// is a verb only when it is one the table knows for that path; a queue literally named
// `x:pause` is reached as `/v1/queues/x%3Apause`.
//
// Ownership and threads: the table is immutable static data; every function is pure and may be
// called from any thread.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "core/job.h"

namespace ym::net {

enum class RouteId : std::uint8_t {
  kEnqueue,
  kEnqueueBatch,
  kBulkCancel,
  kBulkReplay,
  kBulkDelete,
  kListJobs,
  kGetJob,
  kCancelJob,
  kReplayJob,
  kLease,
  kHeartbeat,
  kWatchCancels,
  kAck,
  kFail,
  kCompleteBatch,
  kListQueues,
  kGetQueue,
  kPutQueue,
  kPauseQueue,
  kResumeQueue,
  kResetQueue,
  kListLimits,
  kGetLimit,
  kPutLimit,
  kDeleteLimit,
  kResetBreaker,
  kListNamespaces,
  kGetNamespace,
  kPutNamespace,
  kDeleteNamespace,
  kExportNamespace,
  kWipeNamespace,
  kListSchedules,
  kCreateSchedule,
  kGetSchedule,
  kPutSchedule,
  kPatchSchedule,
  kDeleteSchedule,
  kPauseSchedule,
  kResumeSchedule,
  kTriggerSchedule,
  kBackfillSchedule,
  kListDead,
  kReplayDead,
  kListAlerts,
  kListTokens,
  kCreateToken,
  kRevokeToken,
  kListAudit,
  kAuditCheckpoint,
  kInfo,
  kHealthz,
  kLivez,
  kReadyz,
  kMetrics,
  kUnmatched,  // 404/405 and requests the server refused before routing; keep last
};
inline constexpr std::size_t kRouteCount = static_cast<std::size_t>(RouteId::kUnmatched) + 1;

// A bounded label for metrics and logs, e.g. "POST /v1/jobs/{id}:ack"; "unmatched".
std::string_view RouteLabel(RouteId id);

struct RouteInput {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  std::string_view target;        // path and query, as sent ("/v1/jobs?queue=a")
  std::string_view content_type;  // the Content-Type header, empty if none
  std::size_t body_size = 0;
  std::size_t max_request_bytes = 16 << 20;
};

struct RouteMatch {
  RouteId id = RouteId::kUnmatched;
  JobId job_id = 0;   // for {id} routes
  std::string queue;  // for {q} routes, percent-decoded
  // For {name} routes (limits), percent-decoded and not validated here: a bad limit name is a
  // 422 naming the field "name", like the other fields of a limit.
  std::string name;
  std::string_view query;  // the raw query string (after '?'), for list routes
};

struct RouteOutcome {
  Status status;      // OK when `match` is usable
  RouteMatch match;   // id is kUnmatched unless the path matched a route
  std::string allow;  // for 405: the allowed methods, e.g. "GET, PUT"
};

RouteOutcome RouteRequest(const RouteInput& input);

// True when `content_type` is application/json, with any parameters.
bool IsJsonContentType(std::string_view content_type);

}  // namespace ym::net
