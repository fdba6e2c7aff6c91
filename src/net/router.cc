#include "net/router.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <vector>

#include "net/codec.h"

namespace ym::net {
namespace {

namespace http = boost::beast::http;

struct RouteSpec {
  RouteId id;
  http::verb method;
  std::string_view path;  // segments; "{id}" is a job id, "{q}" a queue name; ":verb" suffix
  bool takes_query;
  std::string_view label;
};

// THE route table: every path of docs/api.md, once.
constexpr std::array<RouteSpec, kRouteCount - 1> kRoutes{{
    {RouteId::kEnqueue, http::verb::post, "/v1/jobs", false, "POST /v1/jobs"},
    {RouteId::kEnqueueBatch, http::verb::post, "/v1/jobs:batch", false, "POST /v1/jobs:batch"},
    {RouteId::kBulkCancel, http::verb::post, "/v1/jobs:cancel", false, "POST /v1/jobs:cancel"},
    {RouteId::kBulkReplay, http::verb::post, "/v1/jobs:replay", false, "POST /v1/jobs:replay"},
    {RouteId::kBulkDelete, http::verb::post, "/v1/jobs:delete", false, "POST /v1/jobs:delete"},
    {RouteId::kListJobs, http::verb::get, "/v1/jobs", true, "GET /v1/jobs"},
    {RouteId::kGetJob, http::verb::get, "/v1/jobs/{id}", true, "GET /v1/jobs/{id}"},
    {RouteId::kCancelJob, http::verb::post, "/v1/jobs/{id}:cancel", false,
     "POST /v1/jobs/{id}:cancel"},
    {RouteId::kReplayJob, http::verb::post, "/v1/jobs/{id}:replay", false,
     "POST /v1/jobs/{id}:replay"},
    {RouteId::kLease, http::verb::post, "/v1/leases", false, "POST /v1/leases"},
    {RouteId::kHeartbeat, http::verb::post, "/v1/jobs/{id}:heartbeat", false,
     "POST /v1/jobs/{id}:heartbeat"},
    {RouteId::kWatchCancels, http::verb::post, "/v1/cancels:watch", false,
     "POST /v1/cancels:watch"},
    {RouteId::kAck, http::verb::post, "/v1/jobs/{id}:ack", false, "POST /v1/jobs/{id}:ack"},
    {RouteId::kFail, http::verb::post, "/v1/jobs/{id}:fail", false, "POST /v1/jobs/{id}:fail"},
    {RouteId::kCompleteBatch, http::verb::post, "/v1/acks:batch", false, "POST /v1/acks:batch"},
    {RouteId::kListQueues, http::verb::get, "/v1/queues", true, "GET /v1/queues"},
    {RouteId::kGetQueue, http::verb::get, "/v1/queues/{q}", false, "GET /v1/queues/{q}"},
    {RouteId::kPutQueue, http::verb::put, "/v1/queues/{q}", true, "PUT /v1/queues/{q}"},
    {RouteId::kPauseQueue, http::verb::post, "/v1/queues/{q}:pause", true,
     "POST /v1/queues/{q}:pause"},
    {RouteId::kResumeQueue, http::verb::post, "/v1/queues/{q}:resume", true,
     "POST /v1/queues/{q}:resume"},
    {RouteId::kResetQueue, http::verb::delete_, "/v1/queues/{q}", false, "DELETE /v1/queues/{q}"},
    {RouteId::kListLimits, http::verb::get, "/v1/limits", true, "GET /v1/limits"},
    {RouteId::kGetLimit, http::verb::get, "/v1/limits/{name}", false, "GET /v1/limits/{name}"},
    {RouteId::kPutLimit, http::verb::put, "/v1/limits/{name}", false, "PUT /v1/limits/{name}"},
    {RouteId::kDeleteLimit, http::verb::delete_, "/v1/limits/{name}", false,
     "DELETE /v1/limits/{name}"},
    {RouteId::kResetBreaker, http::verb::post, "/v1/limits/{name}:reset-breaker", false,
     "POST /v1/limits/{name}:reset-breaker"},
    {RouteId::kListNamespaces, http::verb::get, "/v1/namespaces", true, "GET /v1/namespaces"},
    {RouteId::kGetNamespace, http::verb::get, "/v1/namespaces/{name}", false,
     "GET /v1/namespaces/{name}"},
    {RouteId::kPutNamespace, http::verb::put, "/v1/namespaces/{name}", false,
     "PUT /v1/namespaces/{name}"},
    {RouteId::kDeleteNamespace, http::verb::delete_, "/v1/namespaces/{name}", false,
     "DELETE /v1/namespaces/{name}"},
    {RouteId::kExportNamespace, http::verb::get, "/v1/namespaces/{name}/export", false,
     "GET /v1/namespaces/{name}/export"},
    {RouteId::kWipeNamespace, http::verb::post, "/v1/namespaces/{name}:wipe", false,
     "POST /v1/namespaces/{name}:wipe"},
    {RouteId::kListSchedules, http::verb::get, "/v1/schedules", true, "GET /v1/schedules"},
    {RouteId::kCreateSchedule, http::verb::post, "/v1/schedules", false, "POST /v1/schedules"},
    {RouteId::kGetSchedule, http::verb::get, "/v1/schedules/{name}", true,
     "GET /v1/schedules/{id}"},
    {RouteId::kPutSchedule, http::verb::put, "/v1/schedules/{name}", false,
     "PUT /v1/schedules/{id}"},
    {RouteId::kPatchSchedule, http::verb::patch, "/v1/schedules/{name}", false,
     "PATCH /v1/schedules/{id}"},
    {RouteId::kDeleteSchedule, http::verb::delete_, "/v1/schedules/{name}", false,
     "DELETE /v1/schedules/{id}"},
    {RouteId::kPauseSchedule, http::verb::post, "/v1/schedules/{name}:pause", false,
     "POST /v1/schedules/{id}:pause"},
    {RouteId::kResumeSchedule, http::verb::post, "/v1/schedules/{name}:resume", false,
     "POST /v1/schedules/{id}:resume"},
    {RouteId::kTriggerSchedule, http::verb::post, "/v1/schedules/{name}:trigger", false,
     "POST /v1/schedules/{id}:trigger"},
    {RouteId::kBackfillSchedule, http::verb::post, "/v1/schedules/{name}:backfill", false,
     "POST /v1/schedules/{id}:backfill"},
    {RouteId::kListDead, http::verb::get, "/v1/dead", true, "GET /v1/dead"},
    {RouteId::kReplayDead, http::verb::post, "/v1/dead:replay", false, "POST /v1/dead:replay"},
    {RouteId::kListAlerts, http::verb::get, "/v1/alerts", false, "GET /v1/alerts"},
    {RouteId::kListTokens, http::verb::get, "/v1/tokens", false, "GET /v1/tokens"},
    {RouteId::kCreateToken, http::verb::post, "/v1/tokens", false, "POST /v1/tokens"},
    {RouteId::kRevokeToken, http::verb::delete_, "/v1/tokens/{name}", false,
     "DELETE /v1/tokens/{id}"},
    {RouteId::kListAudit, http::verb::get, "/v1/audit", true, "GET /v1/audit"},
    {RouteId::kAuditCheckpoint, http::verb::get, "/v1/audit/checkpoint", false,
     "GET /v1/audit/checkpoint"},
    {RouteId::kInfo, http::verb::get, "/v1/info", false, "GET /v1/info"},
    {RouteId::kHealthz, http::verb::get, "/healthz", false, "GET /healthz"},
    {RouteId::kLivez, http::verb::get, "/livez", false, "GET /livez"},
    {RouteId::kReadyz, http::verb::get, "/readyz", false, "GET /readyz"},
    {RouteId::kMetrics, http::verb::get, "/metrics", false, "GET /metrics"},
}};

// Splits "/a/b/c" into {"a","b","c"}; a trailing or doubled '/' yields an empty segment, which
// matches nothing.
std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path[0] != '/') return out;
  path.remove_prefix(1);
  while (true) {
    std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

struct Captured {
  std::string_view raw_id;
  std::string_view raw_queue;
  std::string_view raw_name;
  bool has_verb = false;
};

// Matches one request segment against one pattern segment (without verbs).
bool MatchSegment(std::string_view pattern, std::string_view seg, Captured& cap) {
  if (seg.empty()) return false;
  if (pattern == "{id}") {
    // Job ids are decimal: a ':' here is an unknown verb, not part of the id.
    if (seg.find(':') != std::string_view::npos) return false;
    cap.raw_id = seg;
    return true;
  }
  if (pattern == "{q}") {
    cap.raw_queue = seg;
    return true;
  }
  if (pattern == "{name}") {
    cap.raw_name = seg;
    return true;
  }
  return pattern == seg;
}

bool MatchRoute(const RouteSpec& route, const std::vector<std::string_view>& segs, Captured& cap) {
  std::vector<std::string_view> pat = Split(route.path);
  if (pat.size() != segs.size() || segs.empty()) return false;
  for (std::size_t i = 0; i + 1 < pat.size(); ++i) {
    if (!MatchSegment(pat[i], segs[i], cap)) return false;
  }
  std::string_view last_pat = pat.back();
  std::string_view last = segs.back();
  std::size_t colon = last_pat.find(':');
  if (colon == std::string_view::npos) return MatchSegment(last_pat, last, cap);
  std::string_view verb = last_pat.substr(colon);  // ":cancel"
  if (last.size() <= verb.size() || last.substr(last.size() - verb.size()) != verb) return false;
  cap.has_verb = true;
  return MatchSegment(last_pat.substr(0, colon), last.substr(0, last.size() - verb.size()), cap);
}

// User-sent bytes quoted in an error message: printable ASCII as is, anything else as %XX, so a
// message is always valid UTF-8 and readable in a log line.
std::string Printable(std::string_view text) {
  constexpr std::size_t kMaxQuoted = 200;
  std::string out;
  for (char c : text.substr(0, kMaxQuoted)) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  if (text.size() > kMaxQuoted) out += "...";
  return out;
}

std::string_view MethodName(http::verb v) {
  switch (v) {
    case http::verb::get:
      return "GET";
    case http::verb::post:
      return "POST";
    case http::verb::put:
      return "PUT";
    case http::verb::delete_:
      return "DELETE";
    case http::verb::patch:
      return "PATCH";
    default:
      return "";
  }
}

}  // namespace

std::string_view RouteLabel(RouteId id) {
  for (const auto& r : kRoutes) {
    if (r.id == id) return r.label;
  }
  return "unmatched";
}

bool IsJsonContentType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  constexpr std::string_view kJson = "application/json";
  if (media.size() != kJson.size()) return false;
  for (std::size_t i = 0; i < media.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(media[i])) != kJson[i]) return false;
  }
  return true;
}

RouteOutcome RouteRequest(const RouteInput& input) {
  RouteOutcome out;
  std::size_t qmark = input.target.find('?');
  std::string_view path = input.target.substr(0, qmark);
  std::string_view query =
      qmark == std::string_view::npos ? std::string_view() : input.target.substr(qmark + 1);
  std::vector<std::string_view> segs = Split(path);

  // Collect every route whose path matches; a known verb suffix wins over reading the whole
  // segment as a queue name.
  const RouteSpec* chosen = nullptr;
  Captured chosen_cap;
  bool verb_matched = false;
  std::vector<const RouteSpec*> path_matches;
  for (const auto& route : kRoutes) {
    Captured cap;
    if (!MatchRoute(route, segs, cap)) continue;
    if (cap.has_verb && !verb_matched) {
      verb_matched = true;
      path_matches.clear();
      chosen = nullptr;
    } else if (!cap.has_verb && verb_matched) {
      continue;
    }
    path_matches.push_back(&route);
    if (route.method == input.method && chosen == nullptr) {
      chosen = &route;
      chosen_cap = cap;
    }
  }
  if (path_matches.empty()) {
    out.status = NotFound(fmt::format("no route for {}", Printable(path)));
    return out;
  }
  if (chosen == nullptr) {
    for (const RouteSpec* r : path_matches) {
      std::string_view m = MethodName(r->method);
      if (out.allow.find(m) != std::string::npos) continue;
      if (!out.allow.empty()) out.allow += ", ";
      out.allow += m;
    }
    out.status = Status(
        Code::kMethodNotAllowed,
        fmt::format("{} does not allow this method; allowed: {}", Printable(path), out.allow));
    return out;
  }

  out.match.id = chosen->id;
  if (!chosen->takes_query && !query.empty()) {
    out.status = InvalidRequest(fmt::format("{} takes no query parameters", chosen->label));
    return out;
  }
  out.match.query = query;
  if (!chosen_cap.raw_id.empty()) {
    auto text = PercentDecode(chosen_cap.raw_id, /*plus_is_space=*/false);
    std::optional<JobId> id;
    if (text.ok()) id = ParseJobId(*text);
    if (!id) {
      out.status = InvalidRequest(
          fmt::format("path parameter \"id\": \"{}\" is not a job id (a positive decimal integer)",
                      Printable(chosen_cap.raw_id)));
      return out;
    }
    out.match.job_id = *id;
  }
  if (!chosen_cap.raw_queue.empty()) {
    auto name = PercentDecode(chosen_cap.raw_queue, /*plus_is_space=*/false);
    if (!name.ok() || !IsValidName(*name)) {
      out.status = InvalidRequest(
          fmt::format("path parameter \"q\": \"{}\" is not a queue name (1 to 128 characters from "
                      "[A-Za-z0-9_.:-])",
                      Printable(chosen_cap.raw_queue)));
      return out;
    }
    out.match.queue = std::move(name).value();
  }
  if (!chosen_cap.raw_name.empty()) {
    auto name = PercentDecode(chosen_cap.raw_name, /*plus_is_space=*/false);
    if (!name.ok()) {
      out.status = InvalidRequest(fmt::format("path parameter \"name\": \"{}\" is not valid",
                                              Printable(chosen_cap.raw_name)));
      return out;
    }
    out.match.name = std::move(name).value();
  }
  if (input.body_size > input.max_request_bytes) {
    out.status = Status(Code::kPayloadTooLarge,
                        fmt::format("request body of {} bytes is over the limit of {} bytes",
                                    input.body_size, input.max_request_bytes));
    return out;
  }
  if (input.body_size > 0 && !IsJsonContentType(input.content_type)) {
    out.status = Status(Code::kUnsupportedMediaType,
                        fmt::format("Content-Type must be application/json, not \"{}\"",
                                    Printable(input.content_type)));
    return out;
  }
  return out;
}

}  // namespace ym::net
