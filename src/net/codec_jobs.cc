// The codec of jobs: enqueue, lease, heartbeat, ack/fail, lists, dead letters and bulk actions.

#include <fmt/format.h>

#include <charconv>

#include "net/codec.h"
#include "net/codec_schedules.h"
#include "net/codec_util.h"
#include "obs/redact.h"

namespace ym::net {
namespace {

// "traceparent", "tracestate" and "request_id" of a job; absent ones as null when `nulls`, else
// left out.
void WriteTraceMembers(JsonWriter& w, const TraceContext& trace, const std::string& request_id,
                       bool nulls) {
  if (nulls || !trace.traceparent.empty()) {
    WriteKey(w, "traceparent");
    WriteStrOrNull(w, trace.traceparent);
  }
  if (nulls || !trace.tracestate.empty()) {
    WriteKey(w, "tracestate");
    WriteStrOrNull(w, trace.tracestate);
  }
  if (nulls || !request_id.empty()) {
    WriteKey(w, "request_id");
    WriteStrOrNull(w, request_id);
  }
}

Result<EnqueueSpec> EnqueueFromValue(const Value& obj, const CodecLimits& limits) {
  if (!obj.IsObject()) return Validation("a job spec must be a JSON object");
  YM_RETURN_IF_ERROR(
      CheckMembers(obj, "",
                   {"queue", "kind", "payload", "namespace", "priority", "delay_ms", "run_at",
                    "max_attempts", "backoff", "lease_ms", "timeout_ms", "idempotency_key",
                    "idempotency_ttl_ms", "concurrency_key", "tags", "traceparent", "tracestate"}));
  EnqueueSpec spec;
  YM_RETURN_IF_ERROR(ReqName(obj, "", "queue", &spec.queue));
  YM_RETURN_IF_ERROR(ReqName(obj, "", "kind", &spec.kind));
  YM_RETURN_IF_ERROR(OptName(obj, "", "namespace", &spec.ns));
  std::optional<std::int32_t> priority;
  YM_RETURN_IF_ERROR(OptInt(obj, "", "priority", -kMaxPriority, kMaxPriority, &priority));
  spec.priority = priority.value_or(0);
  YM_RETURN_IF_ERROR(OptInt(obj, "", "delay_ms", 0, kMaxDelayMs, &spec.delay_ms));
  YM_RETURN_IF_ERROR(OptInt(obj, "", "run_at", 0, kMaxRunAtMs, &spec.run_at_ms));
  if (spec.delay_ms && spec.run_at_ms) {
    return FieldError("run_at", "cannot be combined with \"delay_ms\"");
  }
  YM_RETURN_IF_ERROR(OptInt(obj, "", "max_attempts", 1, kMaxMaxAttempts, &spec.max_attempts));
  if (auto b = Find(obj, "backoff")) {
    Backoff backoff;
    YM_RETURN_IF_ERROR(BackoffValue(*b, "backoff", &backoff));
    spec.backoff = backoff;
  }
  YM_RETURN_IF_ERROR(OptInt(obj, "", "lease_ms", kMinLeaseMs, kMaxLeaseMs, &spec.lease_ms));
  YM_RETURN_IF_ERROR(OptTimeout(obj, &spec.timeout_ms));
  if (auto k = Find(obj, "idempotency_key")) {
    YM_RETURN_IF_ERROR(
        BytesValue(*k, "idempotency_key", 1, kMaxIdempotencyKeyBytes, &spec.idempotency_key));
  }
  YM_RETURN_IF_ERROR(
      OptInt(obj, "", "idempotency_ttl_ms", 1, kMaxIdempotencyTtlMs, &spec.idempotency_ttl_ms));
  if (spec.idempotency_ttl_ms && spec.idempotency_key.empty()) {
    return FieldError("idempotency_ttl_ms", "requires \"idempotency_key\"");
  }
  // Keys of schedules' windows are the schedules' own: a producer's could pre-empt a window.
  if (spec.idempotency_key.rfind("schedule:", 0) == 0) {
    return FieldError("idempotency_key",
                      "must not start with \"schedule:\" (reserved for schedules)");
  }
  YM_RETURN_IF_ERROR(OptName(obj, "", "concurrency_key", &spec.concurrency_key));
  if (auto tags = Find(obj, "tags")) {
    if (!tags->IsArray() || tags->Size() > kMaxTags) {
      return FieldError("tags", fmt::format("must be an array of at most {} strings", kMaxTags));
    }
    std::size_t i = 0;
    for (const auto& m : *tags) {
      std::string tag;
      YM_RETURN_IF_ERROR(BytesValue(m.value, fmt::format("tags[{}]", i++), 1, kMaxTagBytes, &tag));
      spec.tags.push_back(std::move(tag));
    }
  }
  // The job's own trace context (docs/api.md, "Trace context"); it wins over the request's
  // headers, which the handler applies to the jobs that give none.
  {
    std::string tp, ts;
    std::optional<std::string_view> tp_in, ts_in;
    if (auto v = Find(obj, "traceparent")) {
      YM_RETURN_IF_ERROR(BytesValue(*v, "traceparent", 0, kTraceparentBytes + 1, &tp));
      tp_in = tp;
    }
    if (auto v = Find(obj, "tracestate")) {
      YM_RETURN_IF_ERROR(BytesValue(*v, "tracestate", 0, 4 * kMaxTracestateBytes, &ts));
      ts_in = ts;
    }
    auto trace = ParseTraceContext(tp_in, ts_in, Code::kValidation, "field \"traceparent\"",
                                   "field \"tracestate\"");
    if (!trace.ok()) return trace.status();
    spec.trace = std::move(trace).value();
  }
  // The payload goes last: it is the one check that costs a serialization.
  if (auto p = FindRaw(obj, "payload")) {
    YM_RETURN_IF_ERROR(PayloadValue(*p, "payload", limits, &spec.payload));
  }
  return spec;
}

Result<FailSpec> FailSpecFromValue(const Value& obj, std::string_view prefix) {
  FailSpec spec;
  std::string path = FieldPath(prefix, "error");
  std::optional<Value> e = Find(obj, "error");
  if (!e) return Required(path);
  if (!e->IsObject()) return FieldError(path, "must be an object");
  YM_RETURN_IF_ERROR(CheckMembers(*e, path, {"type", "message", "retryable"}));
  if (auto t = Find(*e, "type")) {
    YM_RETURN_IF_ERROR(BytesValue(*t, FieldPath(path, "type"), 1, kMaxErrorTypeBytes, &spec.type));
  }
  std::optional<Value> m = Find(*e, "message");
  if (!m) return Required(FieldPath(path, "message"));
  YM_RETURN_IF_ERROR(
      BytesValue(*m, FieldPath(path, "message"), 0, kMaxErrorMessageBytes, &spec.message));
  std::optional<bool> retryable;
  YM_RETURN_IF_ERROR(OptBool(*e, path, "retryable", &retryable));
  spec.retryable = retryable.value_or(true);
  YM_RETURN_IF_ERROR(OptInt(obj, prefix, "retry_in_ms", 0, kMaxRetryInMs, &spec.retry_in_ms));
  return spec;
}

Result<AckItem> AckFromValue(const Value& obj, std::string_view prefix, bool with_id,
                             const CodecLimits& limits) {
  AckItem item;
  if (with_id) {
    YM_RETURN_IF_ERROR(CheckMembers(obj, prefix, {"id", "token", "result"}));
    YM_RETURN_IF_ERROR(JobIdValue(obj, prefix, &item.id));
  } else {
    YM_RETURN_IF_ERROR(CheckMembers(obj, prefix, {"token", "result"}));
  }
  YM_RETURN_IF_ERROR(TokenValue(obj, prefix, &item.token));
  if (auto r = Find(obj, "result")) {
    YM_RETURN_IF_ERROR(PayloadValue(*r, FieldPath(prefix, "result"), limits, &item.result));
  }
  return item;
}

Result<FailItem> FailFromValue(const Value& obj, std::string_view prefix, bool with_id) {
  FailItem item;
  if (with_id) {
    YM_RETURN_IF_ERROR(CheckMembers(obj, prefix, {"id", "token", "error", "retry_in_ms"}));
    YM_RETURN_IF_ERROR(JobIdValue(obj, prefix, &item.id));
  } else {
    YM_RETURN_IF_ERROR(CheckMembers(obj, prefix, {"token", "error", "retry_in_ms"}));
  }
  YM_RETURN_IF_ERROR(TokenValue(obj, prefix, &item.token));
  Result<FailSpec> spec = FailSpecFromValue(obj, prefix);
  if (!spec.ok()) return spec.status();
  item.error = std::move(spec).value();
  return item;
}

void WriteJob(JsonWriter& w, const JobView& view) {
  const JobRecord& j = view.job;
  w.StartObject();
  WriteKey(w, "id");
  WriteStr(w, FormatJobId(j.id));
  WriteKey(w, "namespace");
  WriteStr(w, j.ns);
  WriteKey(w, "queue");
  WriteStr(w, j.queue);
  WriteKey(w, "kind");
  WriteStr(w, j.kind);
  WriteKey(w, "state");
  WriteStr(w, StateName(j.state));
  WriteKey(w, "priority");
  w.Int(j.priority);
  // Shown to anyone who can read jobs, so the configured fields are redacted (obs/redact.h);
  // only the lease reply (RenderLeasedJobs) carries the payload as stored.
  std::string scratch;
  WriteKey(w, "payload");
  WriteRawJson(w, obs::PayloadRedactor().Apply(j.payload, scratch));
  WriteKey(w, "attempts");
  w.Int(j.attempts);
  WriteKey(w, "max_attempts");
  w.Int(j.max_attempts);
  WriteKey(w, "runs");
  w.Int(j.runs);
  WriteKey(w, "backoff");
  WriteBackoff(w, j.backoff);
  WriteKey(w, "lease_ms");
  w.Int64(j.lease_ms);
  WriteKey(w, "timeout_ms");
  WriteMsOrNull(w, j.timeout_ms);
  WriteKey(w, "idempotency_key");
  WriteStrOrNull(w, j.idempotency_key);
  WriteKey(w, "concurrency_key");
  WriteStrOrNull(w, j.concurrency_key);
  WriteKey(w, "tags");
  WriteTags(w, j.tags);
  WriteKey(w, "run_at");
  w.Int64(j.run_at_ms);
  WriteKey(w, "created_at");
  w.Int64(j.created_at_ms);
  WriteKey(w, "updated_at");
  w.Int64(j.updated_at_ms);
  WriteKey(w, "finished_at");
  if (j.finished_at_ms == 0) {
    w.Null();
  } else {
    w.Int64(j.finished_at_ms);
  }
  WriteKey(w, "cancel_requested");
  w.Bool(j.cancel_requested);
  WriteKey(w, "dead_reason");
  WriteStrOrNull(w, j.dead_reason);
  // A job a debounce replaced: cancelled with reason "superseded_by:<id>", named here too.
  if (auto by = flow::SupersededBy(j.dead_reason)) {
    WriteKey(w, "superseded_by");
    WriteStr(w, FormatJobId(*by));
  }
  WriteKey(w, "last_error");
  if (j.errors.empty()) {
    w.Null();
  } else {
    WriteAttemptError(w, j.errors.back());
  }
  WriteKey(w, "errors");
  w.StartArray();
  for (const auto& e : j.errors) WriteAttemptError(w, e);
  w.EndArray();
  WriteKey(w, "result");
  WriteRawJson(w, obs::PayloadRedactor().Apply(j.result, scratch));
  WriteTraceMembers(w, j.trace, j.request_id, /*nulls=*/true);
  // The token stays with the worker that holds the lease: anyone who can read a job must not be
  // able to ack it.
  if (view.lease) {
    WriteKey(w, "lease");
    w.StartObject();
    WriteKey(w, "worker_id");
    WriteStr(w, view.lease->worker_id);
    WriteKey(w, "expires_at");
    w.Int64(view.lease->expires_at_ms);
    WriteKey(w, "deadline_at");
    WriteMsOrNull(w, view.lease->deadline_at_ms);
    w.EndObject();
  }
  WriteKey(w, "progress");
  if (view.progress.empty()) {
    w.Null();
  } else {
    WriteRawJson(w, view.progress);
  }
  WriteKey(w, "blocked_reason");
  WriteStrOrNull(w, view.blocked_reason);
  WriteKey(w, "blocked_until");
  WriteMsOrNull(w, view.blocked_until_ms);
  // A schedule's job carries its schedule and window in its idempotency key (docs/api.md,
  // "Schedules"; net/codec_schedules.h).
  WriteKey(w, "schedule");
  if (auto sk = ParseScheduleKey(j.idempotency_key)) {
    w.StartObject();
    WriteKey(w, "id");
    WriteStr(w, sk->id);
    WriteKey(w, "window");
    if (sk->window) {
      w.Int64(*sk->window);
    } else {
      w.Null();
      WriteKey(w, "trigger");
      w.Bool(true);
    }
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
}

// GET /v1/jobs and GET /v1/dead: the JobFilter parameters, `limit` and `cursor`. `allow_state`
// is false for /v1/dead, whose state is fixed.
Result<ListQuery> ParseListQuery(std::string_view query, bool allow_state) {
  auto params = ParseQueryString(query);
  if (!params.ok()) return params.status();
  ListQuery q;
  q.limit = kDefaultListLimit;
  JobFilter& f = q.filter;
  std::string cursor;
  for (const auto& [name, value] : *params) {
    // An empty value means "not given": `?queue=&state=` is how the docs spell a template.
    if (name == "queue" || name == "namespace" || name == "kind") {
      if (!value.empty() && !IsValidName(value)) {
        return QueryError(name, "must be 1 to 128 characters from [A-Za-z0-9_.:-]");
      }
      (name == "queue" ? f.queue : name == "kind" ? f.kind : f.ns) = value;
    } else if (name == "state" && allow_state) {
      if (value.empty()) continue;
      // One state or a comma-separated set of them.
      f.states.clear();
      std::string_view rest = value;
      for (;;) {
        const std::size_t comma = rest.find(',');
        auto state = ParseState(rest.substr(0, comma));
        if (!state) {
          return QueryError(name,
                            "must be one or more (comma-separated) of scheduled, ready, active, "
                            "succeeded, dead, cancelled");
        }
        f.states.push_back(*state);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (name == "tag") {
      if (value.size() > kMaxTagBytes) {
        return QueryError(name, fmt::format("must be at most {} bytes", kMaxTagBytes));
      }
      f.tag = value;
    } else if (name == "created_after" || name == "created_before" || name == "finished_after" ||
               name == "finished_before") {
      if (value.empty()) continue;
      auto t = ParseEpochMs(name, value);
      if (!t.ok()) return t.status();
      (name == "created_after"    ? f.created_after_ms
       : name == "created_before" ? f.created_before_ms
       : name == "finished_after" ? f.finished_after_ms
                                  : f.finished_before_ms) = *t;
    } else if (name == "limit") {
      if (value.empty()) continue;
      std::uint32_t limit = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || p != value.data() + value.size() || limit < 1 ||
          limit > kMaxListLimit) {
        return QueryError(name, fmt::format("must be an integer between 1 and {}", kMaxListLimit));
      }
      q.limit = limit;
    } else if (name == "cursor") {
      cursor = value;
    } else {
      return QueryError(name, "unknown parameter");
    }
  }
  f.Normalize();
  if (Status v = f.Validate(); !v.ok()) return v;
  // The cursor is checked against the whole filter, which may come after it in the query.
  if (!cursor.empty()) {
    auto after = DecodeJobCursor(allow_state ? JobsCursorScope(q) : DeadCursorScope(q), cursor);
    if (!after.ok()) return after.status();
    q.after_id = *after;
  }
  return q;
}

}  // namespace

Result<EnqueueSpec> ParseEnqueue(std::string_view body, const CodecLimits& limits) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  return EnqueueFromValue(doc, limits);
}

Result<TraceContext> ParseTraceHeaders(const std::vector<std::string>& traceparent,
                                       const std::vector<std::string>& tracestate) {
  if (traceparent.size() > 1) {
    return InvalidRequest("header \"traceparent\": sent more than once");
  }
  std::optional<std::string_view> tp;
  if (!traceparent.empty()) tp = traceparent[0];
  std::string joined;
  std::optional<std::string_view> ts;
  if (!tracestate.empty()) {
    for (const std::string& v : tracestate) {
      if (!joined.empty()) joined += ',';
      joined += v;
    }
    ts = joined;
  }
  return ParseTraceContext(tp, ts, Code::kInvalidRequest, "header \"traceparent\"",
                           "header \"tracestate\"");
}

Result<std::vector<Result<EnqueueSpec>>> ParseEnqueueBatch(std::string_view body,
                                                           const CodecLimits& limits) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(doc, "", {"jobs"}));
  std::optional<Value> jobs = Find(doc, "jobs");
  if (!jobs) return Required("jobs");
  if (!jobs->IsArray() || jobs->Empty() || jobs->Size() > kMaxBatchItems) {
    return FieldError("jobs", fmt::format("must be an array of 1 to {} job specs", kMaxBatchItems));
  }
  std::vector<Result<EnqueueSpec>> out;
  out.reserve(jobs->Size());
  for (const auto& m : *jobs) out.push_back(EnqueueFromValue(m.value, limits));
  return out;
}

Result<LeaseRequest> ParseLease(std::string_view body) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(doc, "", {"queues", "max", "wait_ms", "worker_id", "lease_ms"}));
  LeaseRequest req;
  std::optional<Value> queues = Find(doc, "queues");
  if (!queues) return Required("queues");
  if (!queues->IsArray() || queues->Empty() || queues->Size() > kMaxLeaseQueues) {
    return FieldError("queues",
                      fmt::format("must be an array of 1 to {} queue names", kMaxLeaseQueues));
  }
  std::size_t i = 0;
  for (const auto& m : *queues) {
    std::string name;
    YM_RETURN_IF_ERROR(NameValue(m.value, fmt::format("queues[{}]", i++), &name));
    req.queues.push_back(std::move(name));
  }
  std::optional<std::uint32_t> max;
  YM_RETURN_IF_ERROR(OptInt(doc, "", "max", 1, kMaxLeaseJobs, &max));
  req.max = max.value_or(1);
  std::optional<std::int64_t> wait;
  YM_RETURN_IF_ERROR(OptInt(doc, "", "wait_ms", 0, kMaxWaitMs, &wait));
  req.wait_ms = wait.value_or(0);
  if (auto w = Find(doc, "worker_id")) {
    YM_RETURN_IF_ERROR(BytesValue(*w, "worker_id", 0, kMaxWorkerIdBytes, &req.worker_id));
  }
  YM_RETURN_IF_ERROR(OptInt(doc, "", "lease_ms", kMinLeaseMs, kMaxLeaseMs, &req.lease_ms));
  return req;
}

Result<HeartbeatRequest> ParseHeartbeat(std::string_view body) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(doc, "", {"token", "extend_ms", "progress"}));
  HeartbeatRequest req;
  YM_RETURN_IF_ERROR(TokenValue(doc, "", &req.token));
  std::optional<std::int64_t> extend;
  YM_RETURN_IF_ERROR(OptInt(doc, "", "extend_ms", kMinLeaseMs, kMaxLeaseMs, &extend));
  req.extend_ms = extend.value_or(0);
  if (auto p = Find(doc, "progress")) {
    auto percent_ok = [](const Value& v) {
      std::optional<double> d = v.AsDouble();
      return v.IsNumber() && d && *d >= 0.0 && *d <= 100.0;
    };
    if (p->IsNumber()) {
      if (!percent_ok(*p)) return FieldError("progress", "a number must be between 0 and 100");
      req.progress = fmt::format("{{\"percent\":{}}}", p->Raw());
    } else if (p->IsObject()) {
      if (auto percent = Find(*p, "percent"); percent && !percent_ok(*percent)) {
        return FieldError("progress.percent", "must be a number between 0 and 100");
      }
      req.progress = std::string(p->Raw());
    } else {
      return FieldError("progress", "must be a number 0..100 or an object");
    }
    if (req.progress->size() > kMaxProgressBytes) {
      return Status(Code::kPayloadTooLarge,
                    fmt::format("field \"progress\": {} bytes without whitespace, the limit is {} "
                                "bytes",
                                req.progress->size(), kMaxProgressBytes));
    }
  }
  return req;
}

Result<CancelWatchRequest> ParseCancelWatch(std::string_view body) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(doc, "", {"worker_id", "known", "wait_ms"}));
  CancelWatchRequest req;
  std::optional<Value> w = Find(doc, "worker_id");
  if (!w) return Required("worker_id");
  YM_RETURN_IF_ERROR(BytesValue(*w, "worker_id", 1, kMaxWorkerIdBytes, &req.worker_id));
  if (auto known = Find(doc, "known")) {
    if (!known->IsArray() || known->Size() > kMaxBatchItems) {
      return FieldError("known",
                        fmt::format("must be an array of at most {} job ids", kMaxBatchItems));
    }
    std::size_t i = 0;
    for (const auto& m : *known) {
      std::optional<JobId> id;
      if (m.value.IsString()) id = ParseJobId(m.value.GetString());
      if (!id) {
        return FieldError(fmt::format("known[{}]", i),
                          "must be a job id (a decimal string such as \"42\")");
      }
      req.known.push_back(*id);
      ++i;
    }
  }
  std::optional<std::int64_t> wait;
  YM_RETURN_IF_ERROR(OptInt(doc, "", "wait_ms", 0, kMaxWaitMs, &wait));
  req.wait_ms = wait.value_or(0);
  return req;
}

Result<AckItem> ParseAck(JobId id, std::string_view body, const CodecLimits& limits) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  Result<AckItem> item = AckFromValue(doc, "", /*with_id=*/false, limits);
  if (item.ok()) item->id = id;
  return item;
}

Result<FailItem> ParseFail(JobId id, std::string_view body) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  Result<FailItem> item = FailFromValue(doc, "", /*with_id=*/false);
  if (item.ok()) item->id = id;
  return item;
}

Result<CompleteBatch> ParseCompleteBatch(std::string_view body, const CodecLimits& limits) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(doc, "", {"acks", "fails"}));
  std::optional<Value> acks = Find(doc, "acks");
  std::optional<Value> fails = Find(doc, "fails");
  if (acks && !acks->IsArray()) return FieldError("acks", "must be an array");
  if (fails && !fails->IsArray()) return FieldError("fails", "must be an array");
  std::size_t total = (acks ? acks->Size() : 0) + (fails ? fails->Size() : 0);
  if (total == 0 || total > kMaxBatchItems) {
    return FieldError(
        acks ? "acks" : "fails",
        fmt::format("acks and fails together must hold 1 to {} items", kMaxBatchItems));
  }
  CompleteBatch out;
  if (acks) {
    std::size_t i = 0;
    for (const auto& m : *acks) {
      const Value& item = m.value;
      std::string prefix = fmt::format("acks[{}]", i++);
      if (!item.IsObject()) {
        out.acks.push_back(FieldError(prefix, "must be an object"));
      } else {
        out.acks.push_back(AckFromValue(item, prefix, /*with_id=*/true, limits));
      }
    }
  }
  if (fails) {
    std::size_t i = 0;
    for (const auto& m : *fails) {
      const Value& item = m.value;
      std::string prefix = fmt::format("fails[{}]", i++);
      if (!item.IsObject()) {
        out.fails.push_back(FieldError(prefix, "must be an object"));
      } else {
        out.fails.push_back(FailFromValue(item, prefix, /*with_id=*/true));
      }
    }
  }
  return out;
}

Result<DeadReplayRequest> ParseDeadReplay(std::string_view body) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(doc, "", {"queue", "ids", "limit"}));
  DeadReplayRequest req;
  YM_RETURN_IF_ERROR(OptName(doc, "", "queue", &req.queue));
  std::optional<std::uint32_t> limit;
  YM_RETURN_IF_ERROR(OptInt(doc, "", "limit", 1, kMaxReplayLimit, &limit));
  req.limit = limit.value_or(kDefaultReplayLimit);
  if (auto ids = Find(doc, "ids")) {
    if (!ids->IsArray() || ids->Empty() || ids->Size() > kMaxBatchItems) {
      return FieldError("ids", fmt::format("must be an array of 1 to {} job ids", kMaxBatchItems));
    }
    if (!req.queue.empty() || limit) {
      return FieldError("ids", "cannot be combined with \"queue\" or \"limit\"");
    }
    std::size_t i = 0;
    for (const auto& m : *ids) {
      const Value& v = m.value;
      std::optional<JobId> id;
      if (v.IsString()) id = ParseJobId(v.GetString());
      if (!id) {
        return FieldError(fmt::format("ids[{}]", i),
                          "must be a job id (a decimal string such as \"42\")");
      }
      req.ids.push_back(*id);
      ++i;
    }
  }
  return req;
}

namespace {

// `state` in a bulk body: "dead", "dead,cancelled" (as in the query string) or ["dead", ...].
Status BulkStatesValue(const Value& v, std::vector<JobState>* out) {
  constexpr std::string_view kRule =
      "must be a state or a list of states (comma-separated or an array) from scheduled, ready, "
      "active, succeeded, dead, cancelled";
  auto add = [&](std::string_view name) {
    auto state = ParseState(name);
    if (!state) return false;
    out->push_back(*state);
    return true;
  };
  if (v.IsString()) {
    std::string_view rest = v.GetString();
    for (;;) {
      const std::size_t comma = rest.find(',');
      if (!add(rest.substr(0, comma))) return FieldError("state", kRule);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return Status::Ok();
  }
  if (v.IsArray() && !v.Empty()) {
    for (const auto& m : v) {
      if (!m.value.IsString() || !add(m.value.GetString())) return FieldError("state", kRule);
    }
    return Status::Ok();
  }
  return FieldError("state", kRule);
}

}  // namespace

Result<BulkRequest> ParseBulk(BulkAction action, std::string_view body) {
  auto parsed = ParseDocument(body.empty() ? std::string_view("{}") : body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(
      CheckMembers(doc, "",
                   {"namespace", "queue", "kind", "state", "tag", "created_after", "created_before",
                    "finished_after", "finished_before", "all", "limit", "cursor", "dry_run"}));
  BulkRequest req;
  req.action = action;
  JobFilter& f = req.filter;
  YM_RETURN_IF_ERROR(OptName(doc, "", "namespace", &f.ns));
  YM_RETURN_IF_ERROR(OptName(doc, "", "queue", &f.queue));
  YM_RETURN_IF_ERROR(OptName(doc, "", "kind", &f.kind));
  if (auto v = Find(doc, "state")) YM_RETURN_IF_ERROR(BulkStatesValue(*v, &f.states));
  if (auto v = Find(doc, "tag")) {
    YM_RETURN_IF_ERROR(BytesValue(*v, "tag", 1, kMaxTagBytes, &f.tag));
  }
  YM_RETURN_IF_ERROR(OptInt(doc, "", "created_after", 0, kMaxRunAtMs, &f.created_after_ms));
  YM_RETURN_IF_ERROR(OptInt(doc, "", "created_before", 0, kMaxRunAtMs, &f.created_before_ms));
  YM_RETURN_IF_ERROR(OptInt(doc, "", "finished_after", 0, kMaxRunAtMs, &f.finished_after_ms));
  YM_RETURN_IF_ERROR(OptInt(doc, "", "finished_before", 0, kMaxRunAtMs, &f.finished_before_ms));
  std::optional<bool> all;
  YM_RETURN_IF_ERROR(OptBool(doc, "", "all", &all));
  std::optional<bool> dry_run;
  YM_RETURN_IF_ERROR(OptBool(doc, "", "dry_run", &dry_run));
  req.dry_run = dry_run.value_or(false);
  std::optional<std::uint32_t> limit;
  YM_RETURN_IF_ERROR(OptInt(doc, "", "limit", 1, kMaxBulkLimit, &limit));
  req.limit = limit.value_or(kDefaultBulkLimit);
  f.Normalize();
  if (all.value_or(false)) {
    if (!f.empty()) return FieldError("all", "cannot be combined with a filter");
  } else if (f.empty()) {
    return Validation(fmt::format(
        "the filter is empty: give at least one of namespace, queue, kind, state, tag, "
        "created_after, created_before, finished_after, finished_before, or \"all\": true to "
        "{} every job it applies to",
        BulkActionName(action)));
  }
  auto narrowed = NarrowBulkFilter(action, std::move(req.filter));
  if (!narrowed.ok()) return narrowed.status();
  req.filter = std::move(narrowed).value();
  if (auto c = Find(doc, "cursor")) {
    if (!c->IsString()) return FieldError("cursor", "must be a string (a next_cursor)");
    auto position = DecodeCursor(BulkCursorScope(action, req.filter), c->GetString());
    if (!position.ok() || position->size() != 8) {
      return InvalidRequest(
          "field \"cursor\": not a cursor of this operation and filter; send back the "
          "next_cursor of the previous reply, unchanged, with the same filter");
    }
    JobId after = 0;
    for (unsigned char ch : *position) after = (after << 8) | ch;
    req.after_id = after;
  }
  return req;
}

std::string BulkCursorScope(BulkAction action, const JobFilter& filter) {
  std::string scope = "bulk-";
  scope += BulkActionName(action);
  scope += '\n';
  scope += filter.Scope();
  return scope;
}

std::string EncodeBulkCursor(BulkAction action, const JobFilter& filter, JobId after_id) {
  std::string position(8, '\0');
  for (int i = 0; i < 8; ++i) position[i] = static_cast<char>(after_id >> (56 - 8 * i));
  return EncodeCursor(BulkCursorScope(action, filter), position);
}

Result<std::int64_t> ParseGetJobQuery(std::string_view query) {
  auto params = ParseQueryString(query);
  if (!params.ok()) return params.status();
  std::int64_t wait_ms = 0;
  for (const auto& [name, value] : *params) {
    if (name != "wait_ms") return QueryError(name, "unknown parameter");
    if (value.empty()) continue;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), wait_ms);
    if (ec != std::errc() || p != value.data() + value.size() || wait_ms < 0 ||
        wait_ms > kMaxWaitMs) {
      return QueryError(name, fmt::format("must be an integer between 0 and {}", kMaxWaitMs));
    }
  }
  return wait_ms;
}

Result<ListQuery> ParseListJobsQuery(std::string_view query) {
  return ParseListQuery(query, /*allow_state=*/true);
}

Result<ListQuery> ParseListDeadQuery(std::string_view query) {
  Result<ListQuery> q = ParseListQuery(query, /*allow_state=*/false);
  if (q.ok()) q->filter.states = {JobState::kDead};
  return q;
}

std::string JobsCursorScope(const ListQuery& query) {
  return JobListScope("jobs", query.filter.Scope());
}

std::string DeadCursorScope(const ListQuery& query) {
  // Computed before the state is fixed to dead and after: the same scope either way.
  JobFilter f = query.filter;
  f.states.clear();
  return JobListScope("dead", f.Scope());
}

std::string RenderJob(const JobView& view) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteJob(w, view);
  return Take(buf);
}

std::string RenderJobPage(const JobPage& page, std::string_view cursor_scope,
                          std::size_t max_bytes) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  const std::size_t n = WriteCappedItems(w, buf, page.items, max_bytes, WriteJob);
  const JobId next_after_id = n < page.items.size() ? page.items[n - 1].job.id : page.next_after_id;
  WriteKey(w, "next_cursor");
  if (next_after_id == 0) {
    w.Null();
  } else {
    WriteStr(w, EncodeJobCursor(cursor_scope, next_after_id));
  }
  w.EndObject();
  return Take(buf);
}

namespace {

void WriteOutcome(JsonWriter& w, const EnqueueOutcome& o) {
  w.StartObject();
  WriteKey(w, "id");
  WriteStr(w, FormatJobId(o.id));
  WriteKey(w, "state");
  WriteStr(w, StateName(o.state));
  if (o.duplicate) {
    WriteKey(w, "duplicate");
    w.Bool(true);
  }
  // Key modes (docs/flow-control.md, "Singleton and debounce").
  if (o.skipped) {
    WriteKey(w, "skipped");
    w.Bool(true);
  }
  if (!o.superseded.empty()) {
    WriteKey(w, "superseded");
    w.StartArray();
    for (JobId id : o.superseded) WriteStr(w, FormatJobId(id));
    w.EndArray();
  }
  w.EndObject();
}

void WriteStatusList(JsonWriter& w, const std::vector<Status>& items) {
  w.StartArray();
  for (const auto& s : items) {
    w.StartObject();
    if (s.ok()) {
      WriteKey(w, "ok");
      w.Bool(true);
    } else {
      WriteKey(w, "error");
      WriteErrorObject(w, s);
    }
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

std::string RenderEnqueueOutcome(const EnqueueOutcome& outcome) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteOutcome(w, outcome);
  return Take(buf);
}

std::string RenderEnqueueResults(const std::vector<Result<EnqueueOutcome>>& results) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "results");
  w.StartArray();
  for (const auto& r : results) {
    if (r.ok()) {
      WriteOutcome(w, *r);
    } else {
      w.StartObject();
      WriteKey(w, "error");
      WriteErrorObject(w, r.status());
      w.EndObject();
    }
  }
  w.EndArray();
  w.EndObject();
  return Take(buf);
}

std::string RenderLeasedJobs(const std::vector<LeasedJob>& jobs) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "jobs");
  w.StartArray();
  for (const auto& j : jobs) {
    w.StartObject();
    WriteKey(w, "id");
    WriteStr(w, FormatJobId(j.id));
    WriteKey(w, "namespace");
    WriteStr(w, j.ns);
    WriteKey(w, "queue");
    WriteStr(w, j.queue);
    WriteKey(w, "kind");
    WriteStr(w, j.kind);
    WriteKey(w, "payload");
    WriteRawJson(w, j.payload);
    WriteKey(w, "attempt");
    w.Int(j.attempt);
    WriteKey(w, "max_attempts");
    w.Int(j.max_attempts);
    WriteKey(w, "priority");
    w.Int(j.priority);
    WriteKey(w, "created_at");
    w.Int64(j.created_at_ms);
    WriteKey(w, "tags");
    WriteTags(w, j.tags);
    WriteKey(w, "timeout_ms");
    WriteMsOrNull(w, j.timeout_ms);
    // Only when the job has them: most jobs have none, and a lease reply of many jobs should
    // not carry a null member per job for it (docs/api.md, "Trace context").
    WriteTraceMembers(w, j.trace, j.request_id, /*nulls=*/false);
    WriteKey(w, "lease");
    w.StartObject();
    WriteKey(w, "token");
    WriteStr(w, FormatToken(j.lease.token));
    WriteKey(w, "expires_at");
    w.Int64(j.lease.expires_at_ms);
    // The attempt's deadline: the worker should stop the handler by then (the broker fails the
    // attempt with type "timeout" at that moment whatever the worker does).
    WriteKey(w, "deadline_at");
    WriteMsOrNull(w, j.lease.deadline_at_ms);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Take(buf);
}

std::string RenderHeartbeat(const HeartbeatOutcome& outcome) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "expires_at");
  w.Int64(outcome.expires_at_ms);
  WriteKey(w, "cancel_requested");
  w.Bool(outcome.cancel_requested);
  w.EndObject();
  return Take(buf);
}

std::string RenderCancelWatch(const std::vector<JobId>& cancel_requested) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "cancel_requested");
  w.StartArray();
  for (JobId id : cancel_requested) WriteStr(w, FormatJobId(id));
  w.EndArray();
  w.EndObject();
  return Take(buf);
}

std::string RenderIdState(JobId id, const JobState* state) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "id");
  WriteStr(w, FormatJobId(id));
  WriteKey(w, "state");
  if (state == nullptr) {
    w.Null();
  } else {
    WriteStr(w, StateName(*state));
  }
  w.EndObject();
  return Take(buf);
}

std::string RenderCompleteResults(const std::vector<Status>& acks,
                                  const std::vector<Status>& fails) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "acks");
  WriteStatusList(w, acks);
  WriteKey(w, "fails");
  WriteStatusList(w, fails);
  w.EndObject();
  return Take(buf);
}

std::string RenderReplayed(std::uint64_t replayed) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "replayed");
  w.Uint64(replayed);
  w.EndObject();
  return Take(buf);
}

std::string RenderBulkOutcome(const BulkRequest& request, const BulkOutcome& outcome) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "matched");
  w.Uint64(outcome.matched);
  const std::string_view done = BulkDoneName(request.action);
  WriteKey(w, done);
  w.Uint64(outcome.applied);
  if (request.action == BulkAction::kCancel) {
    WriteKey(w, "cancel_requested");
    w.Uint64(outcome.cancel_requested);
  }
  WriteKey(w, "skipped");
  w.Uint64(outcome.skipped);
  if (request.dry_run) {
    WriteKey(w, "dry_run");
    w.Bool(true);
  }
  WriteKey(w, "next_cursor");
  if (outcome.next_after_id) {
    const std::string cursor =
        EncodeBulkCursor(request.action, request.filter, *outcome.next_after_id);
    w.String(cursor.data(), static_cast<rapidjson::SizeType>(cursor.size()));
  } else {
    w.Null();
  }
  w.EndObject();
  return Take(buf);
}

}  // namespace ym::net
