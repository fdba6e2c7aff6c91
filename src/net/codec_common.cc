// The codec's shared helpers, query strings, errors and the small bodies of docs/api.md.

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "net/codec.h"
#include "net/codec_util.h"

namespace ym::net {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

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

std::string Take(const rapidjson::StringBuffer& buf) {
  return std::string(buf.GetString(), buf.GetSize());
}

Status QueryError(std::string_view name, std::string_view what) {
  return InvalidRequest(fmt::format("query parameter \"{}\": {}", name, what));
}

Result<std::int64_t> ParseEpochMs(std::string_view name, std::string_view value) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || p != value.data() + value.size() || v < 0) {
    return QueryError(name, "must be a time in epoch milliseconds (an integer >= 0)");
  }
  return v;
}

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

std::string RenderError(const Status& status) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "error");
  WriteErrorObject(w, status);
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

Status HealthFailure(const std::vector<HealthCheck>& checks) {
  const HealthCheck* first = nullptr;
  std::string failed;
  for (const HealthCheck& c : checks) {
    if (c.status.ok()) continue;
    if (first == nullptr) first = &c;
    failed += failed.empty() ? "" : "; ";
    failed += std::string(c.name) + ": " + c.status.message();
  }
  if (first == nullptr) return Status::Ok();
  return Status(first->status.code(), "not ready: " + failed);
}

std::string RenderHealth(std::string_view ok_word, const std::vector<HealthCheck>& checks) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  const Status failure = HealthFailure(checks);
  w.StartObject();
  WriteKey(w, "status");
  WriteStr(w, failure.ok() ? ok_word : std::string_view("not_ready"));
  WriteKey(w, "checks");
  w.StartObject();
  for (const HealthCheck& c : checks) {
    WriteKey(w, c.name);
    WriteStr(w, c.status.ok() ? std::string_view("ok") : std::string_view(c.status.message()));
  }
  w.EndObject();
  if (!failure.ok()) {
    WriteKey(w, "error");
    WriteErrorObject(w, failure);
  }
  w.EndObject();
  return Take(buf);
}

}  // namespace ym::net
