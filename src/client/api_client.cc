#include "client/api_client.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <limits>
#include <set>
#include <utility>

#include "client/wire.h"
#include "common/json.h"

namespace ym::client {
namespace {

// Every code, so that ParseCodeName is the exact inverse of CodeName.
constexpr std::array kAllCodes = {
    Code::kOk,
    Code::kInvalidJson,
    Code::kInvalidRequest,
    Code::kUnauthenticated,
    Code::kPermissionDenied,
    Code::kNotFound,
    Code::kMethodNotAllowed,
    Code::kStaleLease,
    Code::kInvalidState,
    Code::kPayloadTooLarge,
    Code::kUnsupportedMediaType,
    Code::kValidation,
    Code::kResourceExhausted,
    Code::kInternal,
    Code::kIoError,
    Code::kUnavailable,
    Code::kCorruption,
    Code::kStoreUnavailable,
    Code::kQueueNotFound,
    Code::kNamespaceLimit,
    Code::kSingletonConflict,
    Code::kAlreadyExists,
    Code::kForbidden,
};

// The set fields of a job filter under their wire names, in the order of docs/api.md: text(name,
// value) for the names, states(list) for a non-empty state set, number(name, ms) for the times.
// One walk for the query string of GET /v1/jobs and the body of the bulk operations.
template <class Text, class States, class Number>
void ForEachFilterField(const JobFilterParams& f, Text text, States states, Number number) {
  const std::pair<const char*, const std::optional<std::string>*> names[] = {
      {"namespace", &f.ns}, {"queue", &f.queue}, {"kind", &f.kind}};
  for (const auto& [name, v] : names) {
    if (*v) text(name, **v);
  }
  if (!f.states.empty()) states(f.states);
  if (f.tag) text("tag", *f.tag);
  const std::pair<const char*, const std::optional<std::int64_t>*> times[] = {
      {"created_after", &f.created_after_ms},
      {"created_before", &f.created_before_ms},
      {"finished_after", &f.finished_after_ms},
      {"finished_before", &f.finished_before_ms}};
  for (const auto& [name, v] : times) {
    if (*v) number(name, **v);
  }
}

Backoff ParseBackoff(const Value& v) {
  Backoff b;
  b.initial_ms = Int(v, "initial_ms");
  b.max_ms = Int(v, "max_ms");
  b.multiplier = Double(v, "multiplier", b.multiplier);
  return b;
}

Job ParseJob(const Value& v) {
  Job j;
  j.id = String(v, "id");
  j.ns = String(v, "namespace");
  j.queue = String(v, "queue");
  j.kind = String(v, "kind");
  j.state = String(v, "state");
  j.priority = static_cast<std::int32_t>(Int(v, "priority"));
  j.payload_json = OptRaw(v, "payload").value_or("null");
  j.attempts = static_cast<std::int32_t>(Int(v, "attempts"));
  j.max_attempts = static_cast<std::int32_t>(Int(v, "max_attempts"));
  j.runs = static_cast<std::int32_t>(Int(v, "runs"));
  if (auto b = Member(v, "backoff"); b) j.backoff = ParseBackoff(*b);
  j.lease_ms = Int(v, "lease_ms");
  j.timeout_ms = OptInt(v, "timeout_ms");
  j.idempotency_key = OptString(v, "idempotency_key");
  j.concurrency_key = OptString(v, "concurrency_key");
  j.tags = Strings(v, "tags");
  j.run_at_ms = Int(v, "run_at");
  j.created_at_ms = Int(v, "created_at");
  j.updated_at_ms = Int(v, "updated_at");
  j.finished_at_ms = OptInt(v, "finished_at");
  j.cancel_requested = Bool(v, "cancel_requested");
  j.dead_reason = OptString(v, "dead_reason");
  j.last_error_json = OptRaw(v, "last_error");
  if (auto errs = Member(v, "errors"); errs && errs->IsArray()) {
    for (const auto& e_m : *errs) {
      const Value& e = e_m.value;
      j.errors.push_back(JobAttemptError{static_cast<std::int32_t>(Int(e, "attempt")),
                                         String(e, "type"), String(e, "message"), Int(e, "at")});
    }
  }
  j.result_json = OptRaw(v, "result");
  if (auto l = Member(v, "lease"); l && l->IsObject()) {
    j.lease = JobLease{String(*l, "worker_id"), Int(*l, "expires_at"), OptInt(*l, "deadline_at")};
  }
  j.blocked_reason = OptString(v, "blocked_reason");
  if (std::optional<Value> u = Member(v, "blocked_until"); u && u->IsNumber()) {
    j.blocked_until_ms = u->AsInt64();
  }
  j.progress_json = OptRaw(v, "progress");
  j.traceparent = OptString(v, "traceparent");
  j.tracestate = OptString(v, "tracestate");
  j.request_id = OptString(v, "request_id");
  j.json = std::string(v.Raw());
  return j;
}

Queue ParseQueue(const Value& v) {
  Queue q;
  q.name = String(v, "name");
  q.paused = Bool(v, "paused");
  q.max_attempts = static_cast<std::int32_t>(Int(v, "max_attempts"));
  q.lease_ms = Int(v, "lease_ms");
  q.timeout_ms = OptInt(v, "timeout_ms");
  q.weight = OptInt(v, "weight").value_or(1);
  if (auto b = Member(v, "backoff"); b) q.backoff = ParseBackoff(*b);
  if (auto r = Member(v, "retention"); r) {
    q.retention =
        Retention{Int(*r, "succeeded_ms"),  Int(*r, "dead_ms"),  Int(*r, "cancelled_ms"),
                  Int(*r, "max_succeeded"), Int(*r, "max_dead"), Int(*r, "max_cancelled")};
  }
  if (auto c = Member(v, "counts"); c) {
    q.counts = QueueCounts{Int(*c, "scheduled"), Int(*c, "ready"), Int(*c, "active"),
                           Int(*c, "succeeded"), Int(*c, "dead"),  Int(*c, "cancelled")};
  }
  if (std::optional<Value> b = Member(v, "blocked"); b && b->IsObject()) {
    for (const auto& m : *b) {
      if (auto n = m.value.IsNumber() ? m.value.AsInt64() : std::nullopt) {
        q.blocked[std::string(m.name.GetString())] = *n;
      }
    }
  }
  q.oldest_ready_age_ms = Int(v, "oldest_ready_age_ms");
  q.waiting_workers = Int(v, "waiting_workers");
  q.json = std::string(v.Raw());
  return q;
}

// The Status of an `{"error":{...}}` object inside a 200 batch reply.
Status ItemError(const Value& item) {
  std::optional<Value> e = Member(item, "error");
  if (e == std::nullopt || !e->IsObject())
    return Internal("batch item has neither a result nor error");
  const std::string code = String(*e, "code");
  const std::string message = String(*e, "message");
  if (std::optional<Code> c = ParseCodeName(code); c && *c != Code::kOk) return {*c, message};
  return Internal("unknown error code '" + code + "': " + message);
}

Result<JobPage> ParseJobPage(const std::string& body, std::string_view what) {
  Result<json::Document> doc = ParseReply(body, what);
  if (!doc.ok()) return doc.status();
  std::optional<Value> items = Member(doc->root(), "items");
  if (items == std::nullopt || !items->IsArray()) {
    return Internal("reply to " + std::string(what) + " has no items array");
  }
  JobPage page;
  page.items.reserve(items->Size());
  for (const auto& item : *items) page.items.push_back(ParseJob(item.value));
  page.next_cursor = OptString(doc->root(), "next_cursor");
  if (page.next_cursor && page.next_cursor->empty()) page.next_cursor.reset();
  return page;
}

void WriteFailure(JsonWriter& w, const FailureInfo& e) {
  w.StartObject();
  w.Key("type");
  w.String(e.type);
  w.Key("message");
  w.String(e.message);
  w.Key("retryable");
  w.Bool(e.retryable);
  w.EndObject();
}

EnqueueResult ParseEnqueueResult(const Value& v) {
  EnqueueResult r;
  r.id = String(v, "id");
  r.state = String(v, "state");
  r.duplicate = Bool(v, "duplicate");
  // Key modes: a job a singleton skipped, the jobs a debounce replaced.
  r.skipped = Bool(v, "skipped");
  if (std::optional<Value> s = Member(v, "superseded"); s && s->IsArray()) {
    for (const auto& id : *s) {
      if (id.value.IsString()) r.superseded.emplace_back(id.value.GetString());
    }
  }
  return r;
}

}  // namespace

std::optional<Code> ParseCodeName(std::string_view name) {
  for (Code c : kAllCodes) {
    if (CodeName(c) == name) return c;
  }
  return std::nullopt;
}

Code CodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
      return Code::kInvalidRequest;
    case 401:
      return Code::kUnauthenticated;
    case 403:
      return Code::kPermissionDenied;
    case 404:
      return Code::kNotFound;
    case 405:
      return Code::kMethodNotAllowed;
    case 409:
      return Code::kInvalidState;
    case 413:
      return Code::kPayloadTooLarge;
    case 415:
      return Code::kUnsupportedMediaType;
    case 422:
      return Code::kValidation;
    case 429:
      return Code::kResourceExhausted;
    case 502:
    case 503:
    case 504:
      return Code::kUnavailable;
    default:
      break;
  }
  if (http_status >= 400 && http_status < 500) return Code::kInvalidRequest;
  return Code::kInternal;
}

Status StatusFromErrorReply(int http_status, std::string_view body) {
  json::ParseOptions options;
  options.max_depth = kMaxReplyDepth;
  Result<json::Document> doc = json::Document::Parse(body, options);
  if (doc.ok()) {
    if (auto e = Member(doc->root(), "error"); e && e->IsObject()) {
      std::string message = String(*e, "message");
      const std::string code = String(*e, "code");
      std::optional<Code> c = ParseCodeName(code);
      if (c && *c != Code::kOk) return {*c, std::move(message)};
      // A code newer than this client: keep the HTTP class and say what the server sent.
      return {CodeForHttpStatus(http_status), code + ": " + message};
    }
  }
  std::string message = "HTTP " + std::to_string(http_status);
  if (!body.empty()) {
    constexpr std::size_t kMaxShown = 200;
    message += ": ";
    message += body.substr(0, kMaxShown);
  }
  return {CodeForHttpStatus(http_status), std::move(message)};
}

ApiClient::ApiClient(HttpClient http) : http_(std::move(http)) {}

Result<ApiClient> ApiClient::Create(std::string_view url, HttpClientOptions options) {
  Result<HttpClient> http = HttpClient::Create(url, std::move(options));
  if (!http.ok()) return http.status();
  return ApiClient(std::move(*http));
}

Result<std::string> ApiClient::Call(HttpMethod method, const std::string& target,
                                    std::string_view body,
                                    std::chrono::milliseconds extra_timeout) {
  Result<HttpResponse> r = http_.Send(method, target, body, extra_timeout);
  if (!r.ok()) {
    last_http_status_ = 0;
    last_body_.clear();
    last_retry_after_s_.reset();
    return r.status();
  }
  last_http_status_ = r->status;
  last_retry_after_s_ = r->retry_after_s;
  last_body_ = std::move(r->body);
  if (r->status < 200 || r->status >= 300) return StatusFromErrorReply(r->status, last_body_);
  return last_body_;
}

Result<EnqueueResult> ApiClient::Enqueue(const EnqueueRequest& job) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  YM_RETURN_IF_ERROR(WriteSpec(w, job));
  Result<std::string> body = Call(HttpMethod::kPost, "/v1/jobs", Str(sb));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/jobs");
  if (!doc.ok()) return doc.status();
  return ParseEnqueueResult(doc->root());
}

Result<std::vector<Result<EnqueueResult>>> ApiClient::EnqueueBatch(
    const std::vector<EnqueueRequest>& jobs) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("jobs");
  w.StartArray();
  for (const EnqueueRequest& j : jobs) YM_RETURN_IF_ERROR(WriteSpec(w, j));
  w.EndArray();
  w.EndObject();
  Result<std::string> body = Call(HttpMethod::kPost, "/v1/jobs:batch", Str(sb));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/jobs:batch");
  if (!doc.ok()) return doc.status();
  std::optional<Value> results = Member(doc->root(), "results");
  if (results == std::nullopt || !results->IsArray() || results->Size() != jobs.size()) {
    return Internal("reply to POST /v1/jobs:batch does not have one result per job");
  }
  std::vector<Result<EnqueueResult>> out;
  out.reserve(jobs.size());
  for (const auto& item_m : *results) {
    const Value& item = item_m.value;
    if (Member(item, "error") != std::nullopt) {
      out.emplace_back(ItemError(item));
    } else {
      out.emplace_back(ParseEnqueueResult(item));
    }
  }
  return out;
}

Result<Job> ApiClient::JobCall(HttpMethod method, const std::string& target,
                               std::chrono::milliseconds extra_timeout) {
  Result<std::string> body = Call(method, target, {}, extra_timeout);
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, target);
  if (!doc.ok()) return doc.status();
  return ParseJob(doc->root());
}

Result<Job> ApiClient::GetJob(std::string_view id) {
  return JobCall(HttpMethod::kGet, "/v1/jobs/" + Escape(id));
}

Result<Job> ApiClient::WaitJob(std::string_view id, std::int64_t wait_ms) {
  return JobCall(HttpMethod::kGet, "/v1/jobs/" + Escape(id) + "?wait_ms=" + std::to_string(wait_ms),
                 std::chrono::milliseconds(wait_ms));
}

Result<Job> ApiClient::CancelJob(std::string_view id) {
  return JobCall(HttpMethod::kPost, "/v1/jobs/" + Escape(id) + ":cancel");
}

Result<Job> ApiClient::ReplayJob(std::string_view id) {
  return JobCall(HttpMethod::kPost, "/v1/jobs/" + Escape(id) + ":replay");
}

Result<JobPage> ApiClient::ListJobs(const ListJobsRequest& request) {
  std::string target = "/v1/jobs";
  bool first = true;
  ForEachFilterField(
      request.filter,
      [&](const char* name, const std::string& v) { AddQuery(&target, &first, name, v); },
      [&](const std::vector<std::string>& states) {
        std::string joined;
        for (const std::string& s : states) joined += (joined.empty() ? "" : ",") + s;
        AddQuery(&target, &first, "state", joined);
      },
      [&](const char* name, std::int64_t v) {
        AddQuery(&target, &first, name, std::to_string(v));
      });
  if (request.limit) AddQuery(&target, &first, "limit", std::to_string(*request.limit));
  AddQuery(&target, &first, "cursor", request.cursor);
  Result<std::string> body = Call(HttpMethod::kGet, target, {});
  if (!body.ok()) return body.status();
  return ParseJobPage(*body, "GET /v1/jobs");
}

Result<std::vector<LeasedJob>> ApiClient::Lease(const LeaseRequest& request) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("queues");
  w.StartArray();
  for (const std::string& q : request.queues) w.String(q);
  w.EndArray();
  w.Key("max");
  w.Uint(request.max);
  w.Key("wait_ms");
  w.Int64(request.wait_ms);
  w.Key("worker_id");
  w.String(request.worker_id);
  if (request.lease_ms) {
    w.Key("lease_ms");
    w.Int64(*request.lease_ms);
  }
  w.EndObject();
  // The server may legitimately hold the request for wait_ms before answering.
  Result<std::string> body =
      Call(HttpMethod::kPost, "/v1/leases", Str(sb),
           std::chrono::milliseconds(std::max<std::int64_t>(0, request.wait_ms)));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/leases");
  if (!doc.ok()) return doc.status();
  std::optional<Value> jobs = Member(doc->root(), "jobs");
  if (jobs == std::nullopt || !jobs->IsArray()) {
    return Internal("reply to POST /v1/leases has no jobs array");
  }
  std::vector<LeasedJob> out;
  out.reserve(jobs->Size());
  for (const auto& v_m : *jobs) {
    const Value& v = v_m.value;
    LeasedJob j;
    j.id = String(v, "id");
    j.ns = String(v, "namespace");
    j.queue = String(v, "queue");
    j.kind = String(v, "kind");
    j.payload_json = OptRaw(v, "payload").value_or("null");
    j.attempt = static_cast<std::int32_t>(Int(v, "attempt"));
    j.max_attempts = static_cast<std::int32_t>(Int(v, "max_attempts"));
    j.priority = static_cast<std::int32_t>(Int(v, "priority"));
    j.created_at_ms = Int(v, "created_at");
    j.tags = Strings(v, "tags");
    if (auto l = Member(v, "lease"); l) {
      j.token = String(*l, "token");
      j.expires_at_ms = Int(*l, "expires_at");
      j.deadline_at_ms = OptInt(*l, "deadline_at");
    }
    j.timeout_ms = OptInt(v, "timeout_ms");
    j.traceparent = OptString(v, "traceparent").value_or("");
    j.tracestate = OptString(v, "tracestate").value_or("");
    j.request_id = OptString(v, "request_id").value_or("");
    out.push_back(std::move(j));
  }
  return out;
}

Result<HeartbeatResult> ApiClient::Heartbeat(std::string_view id, std::string_view token,
                                             std::optional<std::int64_t> extend_ms,
                                             std::optional<std::string_view> progress_json) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("token");
  w.String(token.data(), static_cast<rapidjson::SizeType>(token.size()));
  if (extend_ms) {
    w.Key("extend_ms");
    w.Int64(*extend_ms);
  }
  if (progress_json) {
    if (!IsWellFormedJson(*progress_json)) return Validation("progress is not well-formed JSON");
    w.Key("progress");
    WriteRaw(w, std::string(*progress_json));
  }
  w.EndObject();
  const std::string target = "/v1/jobs/" + Escape(id) + ":heartbeat";
  Result<std::string> body = Call(HttpMethod::kPost, target, Str(sb));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, target);
  if (!doc.ok()) return doc.status();
  return HeartbeatResult{Int(doc->root(), "expires_at"), Bool(doc->root(), "cancel_requested")};
}

Result<std::vector<std::string>> ApiClient::WatchCancels(std::string_view worker_id,
                                                         const std::vector<std::string>& known,
                                                         std::int64_t wait_ms) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("worker_id");
  w.String(worker_id.data(), static_cast<rapidjson::SizeType>(worker_id.size()));
  w.Key("known");
  w.StartArray();
  for (const std::string& id : known) w.String(id);
  w.EndArray();
  w.Key("wait_ms");
  w.Int64(wait_ms);
  w.EndObject();
  Result<std::string> body = Call(HttpMethod::kPost, "/v1/cancels:watch", Str(sb),
                                  std::chrono::milliseconds(std::max<std::int64_t>(0, wait_ms)));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/cancels:watch");
  if (!doc.ok()) return doc.status();
  std::optional<Value> ids = Member(doc->root(), "cancel_requested");
  if (ids == std::nullopt || !ids->IsArray()) {
    return Internal("reply to POST /v1/cancels:watch has no cancel_requested array");
  }
  return Strings(doc->root(), "cancel_requested");
}

Result<JobStateResult> ApiClient::Ack(std::string_view id, std::string_view token,
                                      std::optional<std::string_view> result_json) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("token");
  w.String(token.data(), static_cast<rapidjson::SizeType>(token.size()));
  if (result_json) {
    if (!IsWellFormedJson(*result_json)) return Validation("ack result is not well-formed JSON");
    w.Key("result");
    WriteRaw(w, std::string(*result_json));
  }
  w.EndObject();
  const std::string target = "/v1/jobs/" + Escape(id) + ":ack";
  Result<std::string> body = Call(HttpMethod::kPost, target, Str(sb));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, target);
  if (!doc.ok()) return doc.status();
  return JobStateResult{String(doc->root(), "id"), String(doc->root(), "state")};
}

Result<JobStateResult> ApiClient::Fail(std::string_view id, std::string_view token,
                                       const FailureInfo& error,
                                       std::optional<std::int64_t> retry_in_ms) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("token");
  w.String(token.data(), static_cast<rapidjson::SizeType>(token.size()));
  w.Key("error");
  WriteFailure(w, error);
  if (retry_in_ms) {
    w.Key("retry_in_ms");
    w.Int64(*retry_in_ms);
  }
  w.EndObject();
  const std::string target = "/v1/jobs/" + Escape(id) + ":fail";
  Result<std::string> body = Call(HttpMethod::kPost, target, Str(sb));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, target);
  if (!doc.ok()) return doc.status();
  return JobStateResult{String(doc->root(), "id"), String(doc->root(), "state")};
}

Result<AckBatchResult> ApiClient::AckBatch(const std::vector<AckItem>& acks,
                                           const std::vector<FailItem>& fails) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("acks");
  w.StartArray();
  for (const AckItem& a : acks) {
    w.StartObject();
    w.Key("id");
    w.String(a.id);
    w.Key("token");
    w.String(a.token);
    if (a.result_json) {
      if (!IsWellFormedJson(*a.result_json)) {
        return Validation("ack result of job " + a.id + " is not well-formed JSON");
      }
      w.Key("result");
      WriteRaw(w, *a.result_json);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("fails");
  w.StartArray();
  for (const FailItem& f : fails) {
    w.StartObject();
    w.Key("id");
    w.String(f.id);
    w.Key("token");
    w.String(f.token);
    w.Key("error");
    WriteFailure(w, f.error);
    if (f.retry_in_ms) {
      w.Key("retry_in_ms");
      w.Int64(*f.retry_in_ms);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  Result<std::string> body = Call(HttpMethod::kPost, "/v1/acks:batch", Str(sb));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/acks:batch");
  if (!doc.ok()) return doc.status();
  AckBatchResult out;
  // Missing arrays are tolerated only when nothing of that kind was sent.
  auto read = [&](const char* key, std::size_t expected, std::vector<Status>* into) -> Status {
    std::optional<Value> arr = Member(doc->root(), key);
    if (expected == 0 && arr == std::nullopt) return Status::Ok();
    if (arr == std::nullopt || !arr->IsArray() || arr->Size() != expected) {
      return Internal(std::string("reply to POST /v1/acks:batch: '") + key +
                      "' does not have one result per item");
    }
    for (const auto& item_m : *arr) {
      const Value& item = item_m.value;
      into->push_back(Member(item, "error") != std::nullopt ? ItemError(item) : Status::Ok());
    }
    return Status::Ok();
  };
  YM_RETURN_IF_ERROR(read("acks", acks.size(), &out.acks));
  YM_RETURN_IF_ERROR(read("fails", fails.size(), &out.fails));
  return out;
}

Result<QueuePage> ApiClient::ListQueuesPage(std::string_view cursor, std::uint32_t limit) {
  std::string target = "/v1/queues";
  bool first = true;
  AddQuery(&target, &first, "limit", std::to_string(limit));
  if (!cursor.empty()) AddQuery(&target, &first, "cursor", std::string(cursor));
  Result<std::string> body = Call(HttpMethod::kGet, target, {});
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "GET /v1/queues");
  if (!doc.ok()) return doc.status();
  std::optional<Value> items = Member(doc->root(), "items");
  if (items == std::nullopt || !items->IsArray()) {
    return Internal("reply to GET /v1/queues has no items array");
  }
  QueuePage page;
  for (const auto& q : *items) page.items.push_back(ParseQueue(q.value));
  std::optional<Value> next = Member(doc->root(), "next_cursor");
  if (next != std::nullopt && next->IsString()) {
    std::string_view c = next->GetString();
    if (c.empty()) return Internal("reply to GET /v1/queues has an empty next_cursor");
    page.next_cursor = std::string(c);
  }
  return page;
}

Result<std::vector<Queue>> ApiClient::ListQueues(std::uint32_t page_size) {
  std::vector<Queue> out;
  std::string cursor;
  // A server that hands back a cursor it already gave would loop forever: stop instead.
  std::set<std::string> seen;
  for (;;) {
    Result<QueuePage> page = ListQueuesPage(cursor, page_size);
    if (!page.ok()) return page.status();
    for (Queue& q : page->items) out.push_back(std::move(q));
    if (!page->next_cursor) return out;
    cursor = std::move(*page->next_cursor);
    if (!seen.insert(cursor).second) {
      return Internal("GET /v1/queues repeated cursor " + cursor);
    }
  }
}

Result<Queue> ApiClient::QueueCall(HttpMethod method, const std::string& target,
                                   std::string_view request_body) {
  Result<std::string> body = Call(method, target, request_body);
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, target);
  if (!doc.ok()) return doc.status();
  return ParseQueue(doc->root());
}

Result<Queue> ApiClient::GetQueue(std::string_view name) {
  return QueueCall(HttpMethod::kGet, "/v1/queues/" + Escape(name), {});
}

Result<Queue> ApiClient::PutQueue(std::string_view name, const QueueUpdate& u, bool create) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  if (u.paused) {
    w.Key("paused");
    w.Bool(*u.paused);
  }
  if (u.max_attempts) {
    w.Key("max_attempts");
    w.Int(*u.max_attempts);
  }
  if (u.lease_ms) {
    w.Key("lease_ms");
    w.Int64(*u.lease_ms);
  }
  if (u.timeout_ms) {
    w.Key("timeout_ms");
    w.Int64(*u.timeout_ms);
  }
  if (u.weight) {
    w.Key("weight");
    w.Int64(*u.weight);
  }
  if (u.backoff) {
    w.Key("backoff");
    WriteBackoff(w, *u.backoff);
  }
  if (u.retention_succeeded_ms || u.retention_dead_ms || u.retention_cancelled_ms ||
      u.retention_max_succeeded || u.retention_max_dead || u.retention_max_cancelled) {
    w.Key("retention");
    w.StartObject();
    if (u.retention_succeeded_ms) {
      w.Key("succeeded_ms");
      w.Int64(*u.retention_succeeded_ms);
    }
    if (u.retention_dead_ms) {
      w.Key("dead_ms");
      w.Int64(*u.retention_dead_ms);
    }
    if (u.retention_cancelled_ms) {
      w.Key("cancelled_ms");
      w.Int64(*u.retention_cancelled_ms);
    }
    const std::pair<const char*, const std::optional<std::int64_t>*> caps[] = {
        {"max_succeeded", &u.retention_max_succeeded},
        {"max_dead", &u.retention_max_dead},
        {"max_cancelled", &u.retention_max_cancelled}};
    for (const auto& [key, value] : caps) {
      if (*value) {
        w.Key(key);
        w.Int64(**value);
      }
    }
    w.EndObject();
  }
  w.EndObject();
  return QueueCall(HttpMethod::kPut, "/v1/queues/" + Escape(name) + (create ? "?create=true" : ""),
                   Str(sb));
}

Result<Queue> ApiClient::PauseQueue(std::string_view name, bool create) {
  return QueueCall(HttpMethod::kPost,
                   "/v1/queues/" + Escape(name) + ":pause" + (create ? "?create=true" : ""), {});
}

Result<Queue> ApiClient::ResetQueue(std::string_view name) {
  return QueueCall(HttpMethod::kDelete, "/v1/queues/" + Escape(name), {});
}

Result<Queue> ApiClient::ResumeQueue(std::string_view name, bool create) {
  return QueueCall(HttpMethod::kPost,
                   "/v1/queues/" + Escape(name) + ":resume" + (create ? "?create=true" : ""), {});
}

Result<JobPage> ApiClient::ListDead(const ListDeadRequest& request) {
  std::string target = "/v1/dead";
  bool first = true;
  AddQuery(&target, &first, "queue", request.queue);
  if (request.limit) AddQuery(&target, &first, "limit", std::to_string(*request.limit));
  AddQuery(&target, &first, "cursor", request.cursor);
  Result<std::string> body = Call(HttpMethod::kGet, target, {});
  if (!body.ok()) return body.status();
  return ParseJobPage(*body, "GET /v1/dead");
}

Result<std::int64_t> ApiClient::ReplayDead(const DeadReplayRequest& request) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  if (request.queue) {
    w.Key("queue");
    w.String(*request.queue);
  }
  if (!request.ids.empty()) {
    w.Key("ids");
    w.StartArray();
    for (const std::string& id : request.ids) w.String(id);
    w.EndArray();
  }
  if (request.limit) {
    w.Key("limit");
    w.Int64(*request.limit);
  }
  w.EndObject();
  Result<std::string> body = Call(HttpMethod::kPost, "/v1/dead:replay", Str(sb));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/dead:replay");
  if (!doc.ok()) return doc.status();
  return Int(doc->root(), "replayed");
}

Result<BulkPage> ApiClient::Bulk(const BulkRequest& request) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  ForEachFilterField(
      request.filter,
      [&](const char* name, const std::string& v) {
        w.Key(name);
        w.String(v);
      },
      [&](const std::vector<std::string>& states) {
        w.Key("state");
        w.StartArray();
        for (const std::string& state : states) w.String(state);
        w.EndArray();
      },
      [&](const char* name, std::int64_t v) {
        w.Key(name);
        w.Int64(v);
      });
  if (request.all) {
    w.Key("all");
    w.Bool(true);
  }
  if (request.limit) {
    w.Key("limit");
    w.Int64(*request.limit);
  }
  if (request.cursor) {
    w.Key("cursor");
    w.String(*request.cursor);
  }
  if (request.dry_run) {
    w.Key("dry_run");
    w.Bool(true);
  }
  w.EndObject();
  const std::string target = "/v1/jobs:" + request.action;
  Result<std::string> body = Call(HttpMethod::kPost, target, Str(sb));
  if (!body.ok()) return body.status();
  const std::string what = "POST " + target;
  Result<json::Document> doc = ParseReply(*body, what);
  if (!doc.ok()) return doc.status();
  const Value root = doc->root();
  BulkPage page;
  const std::string done = request.action == "cancel"   ? "cancelled"
                           : request.action == "replay" ? "replayed"
                                                        : "deleted";
  if (!OptInt(root, "matched") || !OptInt(root, done) || !OptInt(root, "skipped")) {
    return Internal(what + ": the reply has no \"matched\", \"" + done + "\" or \"skipped\"");
  }
  page.matched = Int(root, "matched");
  page.applied = Int(root, done);
  page.skipped = Int(root, "skipped");
  page.cancel_requested = Int(root, "cancel_requested");
  page.next_cursor = OptString(root, "next_cursor");
  page.json = *body;
  return page;
}

Result<ServerInfo> ApiClient::Info() {
  Result<std::string> body = Call(HttpMethod::kGet, "/v1/info", {});
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "GET /v1/info");
  if (!doc.ok()) return doc.status();
  return ServerInfo{String(doc->root(), "version"), String(doc->root(), "commit"),
                    Int(doc->root(), "started_at"), Int(doc->root(), "live_jobs"),
                    Int(doc->root(), "commits"),    Bool(doc->root(), "draining"),
                    std::string(doc->root().Raw())};
}

namespace {

// [{"key":K,"count":N},...] under `name`.
std::vector<std::pair<std::string, std::int64_t>> KeyCounts(const Value& v, const char* name) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  if (std::optional<Value> a = Member(v, name); a && a->IsArray()) {
    for (const auto& item : *a)
      out.emplace_back(String(item.value, "key"), Int(item.value, "count"));
  }
  return out;
}

Limit ParseLimit(const Value& v) {
  Limit l;
  l.name = String(v, "name");
  if (std::optional<Value> m = Member(v, "match")) {
    if (Member(*m, "queue")) l.match_queue = String(*m, "queue");
    if (Member(*m, "kind")) l.match_kind = String(*m, "kind");
    if (Member(*m, "namespace")) l.match_namespace = String(*m, "namespace");
  }
  l.key = String(v, "key");
  l.concurrency = OptInt(v, "concurrency");
  l.singleton = String(v, "singleton");
  if (std::optional<Value> d = Member(v, "debounce"); d && d->IsObject()) {
    l.debounce_delay_ms = Int(*d, "delay_ms");
    l.debounce_max_wait_ms = OptInt(*d, "max_wait_ms");
  }
  if (std::optional<Value> r = Member(v, "rate"); r && r->IsObject()) {
    l.rate = LimitRate{Int(*r, "count"), Int(*r, "period_ms"), Int(*r, "burst")};
  }
  if (std::optional<Value> q = Member(v, "quota"); q && q->IsObject()) {
    l.quota = LimitQuota{Int(*q, "count"), String(*q, "per"), String(*q, "time_zone")};
    if (std::optional<Value> w = Member(*q, "window"); w && w->IsObject()) {
      l.quota_window_start_ms = Int(*w, "start");
      l.quota_window_end_ms = Int(*w, "end");
    }
    l.quota_used_keys = Int(*q, "used_keys");
    l.quota_used = KeyCounts(*q, "used");
  }
  if (std::optional<Value> b = Member(v, "breaker"); b && b->IsObject()) {
    LimitBreaker c;
    c.consecutive_failures = OptInt(*b, "consecutive_failures");
    c.window = OptInt(*b, "window");
    c.min_samples = OptInt(*b, "min_samples");
    c.failure_percent = OptInt(*b, "failure_percent");
    c.open_base_ms = OptInt(*b, "open_base_ms");
    c.open_max_ms = OptInt(*b, "open_max_ms");
    l.breaker = c;
    l.breaker_tripped_keys = Int(*b, "tripped_keys");
    if (std::optional<Value> keys = Member(*b, "keys"); keys && keys->IsArray()) {
      for (const auto& item : *keys) {
        BreakerKey k;
        k.key = String(item.value, "key");
        k.state = String(item.value, "state");
        k.opened_at_ms = OptInt(item.value, "opened_at").value_or(0);
        k.next_open_at_ms = OptInt(item.value, "next_open_at").value_or(0);
        k.open_interval_ms = Int(item.value, "open_interval_ms");
        k.trial_in_flight = Bool(item.value, "trial_in_flight");
        k.consecutive_failures = Int(item.value, "consecutive_failures");
        l.breaker_keys.push_back(std::move(k));
      }
    }
  }
  if (std::optional<Value> r = Member(v, "reset"); r && r->IsObject()) {
    l.reset_tripped_keys = Int(*r, "tripped_keys");
  }
  l.active_keys = Int(v, "active_keys");
  l.active = KeyCounts(v, "active");
  l.json = std::string(v.Raw());
  return l;
}

}  // namespace

Result<Limit> ApiClient::PutLimit(const Limit& limit, bool* created) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  if (limit.match_queue || limit.match_kind || limit.match_namespace) {
    w.Key("match");
    w.StartObject();
    const std::pair<const char*, const std::optional<std::string>*> members[] = {
        {"queue", &limit.match_queue},
        {"kind", &limit.match_kind},
        {"namespace", &limit.match_namespace}};
    for (const auto& [key, value] : members) {
      if (*value) {
        w.Key(key);
        w.String((*value)->data(), static_cast<rapidjson::SizeType>((*value)->size()));
      }
    }
    w.EndObject();
  }
  if (!limit.key.empty()) {
    w.Key("key");
    w.String(limit.key.data(), static_cast<rapidjson::SizeType>(limit.key.size()));
  }
  if (limit.concurrency) {
    w.Key("concurrency");
    w.Int64(*limit.concurrency);
  }
  if (limit.rate) {
    w.Key("rate");
    w.StartObject();
    w.Key("count");
    w.Int64(limit.rate->count);
    w.Key("period_ms");
    w.Int64(limit.rate->period_ms);
    if (limit.rate->burst != 0) {
      w.Key("burst");
      w.Int64(limit.rate->burst);
    }
    w.EndObject();
  }
  if (limit.quota) {
    w.Key("quota");
    w.StartObject();
    w.Key("count");
    w.Int64(limit.quota->count);
    w.Key("per");
    w.String(limit.quota->per.data(), static_cast<rapidjson::SizeType>(limit.quota->per.size()));
    w.Key("time_zone");
    w.String(limit.quota->time_zone.data(),
             static_cast<rapidjson::SizeType>(limit.quota->time_zone.size()));
    w.EndObject();
  }
  if (limit.breaker) {
    w.Key("breaker");
    w.StartObject();
    const std::pair<const char*, const std::optional<std::int64_t>*> members[] = {
        {"consecutive_failures", &limit.breaker->consecutive_failures},
        {"window", &limit.breaker->window},
        {"min_samples", &limit.breaker->min_samples},
        {"failure_percent", &limit.breaker->failure_percent},
        {"open_base_ms", &limit.breaker->open_base_ms},
        {"open_max_ms", &limit.breaker->open_max_ms}};
    for (const auto& [key, value] : members) {
      if (*value) {
        w.Key(key);
        w.Int64(**value);
      }
    }
    w.EndObject();
  }
  // Key modes.
  if (!limit.singleton.empty()) {
    w.Key("singleton");
    w.String(limit.singleton.data(), static_cast<rapidjson::SizeType>(limit.singleton.size()));
  }
  if (limit.debounce_delay_ms || limit.debounce_max_wait_ms) {
    // A max wait without a delay is sent as is: the server names the missing field.
    w.Key("debounce");
    w.StartObject();
    if (limit.debounce_delay_ms) {
      w.Key("delay_ms");
      w.Int64(*limit.debounce_delay_ms);
    }
    if (limit.debounce_max_wait_ms) {
      w.Key("max_wait_ms");
      w.Int64(*limit.debounce_max_wait_ms);
    }
    w.EndObject();
  }
  w.EndObject();
  const std::string target = "/v1/limits/" + Escape(limit.name);
  Result<std::string> body = Call(HttpMethod::kPut, target, Str(sb));
  if (!body.ok()) return body.status();
  if (created) *created = last_http_status_ == 201;
  Result<json::Document> doc = ParseReply(*body, "PUT /v1/limits");
  if (!doc.ok()) return doc.status();
  return ParseLimit(doc->root());
}

Result<Limit> ApiClient::GetLimit(std::string_view name) {
  Result<std::string> body = Call(HttpMethod::kGet, "/v1/limits/" + Escape(name), {});
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "GET /v1/limits/{name}");
  if (!doc.ok()) return doc.status();
  return ParseLimit(doc->root());
}

Result<std::vector<Limit>> ApiClient::ListLimits(std::uint32_t page_size) {
  return ReadEveryPage<Limit>(
      "/v1/limits", page_size,
      [this](const std::string& target) { return Call(HttpMethod::kGet, target, {}); }, ParseLimit);
}

Status ApiClient::DeleteLimit(std::string_view name) {
  Result<std::string> body = Call(HttpMethod::kDelete, "/v1/limits/" + Escape(name), {});
  return body.ok() ? Status::Ok() : body.status();
}

namespace {

Namespace ParseNamespace(const Value& v) {
  Namespace n;
  n.name = String(v, "name");
  n.max_live_jobs = OptInt(v, "max_live_jobs");
  if (std::optional<Value> r = Member(v, "enqueue_rate"); r && r->IsObject()) {
    n.enqueue_rate = NamespaceRate{Int(*r, "count"), Int(*r, "period_ms"), Int(*r, "burst")};
  }
  n.weight = OptInt(v, "weight");
  n.max_active = OptInt(v, "max_active");
  n.live_jobs = Int(v, "live_jobs");
  n.active_jobs = OptInt(v, "active_jobs").value_or(0);
  n.json = std::string(v.Raw());
  return n;
}

}  // namespace

namespace {

ApiToken ParseApiToken(const Value& v) {
  ApiToken t;
  t.id = String(v, "id");
  t.name = String(v, "name");
  t.role = String(v, "role");
  t.namespaces = Strings(v, "namespaces");
  t.created_at = Int(v, "created_at");
  t.expires_at = OptInt(v, "expires_at");
  t.expired = Bool(v, "expired");
  t.revoked_at = OptInt(v, "revoked_at");
  t.last_used_at = OptInt(v, "last_used_at");
  t.secret = OptString(v, "secret").value_or("");
  return t;
}

}  // namespace

Result<ApiToken> ApiClient::CreateToken(const TokenRequest& request) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("name");
  w.String(request.name.c_str(), static_cast<rapidjson::SizeType>(request.name.size()));
  w.Key("role");
  w.String(request.role.c_str(), static_cast<rapidjson::SizeType>(request.role.size()));
  if (!request.namespaces.empty()) {
    w.Key("namespaces");
    w.StartArray();
    for (const auto& n : request.namespaces) {
      w.String(n.c_str(), static_cast<rapidjson::SizeType>(n.size()));
    }
    w.EndArray();
  }
  if (request.expires_in_ms) {
    w.Key("expires_in_ms");
    w.Int64(*request.expires_in_ms);
  }
  w.EndObject();
  Result<std::string> body = Call(HttpMethod::kPost, "/v1/tokens", Str(sb));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/tokens");
  if (!doc.ok()) return doc.status();
  return ParseApiToken(doc->root());
}

Result<std::vector<ApiToken>> ApiClient::ListTokens() {
  Result<std::string> body = Call(HttpMethod::kGet, "/v1/tokens", {});
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "GET /v1/tokens");
  if (!doc.ok()) return doc.status();
  std::vector<ApiToken> out;
  if (std::optional<Value> items = Member(doc->root(), "tokens"); items && items->IsArray()) {
    for (auto m : *items) out.push_back(ParseApiToken(m.value));
  }
  return out;
}

Result<ApiToken> ApiClient::RevokeToken(std::string_view id) {
  Result<std::string> body = Call(HttpMethod::kDelete, "/v1/tokens/" + Escape(id), {});
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "DELETE /v1/tokens/{id}");
  if (!doc.ok()) return doc.status();
  return ParseApiToken(doc->root());
}

Result<Namespace> ApiClient::PutNamespace(const Namespace& ns, bool* created) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  if (ns.max_live_jobs) {
    w.Key("max_live_jobs");
    w.Int64(*ns.max_live_jobs);
  }
  if (ns.enqueue_rate) {
    w.Key("enqueue_rate");
    w.StartObject();
    w.Key("count");
    w.Int64(ns.enqueue_rate->count);
    w.Key("period_ms");
    w.Int64(ns.enqueue_rate->period_ms);
    if (ns.enqueue_rate->burst != 0) {
      w.Key("burst");
      w.Int64(ns.enqueue_rate->burst);
    }
    w.EndObject();
  }
  if (ns.weight) {
    w.Key("weight");
    w.Int64(*ns.weight);
  }
  if (ns.max_active) {
    w.Key("max_active");
    w.Int64(*ns.max_active);
  }
  w.EndObject();
  Result<std::string> body = Call(HttpMethod::kPut, "/v1/namespaces/" + Escape(ns.name), Str(sb));
  if (!body.ok()) return body.status();
  if (created) *created = last_http_status_ == 201;
  Result<json::Document> doc = ParseReply(*body, "PUT /v1/namespaces");
  if (!doc.ok()) return doc.status();
  return ParseNamespace(doc->root());
}

Result<Namespace> ApiClient::GetNamespace(std::string_view name) {
  Result<std::string> body = Call(HttpMethod::kGet, "/v1/namespaces/" + Escape(name), {});
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "GET /v1/namespaces/{ns}");
  if (!doc.ok()) return doc.status();
  return ParseNamespace(doc->root());
}

Result<std::vector<Namespace>> ApiClient::ListNamespaces(std::uint32_t page_size) {
  return ReadEveryPage<Namespace>(
      "/v1/namespaces", page_size,
      [this](const std::string& target) { return Call(HttpMethod::kGet, target, {}); },
      ParseNamespace);
}

Status ApiClient::DeleteNamespace(std::string_view name) {
  Result<std::string> body = Call(HttpMethod::kDelete, "/v1/namespaces/" + Escape(name), {});
  return body.ok() ? Status::Ok() : body.status();
}

Result<WipePage> ApiClient::WipeNamespace(std::string_view name, std::optional<std::int32_t> limit,
                                          const std::optional<std::string>& cursor) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("confirm");
  w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  if (limit) {
    w.Key("limit");
    w.Int64(*limit);
  }
  if (cursor) {
    w.Key("cursor");
    w.String(*cursor);
  }
  w.EndObject();
  const std::string target = "/v1/namespaces/" + Escape(name) + ":wipe";
  Result<std::string> body = Call(HttpMethod::kPost, target, Str(sb));
  if (!body.ok()) return body.status();
  const std::string what = "POST " + target;
  Result<json::Document> doc = ParseReply(*body, what);
  if (!doc.ok()) return doc.status();
  const Value root = doc->root();
  const std::optional<Value> erased = Member(root, "erased");
  if (!erased || !erased->IsObject() || !OptInt(root, "skipped")) {
    return Internal(what + ": the reply has no \"erased\" object or \"skipped\"");
  }
  WipePage page;
  page.live_jobs = Int(*erased, "live_jobs");
  page.finished_jobs = Int(*erased, "finished_jobs");
  page.idempotency_keys = Int(*erased, "idempotency_keys");
  page.schedules = Int(*erased, "schedules");
  page.skipped = Int(root, "skipped");
  page.done = Bool(root, "done");
  page.next_cursor = OptString(root, "next_cursor");
  page.json = *body;
  return page;
}

Result<std::uint64_t> ApiClient::ExportNamespace(
    std::string_view name, const std::function<bool(std::string_view)>& sink) {
  std::uint64_t lines = 0;
  Result<HttpResponse> r =
      http_.Download("/v1/namespaces/" + Escape(name) + "/export", [&](std::string_view piece) {
        lines += static_cast<std::uint64_t>(std::count(piece.begin(), piece.end(), '\n'));
        return sink(piece);
      });
  if (!r.ok()) {
    last_http_status_ = 0;
    last_body_.clear();
    return r.status();
  }
  last_http_status_ = r->status;
  last_body_ = std::move(r->body);
  if (r->status < 200 || r->status >= 300) return StatusFromErrorReply(r->status, last_body_);
  return lines;
}

Result<Limit> ApiClient::ResetBreaker(std::string_view name,
                                      const std::optional<std::string>& key) {
  std::string req = "{}";
  if (key) {
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    w.StartObject();
    w.Key("key");
    w.String(key->data(), static_cast<rapidjson::SizeType>(key->size()));
    w.EndObject();
    req = Str(sb);
  }
  Result<std::string> body =
      Call(HttpMethod::kPost, "/v1/limits/" + Escape(name) + ":reset-breaker", req);
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/limits/{name}:reset-breaker");
  if (!doc.ok()) return doc.status();
  return ParseLimit(doc->root());
}

Status ApiClient::Healthz() {
  Result<std::string> body = Call(HttpMethod::kGet, "/healthz", {});
  return body.ok() ? Status::Ok() : body.status();
}

Status ApiClient::Readyz() {
  Result<std::string> body = Call(HttpMethod::kGet, "/readyz", {});
  return body.ok() ? Status::Ok() : body.status();
}

Result<std::string> ApiClient::Metrics() { return Call(HttpMethod::kGet, "/metrics", {}); }

Result<std::string> ApiClient::Alerts() { return Call(HttpMethod::kGet, "/v1/alerts", {}); }

Result<std::string> ApiClient::AuditPage(std::uint64_t after, std::uint32_t limit) {
  return Call(HttpMethod::kGet,
              "/v1/audit?after=" + std::to_string(after) + "&limit=" + std::to_string(limit), {});
}

Result<std::string> ApiClient::AuditCheckpoint() {
  return Call(HttpMethod::kGet, "/v1/audit/checkpoint", {});
}

}  // namespace ym::client
