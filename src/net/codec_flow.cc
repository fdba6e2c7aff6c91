// The codec of flow control: limits, namespaces and breakers (/v1/limits, /v1/namespaces).

#include <fmt/format.h>

#include "net/codec.h"
#include "net/codec_util.h"
#include "obs/redact.h"

namespace ym::net {
namespace {

constexpr std::string_view kLimitsCursorScope = "limits";
constexpr std::string_view kNamespacesCursorScope = "namespaces";

// A limit keyed by a payload path through a redacted member (obs/redact.h) shows its key values
// as "[redacted]": they are payload values.
std::string_view ShownKey(const flow::LimitInfo& info, const std::string& key) {
  return obs::PayloadRedactor().HidesKeyPath(info.spec.KeyText()) ? obs::kRedacted
                                                                  : std::string_view(key);
}

// [{"key":K,"count":N},...]
void WriteKeyCounts(JsonWriter& w, const flow::LimitInfo& info,
                    const std::vector<std::pair<std::string, std::int64_t>>& v) {
  w.StartArray();
  for (const auto& [key, count] : v) {
    w.StartObject();
    WriteKey(w, "key");
    WriteStr(w, ShownKey(info, key));
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
    WriteStr(w, ShownKey(info, key));
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
    WriteKeyCounts(w, info, info.quota_used);
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
  WriteKeyCounts(w, info, info.active);
}

void WriteLimit(JsonWriter& w, const flow::LimitInfo& info) {
  w.StartObject();
  WriteLimitMembers(w, info);
  w.EndObject();
}

}  // namespace

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

namespace {

// A wipe's position: its mark and the live phase's cursor, each 8 bytes big-endian.
std::string WipeCursorScope(const std::string& name) { return "wipe\n" + name; }

void PutU64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (56 - 8 * i)));
}

std::uint64_t GetU64(std::string_view in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

}  // namespace

Result<WipeRequest> ParseWipe(const std::string& name, std::string_view body) {
  if (body.empty()) {
    return InvalidJson("the body must be a JSON object: {\"confirm\": \"" + name +
                       "\"} confirms the wipe");
  }
  auto parsed = ParseDocument(body);
  if (!parsed.ok()) return parsed.status();
  const Value doc = parsed->root();
  YM_RETURN_IF_ERROR(CheckMembers(doc, "", {"confirm", "limit", "cursor"}));
  WipeRequest req;
  req.ns = name;
  std::optional<Value> confirm = Find(doc, "confirm");
  if (!confirm || !confirm->IsString()) {
    return FieldError("confirm", "required: the namespace's name, to confirm the wipe");
  }
  std::optional<std::uint32_t> limit;
  YM_RETURN_IF_ERROR(OptInt(doc, "", "limit", 1, kMaxWipeLimit, &limit));
  req.limit = limit.value_or(kDefaultWipeLimit);
  if (auto c = Find(doc, "cursor")) {
    if (!c->IsString()) return FieldError("cursor", "must be a string (a next_cursor)");
    auto position = DecodeCursor(WipeCursorScope(name), c->GetString());
    if (!position.ok() || position->size() != 16) {
      return InvalidRequest(
          "field \"cursor\": not a cursor of a wipe of this namespace; send back the "
          "next_cursor of the previous reply, unchanged");
    }
    req.up_to_id = GetU64(*position);
    req.after_id = GetU64(std::string_view(*position).substr(8));
    if (req.up_to_id == 0) return InvalidRequest("field \"cursor\": not a cursor of a wipe");
  }
  YM_RETURN_IF_ERROR(CheckWipeRequest(req, std::string(confirm->GetString())));
  return req;
}

std::string RenderWipeOutcome(const std::string& name, const WipeOutcome& outcome) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "namespace");
  WriteStr(w, name);
  WriteKey(w, "erased");
  w.StartObject();
  WriteKey(w, "live_jobs");
  w.Uint64(outcome.live_jobs);
  WriteKey(w, "finished_jobs");
  w.Uint64(outcome.finished_jobs);
  WriteKey(w, "idempotency_keys");
  w.Uint64(outcome.idempotency_keys);
  WriteKey(w, "schedules");
  w.Uint64(outcome.schedules);
  w.EndObject();
  WriteKey(w, "skipped");
  w.Uint64(outcome.skipped);
  WriteKey(w, "up_to_id");
  WriteStr(w, FormatJobId(outcome.up_to_id));  // a job id: a decimal string, as everywhere
  WriteKey(w, "done");
  w.Bool(outcome.done);
  WriteKey(w, "next_cursor");
  if (outcome.done) {
    w.Null();
  } else {
    std::string position;
    PutU64(position, outcome.up_to_id);
    PutU64(position, outcome.after_id);
    const std::string cursor = EncodeCursor(WipeCursorScope(name), position);
    w.String(cursor.data(), static_cast<rapidjson::SizeType>(cursor.size()));
  }
  w.EndObject();
  return Take(buf);
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

std::string RenderLimit(const flow::LimitInfo& info) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteLimit(w, info);
  return Take(buf);
}

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
  WriteKey(w, "max_active");
  if (s.max_active) {
    w.Int64(*s.max_active);
  } else {
    w.Null();
  }
  WriteKey(w, "retention");
  if (!s.retention.empty()) {
    w.StartObject();
    for (JobState st : {JobState::kSucceeded, JobState::kDead, JobState::kCancelled}) {
      WriteKey(w, std::string(StateName(st)) + "_ms");
      if (const auto ms = s.retention.WindowMs(st)) {
        w.Int64(*ms);
      } else {
        w.Null();
      }
    }
    w.EndObject();
  } else {
    w.Null();
  }
  WriteKey(w, "live_jobs");
  w.Uint64(info.live_jobs);
  WriteKey(w, "active_jobs");
  w.Uint64(info.active_jobs);
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
    WriteStr(w, ShownKey(info, *key));
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

}  // namespace ym::net
