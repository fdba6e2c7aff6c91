#include "net/codec.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <optional>

#include "common/json.h"
#include "core/flow/weighted_rotation.h"
#include "net/cursor.h"

namespace ym::net {
namespace {

using json::Value;
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// ---- parsing helpers ----

std::string FieldPath(std::string_view prefix, std::string_view name) {
  if (prefix.empty()) return std::string(name);
  return fmt::format("{}.{}", prefix, name);
}

Status FieldError(std::string_view path, std::string_view what) {
  return Validation(fmt::format("field \"{}\": {}", path, what));
}

// Bodies are read with json::Document (common/json.h), not RapidJSON's DOM: it keeps numbers as
// their text, refuses lone surrogates and any byte after the value, and bounds the nesting.
Result<json::Document> ParseDocument(std::string_view body) {
  if (body.empty()) return InvalidJson("the request body is empty; a JSON object is required");
  json::ParseOptions options;
  options.max_depth = kMaxJsonDepth;
  Result<json::Document> doc = json::Document::Parse(body, options);
  if (!doc.ok()) return doc.status();
  if (!doc->root().IsObject()) return Validation("the request body must be a JSON object");
  return doc;
}

// Rejects unknown and repeated members of `obj`: a typo must not silently change behaviour.
Status CheckMembers(const Value& obj, std::string_view prefix,
                    std::initializer_list<std::string_view> allowed) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    std::string_view key = (*it).name.GetString();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return FieldError(FieldPath(prefix, key), "unknown field");
    }
    for (auto prev = obj.begin(); prev != it; ++prev) {
      if ((*prev).name.GetString() == key) {
        return FieldError(FieldPath(prefix, key), "duplicate field");
      }
    }
  }
  return Status::Ok();
}

// The member `name` of `obj` including an explicit null, or nullopt when absent.
std::optional<Value> FindRaw(const Value& obj, std::string_view name) {
  for (const auto& m : obj) {
    if (m.name.GetString() == name) return m.value;
  }
  return std::nullopt;
}

// The member `name` of `obj`, or nullopt when absent or null.
std::optional<Value> Find(const Value& obj, std::string_view name) {
  std::optional<Value> v = FindRaw(obj, name);
  if (v && v->IsNull()) return std::nullopt;
  return v;
}

Status Required(std::string_view path) { return FieldError(path, "is required"); }

Status IntValue(const Value& v, std::string_view path, std::int64_t lo, std::int64_t hi,
                std::int64_t* out) {
  std::optional<std::int64_t> n = v.AsInt64();
  if (!n || *n < lo || *n > hi) {
    return FieldError(path, fmt::format("must be an integer between {} and {}", lo, hi));
  }
  *out = *n;
  return Status::Ok();
}

template <typename T>
Status OptInt(const Value& obj, std::string_view prefix, std::string_view name, std::int64_t lo,
              std::int64_t hi, std::optional<T>* out) {
  std::optional<Value> v = Find(obj, name);
  if (!v) return Status::Ok();
  std::int64_t n = 0;
  YM_RETURN_IF_ERROR(IntValue(*v, FieldPath(prefix, name), lo, hi, &n));
  *out = static_cast<T>(n);
  return Status::Ok();
}

// `timeout_ms` of a job spec or a queue: 0 (none) or 1..kMaxTimeoutMs.
Status OptTimeout(const Value& obj, std::optional<std::int64_t>* out) {
  std::optional<Value> v = Find(obj, "timeout_ms");
  if (!v) return Status::Ok();
  std::optional<std::int64_t> n = v->AsInt64();
  if (!n || *n < 0 || *n > kMaxTimeoutMs) {
    return FieldError("timeout_ms", fmt::format("must be an integer number of milliseconds "
                                                "between 1 and {}, or 0 for no timeout",
                                                kMaxTimeoutMs));
  }
  *out = *n;
  return Status::Ok();
}

Status NameValue(const Value& v, std::string_view path, std::string* out) {
  if (!v.IsString() || !IsValidName(v.GetString())) {
    return FieldError(path, "must be a string of 1 to 128 characters from [A-Za-z0-9_.:-]");
  }
  out->assign(v.GetString());
  return Status::Ok();
}

Status OptName(const Value& obj, std::string_view prefix, std::string_view name, std::string* out) {
  std::optional<Value> v = Find(obj, name);
  if (!v) return Status::Ok();
  return NameValue(*v, FieldPath(prefix, name), out);
}

Status ReqName(const Value& obj, std::string_view prefix, std::string_view name, std::string* out) {
  std::optional<Value> v = Find(obj, name);
  if (!v) return Required(FieldPath(prefix, name));
  return NameValue(*v, FieldPath(prefix, name), out);
}

Status BytesValue(const Value& v, std::string_view path, std::size_t min, std::size_t max,
                  std::string* out) {
  if (!v.IsString() || v.GetString().size() < min || v.GetString().size() > max) {
    return FieldError(path, fmt::format("must be a string of {} to {} bytes", min, max));
  }
  out->assign(v.GetString());
  return Status::Ok();
}

Status OptBool(const Value& obj, std::string_view prefix, std::string_view name,
               std::optional<bool>* out) {
  std::optional<Value> v = Find(obj, name);
  if (!v) return Status::Ok();
  if (!v->IsBool()) return FieldError(FieldPath(prefix, name), "must be a boolean");
  *out = v->GetBool();
  return Status::Ok();
}

Status TokenValue(const Value& obj, std::string_view prefix, std::uint64_t* out) {
  std::string path = FieldPath(prefix, "token");
  std::optional<Value> v = Find(obj, "token");
  if (!v) return Required(path);
  std::optional<std::uint64_t> token;
  if (v->IsString()) token = ParseToken(v->GetString());
  if (!token) return FieldError(path, "must be a lease token of 16 hex digits");
  *out = *token;
  return Status::Ok();
}

Status JobIdValue(const Value& obj, std::string_view prefix, JobId* out) {
  std::string path = FieldPath(prefix, "id");
  std::optional<Value> v = Find(obj, "id");
  if (!v) return Required(path);
  std::optional<JobId> id;
  if (v->IsString()) id = ParseJobId(v->GetString());
  if (!id) return FieldError(path, "must be a job id (a decimal string such as \"42\")");
  *out = *id;
  return Status::Ok();
}

// Payloads and ack results are kept as their validated JSON text, exactly as sent minus
// insignificant whitespace: numbers, escapes and Unicode are never re-encoded (docs/api.md).
Status PayloadValue(const Value& v, std::string_view path, const CodecLimits& limits,
                    std::string* out) {
  std::string_view text = v.Raw();
  if (text.size() > limits.max_payload_bytes) {
    return Status(Code::kPayloadTooLarge,
                  fmt::format("field \"{}\": {} bytes without whitespace, the limit is {} bytes",
                              path, text.size(), limits.max_payload_bytes));
  }
  out->assign(text);
  return Status::Ok();
}

Status BackoffValue(const Value& v, std::string_view path, Backoff* out) {
  if (!v.IsObject()) return FieldError(path, "must be an object");
  YM_RETURN_IF_ERROR(CheckMembers(v, path, {"initial_ms", "max_ms", "multiplier"}));
  Backoff b;
  std::optional<std::int64_t> initial, max;
  YM_RETURN_IF_ERROR(OptInt(v, path, "max_ms", 1, kMaxBackoffMs, &max));
  if (max) b.max_ms = *max;
  YM_RETURN_IF_ERROR(OptInt(v, path, "initial_ms", 1, kMaxBackoffMs, &initial));
  if (initial) b.initial_ms = *initial;
  if (b.initial_ms > b.max_ms) {
    return FieldError(FieldPath(path, "initial_ms"),
                      fmt::format("must not exceed max_ms ({})", b.max_ms));
  }
  if (auto m = Find(v, "multiplier")) {
    std::optional<double> d = m->AsDouble();
    if (!d || *d < 1.0 || *d > kMaxBackoffMultiplier) {
      return FieldError(FieldPath(path, "multiplier"), "must be a number between 1 and 100");
    }
    b.multiplier = *d;
  }
  *out = b;
  return Status::Ok();
}

Status RetentionValue(const Value& v, std::string_view path, Retention* out) {
  if (!v.IsObject()) return FieldError(path, "must be an object");
  YM_RETURN_IF_ERROR(CheckMembers(
      v, path,
      {"succeeded_ms", "dead_ms", "cancelled_ms", "max_succeeded", "max_dead", "max_cancelled"}));
  Retention r;
  std::optional<std::int64_t> succeeded, dead, cancelled, max_succeeded, max_dead, max_cancelled;
  YM_RETURN_IF_ERROR(OptInt(v, path, "succeeded_ms", 0, kMaxRetentionMs, &succeeded));
  YM_RETURN_IF_ERROR(OptInt(v, path, "dead_ms", 0, kMaxRetentionMs, &dead));
  YM_RETURN_IF_ERROR(OptInt(v, path, "cancelled_ms", 0, kMaxRetentionMs, &cancelled));
  YM_RETURN_IF_ERROR(OptInt(v, path, "max_succeeded", 0, kMaxRetentionCap, &max_succeeded));
  YM_RETURN_IF_ERROR(OptInt(v, path, "max_dead", 0, kMaxRetentionCap, &max_dead));
  YM_RETURN_IF_ERROR(OptInt(v, path, "max_cancelled", 0, kMaxRetentionCap, &max_cancelled));
  if (succeeded) r.succeeded_ms = *succeeded;
  if (dead) r.dead_ms = *dead;
  if (cancelled) r.cancelled_ms = *cancelled;
  if (max_succeeded) r.max_succeeded = *max_succeeded;
  if (max_dead) r.max_dead = *max_dead;
  if (max_cancelled) r.max_cancelled = *max_cancelled;
  *out = r;
  return Status::Ok();
}

Result<EnqueueSpec> EnqueueFromValue(const Value& obj, const CodecLimits& limits) {
  if (!obj.IsObject()) return Validation("a job spec must be a JSON object");
  YM_RETURN_IF_ERROR(
      CheckMembers(obj, "",
                   {"queue", "kind", "payload", "namespace", "priority", "delay_ms", "run_at",
                    "max_attempts", "backoff", "lease_ms", "timeout_ms", "idempotency_key",
                    "idempotency_ttl_ms", "concurrency_key", "tags"}));
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

// ---- rendering helpers ----

void WriteStr(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteKey(JsonWriter& w, std::string_view s) {
  w.Key(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void WriteStrOrNull(JsonWriter& w, std::string_view s) {
  if (s.empty()) {
    w.Null();
  } else {
    WriteStr(w, s);
  }
}

// A duration or time where 0 means "none" (timeout_ms, deadline_at): null then.
void WriteMsOrNull(JsonWriter& w, std::int64_t ms) {
  if (ms == 0) {
    w.Null();
  } else {
    w.Int64(ms);
  }
}

// Payloads and results are JSON text validated and compacted at enqueue/ack: embed them as is.
void WriteRawJson(JsonWriter& w, std::string_view json) {
  if (json.empty()) {
    w.Null();
  } else {
    w.RawValue(json.data(), json.size(), rapidjson::kObjectType);
  }
}

void WriteBackoff(JsonWriter& w, const Backoff& b) {
  w.StartObject();
  WriteKey(w, "initial_ms");
  w.Int64(b.initial_ms);
  WriteKey(w, "max_ms");
  w.Int64(b.max_ms);
  WriteKey(w, "multiplier");
  w.Double(b.multiplier);
  w.EndObject();
}

void WriteTags(JsonWriter& w, const std::vector<std::string>& tags) {
  w.StartArray();
  for (const auto& t : tags) WriteStr(w, t);
  w.EndArray();
}

void WriteAttemptError(JsonWriter& w, const AttemptError& e) {
  w.StartObject();
  WriteKey(w, "attempt");
  w.Int(e.attempt);
  WriteKey(w, "type");
  WriteStr(w, e.type);
  WriteKey(w, "message");
  WriteStr(w, e.message);
  WriteKey(w, "at");
  w.Int64(e.at_ms);
  w.EndObject();
}

void WriteErrorObject(JsonWriter& w, const Status& status) {
  w.StartObject();
  WriteKey(w, "code");
  WriteStr(w, CodeName(status.code()));
  WriteKey(w, "message");
  WriteStr(w, status.message());
  if (status.retry_after_ms() >= 0) {
    WriteKey(w, "retry_after_ms");
    w.Int64(status.retry_after_ms());
  }
  // A singleton refusal names the job that holds the key (core/flow/key_groups.h).
  if (auto holder = flow::SingletonHolder(status)) {
    WriteKey(w, "job_id");
    WriteStr(w, FormatJobId(*holder));
  }
  w.EndObject();
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
  WriteKey(w, "payload");
  WriteRawJson(w, j.payload);
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
  WriteRawJson(w, j.result);
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
  w.EndObject();
}

void WriteQueue(JsonWriter& w, const QueueInfo& info) {
  const QueueConfig& c = info.config;
  w.StartObject();
  WriteKey(w, "name");
  WriteStr(w, c.name);
  WriteKey(w, "paused");
  w.Bool(c.paused);
  WriteKey(w, "max_attempts");
  w.Int(c.max_attempts);
  WriteKey(w, "lease_ms");
  w.Int64(c.lease_ms);
  WriteKey(w, "timeout_ms");
  WriteMsOrNull(w, c.timeout_ms);
  WriteKey(w, "weight");
  w.Int64(c.weight);
  WriteKey(w, "backoff");
  WriteBackoff(w, c.backoff);
  WriteKey(w, "retention");
  w.StartObject();
  WriteKey(w, "succeeded_ms");
  w.Int64(c.retention.succeeded_ms);
  WriteKey(w, "dead_ms");
  w.Int64(c.retention.dead_ms);
  WriteKey(w, "cancelled_ms");
  w.Int64(c.retention.cancelled_ms);
  WriteKey(w, "max_succeeded");
  w.Int64(c.retention.max_succeeded);
  WriteKey(w, "max_dead");
  w.Int64(c.retention.max_dead);
  WriteKey(w, "max_cancelled");
  w.Int64(c.retention.max_cancelled);
  w.EndObject();
  WriteKey(w, "counts");
  w.StartObject();
  // Every state is always present so that clients need no defaulting.
  for (int s = 0; s <= 5; ++s) {
    std::string_view name = StateName(static_cast<JobState>(s));
    auto it = info.counts.find(std::string(name));
    WriteKey(w, name);
    w.Uint64(it == info.counts.end() ? 0 : it->second);
  }
  w.EndObject();
  WriteKey(w, "blocked");
  w.StartObject();
  // Every reason is always present (0 included), as the counts are.
  for (const char* reason : kBlockedReasons) {
    auto it = info.blocked.find(reason);
    WriteKey(w, reason);
    w.Uint64(it == info.blocked.end() ? 0 : it->second);
  }
  w.EndObject();
  WriteKey(w, "oldest_ready_age_ms");
  w.Int64(info.oldest_ready_age_ms);
  WriteKey(w, "waiting_workers");
  w.Uint(info.waiting_workers);
  w.EndObject();
}

std::string Take(const rapidjson::StringBuffer& buf) {
  return std::string(buf.GetString(), buf.GetSize());
}

Status QueryError(std::string_view name, std::string_view what) {
  return InvalidRequest(fmt::format("query parameter \"{}\": {}", name, what));
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::int64_t> ParseEpochMs(std::string_view name, std::string_view value) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size() || v < 0) {
    return QueryError(name, "must be a time in epoch milliseconds (an integer >= 0)");
  }
  return v;
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

// ---- request bodies ----

Result<EnqueueSpec> ParseEnqueue(std::string_view body, const CodecLimits& limits) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  return EnqueueFromValue(doc, limits);
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

Result<QueueConfigPatch> ParseQueuePatch(std::string name, std::string_view body) {
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(
      doc, "",
      {"paused", "max_attempts", "lease_ms", "timeout_ms", "backoff", "retention", "weight"}));
  QueueConfigPatch patch;
  patch.name = std::move(name);
  YM_RETURN_IF_ERROR(OptBool(doc, "", "paused", &patch.paused));
  YM_RETURN_IF_ERROR(OptInt(doc, "", "max_attempts", 1, kMaxMaxAttempts, &patch.max_attempts));
  YM_RETURN_IF_ERROR(OptInt(doc, "", "lease_ms", kMinLeaseMs, kMaxLeaseMs, &patch.lease_ms));
  YM_RETURN_IF_ERROR(OptTimeout(doc, &patch.timeout_ms));
  YM_RETURN_IF_ERROR(OptInt(doc, "", "weight", flow::WeightedRotation::kMinWeight,
                            flow::WeightedRotation::kMaxWeight, &patch.weight));
  if (auto b = Find(doc, "backoff")) {
    Backoff backoff;
    YM_RETURN_IF_ERROR(BackoffValue(*b, "backoff", &backoff));
    patch.backoff = backoff;
  }
  if (auto r = Find(doc, "retention")) {
    Retention retention;
    YM_RETURN_IF_ERROR(RetentionValue(*r, "retention", &retention));
    patch.retention = retention;
  }
  return patch;
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

Status ParseEmptyObject(std::string_view body) {
  if (body.empty()) return Status::Ok();
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  return CheckMembers(doc, "", {});
}

// ---- query strings and cursors ----

Result<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      int hi = i + 2 < text.size() ? HexDigit(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? HexDigit(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        return InvalidRequest(fmt::format("bad percent escape at offset {}", i));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> ParseQueryString(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    std::size_t eq = part.find('=');
    auto name = PercentDecode(part.substr(0, eq), true);
    if (!name.ok()) return name.status();
    auto value = PercentDecode(eq == std::string_view::npos ? "" : part.substr(eq + 1), true);
    if (!value.ok()) return value.status();
    // Decoded names and values may end up in error messages and filters: UTF-8 only, so that
    // nothing the server sends back is invalid UTF-8.
    if (!json::IsValidUtf8(*name) || !json::IsValidUtf8(*value)) {
      return InvalidRequest("the query string does not decode to valid UTF-8");
    }
    for (const auto& [seen, unused] : out) {
      if (seen == *name) return QueryError(seen, "given more than once");
    }
    out.emplace_back(std::move(name).value(), std::move(value).value());
  }
  return out;
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

namespace {

constexpr std::string_view kLimitsCursorScope = "limits";
constexpr std::string_view kNamespacesCursorScope = "namespaces";

// GET /v1/queues and GET /v1/limits: limit and cursor; `limits` picks the cursor scope.
// `scope`: the cursor scope of the listing, empty for queues.
Result<QueueListQuery> ParseNamePageQuery(std::string_view query, std::string_view scope) {
  auto params = ParseQueryString(query);
  if (!params.ok()) return params.status();
  QueueListQuery q;
  q.limit = kDefaultListLimit;
  for (const auto& [name, value] : *params) {
    if (name == "limit") {
      if (value.empty()) continue;
      std::uint32_t limit = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
      if (ec != std::errc() || p != value.data() + value.size() || limit < 1 ||
          limit > kMaxListLimit) {
        return QueryError(name, fmt::format("must be an integer between 1 and {}", kMaxListLimit));
      }
      q.limit = limit;
    } else if (name == "cursor") {
      if (value.empty()) continue;
      auto after = !scope.empty() ? DecodeCursor(scope, value) : DecodeQueueCursor(value);
      if (!after.ok()) return after.status();
      q.after = std::move(after).value();
    } else {
      return QueryError(name, "unknown parameter");
    }
  }
  return q;
}

}  // namespace

Result<QueueListQuery> ParseListQueuesQuery(std::string_view query) {
  return ParseNamePageQuery(query, /*scope=*/"");
}

Result<QueueListQuery> ParseListLimitsQuery(std::string_view query) {
  return ParseNamePageQuery(query, kLimitsCursorScope);
}

Result<QueueListQuery> ParseListNamespacesQuery(std::string_view query) {
  return ParseNamePageQuery(query, kNamespacesCursorScope);
}

Result<flow::NamespaceSpec> ParseNamespaceSpec(const std::string& name, std::string_view body) {
  if (body.empty()) return InvalidJson("the body must be a JSON object (the namespace)");
  return flow::NamespaceSpec::FromJson(name, body);
}

Result<std::optional<std::string>> ParseResetBreaker(std::string_view body) {
  if (body.empty()) return std::optional<std::string>();
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(doc, "", {"key"}));
  std::optional<Value> key = Find(doc, "key");
  if (!key) return std::optional<std::string>();
  if (!key->IsString()) return FieldError("key", "must be a string (the breaker key to reset)");
  return std::optional<std::string>(std::string(key->GetString()));
}

Result<flow::LimitSpec> ParseLimitSpec(const std::string& name, std::string_view body) {
  if (body.empty()) return InvalidJson("the body must be a JSON object (the limit)");
  return flow::LimitSpec::FromJson(name, body);
}

Result<bool> ParseCreateQuery(std::string_view query) {
  auto params = ParseQueryString(query);
  if (!params.ok()) return params.status();
  bool create = false;
  for (const auto& [name, value] : *params) {
    if (name != "create") return QueryError(name, "unknown parameter");
    if (value == "true") {
      create = true;
    } else if (value != "false") {
      return QueryError(name, "must be true or false");
    }
  }
  return create;
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

// ---- response bodies ----

std::string RenderError(const Status& status) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "error");
  WriteErrorObject(w, status);
  w.EndObject();
  return Take(buf);
}

std::string RenderJob(const JobView& view) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteJob(w, view);
  return Take(buf);
}

namespace {

// Writes `"items":[...]` of a page capped by bytes: each item is rendered on its own first, so
// that one that would take the body over max_bytes is left for the next page (the Writer cannot
// take a value back); at least one item is always written. Returns how many were written.
template <typename Item, typename Render>
std::size_t WriteCappedItems(JsonWriter& w, const rapidjson::StringBuffer& buf,
                             const std::vector<Item>& items, std::size_t max_bytes, Render render) {
  WriteKey(w, "items");
  w.StartArray();
  rapidjson::StringBuffer item;
  std::size_t written = 0;
  for (; written < items.size(); ++written) {
    item.Clear();
    JsonWriter iw(item);
    render(iw, items[written]);
    if (written > 0 && buf.GetSize() + item.GetSize() + 1 > max_bytes) break;
    w.RawValue(item.GetString(), item.GetSize(), rapidjson::kObjectType);
  }
  w.EndArray();
  return written;
}

}  // namespace

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

std::string RenderQueue(const QueueInfo& info) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteQueue(w, info);
  return Take(buf);
}

std::string RenderQueuePage(const QueuePage& page, std::size_t max_bytes) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  const std::size_t n = WriteCappedItems(w, buf, page.items, max_bytes, WriteQueue);
  const std::string& next_after =
      n < page.items.size() ? page.items[n - 1].config.name : page.next_after;
  WriteKey(w, "next_cursor");
  if (next_after.empty()) {
    w.Null();
  } else {
    WriteStr(w, EncodeQueueCursor(next_after));
  }
  w.EndObject();
  return Take(buf);
}

namespace {

// [{"key":K,"count":N},...]
void WriteKeyCounts(JsonWriter& w, const std::vector<std::pair<std::string, std::int64_t>>& v) {
  w.StartArray();
  for (const auto& [key, count] : v) {
    w.StartObject();
    WriteKey(w, "key");
    WriteStr(w, key);
    WriteKey(w, "count");
    w.Int64(count);
    w.EndObject();
  }
  w.EndArray();
}

// A limit's breaker: its configuration, then the keys it holds state for (LimitInfo::breakers;
// times on the wall clock, null when not set).
void WriteBreaker(JsonWriter& w, const flow::BreakerConfig& c, const flow::LimitInfo& info) {
  auto time_or_null = [&](std::int64_t ms) {
    if (ms == 0) {
      w.Null();
    } else {
      w.Int64(ms);
    }
  };
  w.StartObject();
  WriteKey(w, "consecutive_failures");
  w.Int64(c.consecutive_failures);
  WriteKey(w, "window");
  w.Int64(c.window);
  WriteKey(w, "min_samples");
  w.Int64(c.min_samples);
  WriteKey(w, "failure_percent");
  w.Int64(c.failure_percent);
  WriteKey(w, "open_base_ms");
  w.Int64(c.open_base_ms);
  WriteKey(w, "open_max_ms");
  w.Int64(c.open_max_ms);
  WriteKey(w, "tripped_keys");
  w.Uint64(info.breaker_tripped);
  WriteKey(w, "tracked_keys");
  w.Uint64(info.breaker_keys);
  WriteKey(w, "keys");
  w.StartArray();
  for (const auto& [key, st] : info.breakers) {
    w.StartObject();
    WriteKey(w, "key");
    WriteStr(w, key);
    WriteKey(w, "state");
    WriteStr(w, flow::BreakerPhaseName(st.phase));
    WriteKey(w, "opened_at");
    time_or_null(st.opened_at_ms);
    WriteKey(w, "next_open_at");
    time_or_null(st.next_open_at_ms);
    WriteKey(w, "open_interval_ms");
    w.Int64(st.open_interval_ms);
    WriteKey(w, "trial_in_flight");
    w.Bool(st.trial_in_flight);
    WriteKey(w, "consecutive_failures");
    w.Int64(st.consecutive_failures);
    WriteKey(w, "consecutive_opens");
    w.Int64(st.consecutive_opens);
    WriteKey(w, "window_samples");
    w.Int64(st.window_samples);
    WriteKey(w, "window_failures");
    w.Int64(st.window_failures);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void WriteLimitMembers(JsonWriter& w, const flow::LimitInfo& info) {
  const flow::LimitSpec& s = info.spec;
  WriteKey(w, "name");
  WriteStr(w, s.name);
  WriteKey(w, "match");
  w.StartObject();
  if (s.match_queue) {
    WriteKey(w, "queue");
    WriteStr(w, *s.match_queue);
  }
  if (s.match_kind) {
    WriteKey(w, "kind");
    WriteStr(w, *s.match_kind);
  }
  if (s.match_namespace) {
    WriteKey(w, "namespace");
    WriteStr(w, *s.match_namespace);
  }
  w.EndObject();
  WriteKey(w, "key");
  if (s.key == flow::LimitKeyKind::kNone) {
    w.Null();
  } else {
    WriteStr(w, s.KeyText());
  }
  WriteKey(w, "concurrency");
  if (s.concurrency) {
    w.Int64(*s.concurrency);
  } else {
    w.Null();
  }
  WriteKey(w, "rate");
  if (s.rate) {
    w.StartObject();
    WriteKey(w, "count");
    w.Int64(s.rate->count);
    WriteKey(w, "per");
    if (auto per = flow::RatePeriodName(s.rate->period_ms)) {
      WriteStr(w, *per);
    } else {
      w.Null();
    }
    WriteKey(w, "period_ms");
    w.Int64(s.rate->period_ms);
    WriteKey(w, "burst");
    w.Int64(s.rate->burst);
    w.EndObject();
  } else {
    w.Null();
  }
  WriteKey(w, "quota");
  if (s.quota) {
    w.StartObject();
    WriteKey(w, "count");
    w.Int64(s.quota->count);
    WriteKey(w, "per");
    WriteStr(w, flow::PeriodName(s.quota->period));
    WriteKey(w, "time_zone");
    WriteStr(w, s.quota->time_zone);
    WriteKey(w, "window");
    if (info.quota_window.end_ms != 0) {
      w.StartObject();
      WriteKey(w, "start");
      w.Int64(info.quota_window.start_ms);
      WriteKey(w, "end");
      w.Int64(info.quota_window.end_ms);
      w.EndObject();
    } else {
      w.Null();  // nothing counted yet
    }
    WriteKey(w, "used_keys");
    w.Uint64(info.quota_keys);
    WriteKey(w, "used");
    WriteKeyCounts(w, info.quota_used);
    w.EndObject();
  } else {
    w.Null();
  }
  WriteKey(w, "breaker");
  if (s.breaker) {
    WriteBreaker(w, *s.breaker, info);
  } else {
    w.Null();
  }
  // Key modes.
  WriteKey(w, "singleton");
  if (s.singleton == flow::SingletonMode::kOff) {
    w.Null();
  } else {
    WriteStr(w, flow::SingletonModeName(s.singleton));
  }
  WriteKey(w, "debounce");
  if (!s.debounce) {
    w.Null();
  } else {
    w.StartObject();
    WriteKey(w, "delay_ms");
    w.Int64(s.debounce->delay_ms);
    WriteKey(w, "max_wait_ms");
    if (s.debounce->max_wait_ms) {
      w.Int64(*s.debounce->max_wait_ms);
    } else {
      w.Null();
    }
    w.EndObject();
  }
  WriteKey(w, "active_keys");
  w.Uint64(info.active_keys);
  WriteKey(w, "active");
  WriteKeyCounts(w, info.active);
}

void WriteLimit(JsonWriter& w, const flow::LimitInfo& info) {
  w.StartObject();
  WriteLimitMembers(w, info);
  w.EndObject();
}

}  // namespace

std::string RenderLimit(const flow::LimitInfo& info) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteLimit(w, info);
  return Take(buf);
}

namespace {

// A page of named objects (limits, namespaces) capped at `max_bytes`, with a cursor of `scope`
// after the last name written.
template <typename Page, typename Write>
std::string RenderNamedPage(const Page& page, std::size_t max_bytes, Write write,
                            std::string_view scope) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  const std::size_t n = WriteCappedItems(w, buf, page.items, max_bytes, write);
  const std::string& next_after =
      n < page.items.size() ? page.items[n - 1].spec.name : page.next_after;
  WriteKey(w, "next_cursor");
  if (next_after.empty()) {
    w.Null();
  } else {
    WriteStr(w, EncodeCursor(scope, next_after));
  }
  w.EndObject();
  return Take(buf);
}

}  // namespace

std::string RenderLimitPage(const flow::LimitPage& page, std::size_t max_bytes) {
  return RenderNamedPage(page, max_bytes, WriteLimit, kLimitsCursorScope);
}

namespace {

void WriteNamespace(JsonWriter& w, const flow::NamespaceInfo& info) {
  const flow::NamespaceSpec& s = info.spec;
  w.StartObject();
  WriteKey(w, "name");
  WriteStr(w, s.name);
  WriteKey(w, "max_live_jobs");
  if (s.max_live_jobs) {
    w.Int64(*s.max_live_jobs);
  } else {
    w.Null();
  }
  WriteKey(w, "enqueue_rate");
  if (s.enqueue_rate) {
    w.StartObject();
    WriteKey(w, "count");
    w.Int64(s.enqueue_rate->count);
    WriteKey(w, "period_ms");
    w.Int64(s.enqueue_rate->period_ms);
    WriteKey(w, "burst");
    w.Int64(s.enqueue_rate->burst);
    w.EndObject();
  } else {
    w.Null();
  }
  WriteKey(w, "weight");
  w.Int64(s.weight.value_or(1));
  WriteKey(w, "live_jobs");
  w.Uint64(info.live_jobs);
  w.EndObject();
}

}  // namespace

std::string RenderNamespace(const flow::NamespaceInfo& info) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteNamespace(w, info);
  return Take(buf);
}

std::string RenderNamespacePage(const flow::NamespacePage& page, std::size_t max_bytes) {
  return RenderNamedPage(page, max_bytes, WriteNamespace, kNamespacesCursorScope);
}

std::string RenderBreakerReset(const flow::LimitInfo& info, const std::optional<std::string>& key) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteLimitMembers(w, info);
  WriteKey(w, "reset");
  w.StartObject();
  WriteKey(w, "key");
  if (key) {
    WriteStr(w, *key);
  } else {
    w.Null();
  }
  WriteKey(w, "tripped_keys");
  w.Uint64(info.reset_tripped);
  w.EndObject();
  w.EndObject();
  return Take(buf);
}

std::string RenderLimitDeleted(const std::string& name) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "name");
  WriteStr(w, name);
  WriteKey(w, "deleted");
  w.Bool(true);
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

std::string RenderInfo(const BrokerInfo& info) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "version");
  WriteStr(w, info.version);
  WriteKey(w, "commit");
  WriteStr(w, info.commit);
  WriteKey(w, "started_at");
  w.Int64(info.started_at_ms);
  WriteKey(w, "live_jobs");
  w.Uint64(info.live_jobs);
  WriteKey(w, "commits");
  w.Uint64(info.commits);
  WriteKey(w, "draining");
  w.Bool(info.draining);
  WriteKey(w, "store");
  w.StartObject();
  WriteKey(w, "journal_mode");
  WriteStrOrNull(w, info.store_journal_mode);
  WriteKey(w, "synchronous");
  WriteStrOrNull(w, info.store_synchronous);
  w.EndObject();
  w.EndObject();
  return Take(buf);
}

std::string RenderStatusWord(std::string_view status) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "status");
  WriteStr(w, status);
  w.EndObject();
  return Take(buf);
}

}  // namespace ym::net
