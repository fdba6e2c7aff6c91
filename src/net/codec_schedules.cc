// The codec of schedules (/v1/schedules): see net/codec_schedules.h.

#include "net/codec_schedules.h"

#include <fmt/format.h>

#include <charconv>
#include <map>

#include "common/time_zone.h"
#include "net/codec_util.h"
#include "obs/redact.h"

namespace ym::net {
namespace {

constexpr std::string_view kSchedulesCursorScope = "schedules";

// The enqueue parser's errors name the template's fields without the "job." prefix.
Status InJob(Status s) {
  if (s.ok()) return s;
  std::string m = s.message();
  constexpr std::string_view kField = "field \"";
  if (m.rfind(kField, 0) == 0) {
    m.insert(kField.size(), "job.");
  } else {
    m = "field \"job\": " + m;
  }
  return Status(s.code(), std::move(m));
}

Status MissedRunsValue(const Value& v, cron::MissedRunConfig* out) {
  if (!v.IsObject()) return FieldError("missed_runs", "must be an object");
  YM_RETURN_IF_ERROR(
      CheckMembers(v, "missed_runs", {"policy", "max_count", "max_age_ms", "grace_ms"}));
  if (auto p = Find(v, "policy")) {
    if (!p->IsString()) return FieldError("missed_runs.policy", "must be a string");
    auto policy = cron::ParseMissedPolicy(p->GetString(), "field \"missed_runs.policy\"");
    if (!policy.ok()) return policy.status();
    out->policy = *policy;
  }
  std::optional<std::int64_t> n;
  YM_RETURN_IF_ERROR(
      OptInt(v, "missed_runs", "max_count", 1, cron::MissedRunConfig::kMaxCount, &n));
  if (n) out->max_count = static_cast<std::uint32_t>(*n);
  n.reset();
  YM_RETURN_IF_ERROR(
      OptInt(v, "missed_runs", "max_age_ms", 1000, cron::MissedRunConfig::kMaxAgeMs, &n));
  if (n) out->max_age_ms = *n;
  n.reset();
  YM_RETURN_IF_ERROR(OptInt(v, "missed_runs", "grace_ms", 0, cron::MissedRunConfig::kMaxAgeMs, &n));
  if (n) out->grace_ms = *n;
  if (out->grace_ms > out->max_age_ms) {
    return FieldError("missed_runs.grace_ms", "must not exceed max_age_ms");
  }
  return Status::Ok();
}

// The job template: an enqueue spec without what the schedule sets per window.
Status JobValue(const Value& v, const CodecLimits& limits, cron::ScheduleSpec* spec) {
  if (!v.IsObject()) return FieldError("job", "must be an object (an enqueue spec)");
  for (std::string_view own : {"delay_ms", "run_at", "idempotency_key", "idempotency_ttl_ms"}) {
    if (FindRaw(v, own)) {
      return FieldError(fmt::format("job.{}", own),
                        "is set by the schedule for each window, not in the template");
    }
  }
  auto job = ParseEnqueue(v.Raw(), limits);
  if (!job.ok()) return InJob(job.status());
  spec->job = std::move(job).value();
  spec->job_json = std::string(v.Raw());
  return Status::Ok();
}

// The canonical JSON of a parsed spec (what the store keeps and GET shows).
std::string CanonicalJson(const cron::ScheduleSpec& s) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "cron");
  WriteStr(w, s.expr->text());
  WriteKey(w, "time_zone");
  WriteStr(w, s.time_zone);
  WriteKey(w, "start_at");
  if (s.start_ms) {
    w.Int64(*s.start_ms);
  } else {
    w.Null();
  }
  WriteKey(w, "end_at");
  if (s.end_ms) {
    w.Int64(*s.end_ms);
  } else {
    w.Null();
  }
  WriteKey(w, "jitter_ms");
  w.Int64(s.jitter_ms);
  WriteKey(w, "missed_runs");
  w.StartObject();
  WriteKey(w, "policy");
  WriteStr(w, cron::MissedPolicyName(s.missed.policy));
  WriteKey(w, "max_count");
  w.Uint(s.missed.max_count);
  WriteKey(w, "max_age_ms");
  w.Int64(s.missed.max_age_ms);
  WriteKey(w, "grace_ms");
  w.Int64(s.missed.grace_ms);
  w.EndObject();
  WriteKey(w, "overlap");
  WriteStr(w, cron::OverlapName(s.overlap));
  WriteKey(w, "job");
  WriteRawJson(w, s.job_json);
  w.EndObject();
  return Take(buf);
}

// Parses a spec object. `id_in_body`: the body must name the id (POST); otherwise it may, and
// it must then equal `id`. `allow_paused`: the API's bodies may carry `paused`, a stored spec
// does not.
Result<ScheduleRequest> SpecFromValue(const Value& obj, std::string id, bool id_in_body,
                                      bool allow_paused, const CodecLimits& limits) {
  if (!obj.IsObject()) return Validation("a schedule must be a JSON object");
  if (allow_paused) {
    YM_RETURN_IF_ERROR(CheckMembers(obj, "",
                                    {"id", "cron", "time_zone", "start_at", "end_at", "jitter_ms",
                                     "missed_runs", "overlap", "job", "paused"}));
  } else {
    YM_RETURN_IF_ERROR(CheckMembers(
        obj, "",
        {"cron", "time_zone", "start_at", "end_at", "jitter_ms", "missed_runs", "overlap", "job"}));
  }
  ScheduleRequest req;
  cron::ScheduleSpec& s = req.spec;
  if (auto v = Find(obj, "id")) {
    std::string named;
    YM_RETURN_IF_ERROR(NameValue(*v, "id", &named));
    if (!id_in_body && named != id) return FieldError("id", "must equal the id in the path");
    id = std::move(named);
  } else if (id_in_body) {
    return Required("id");
  }
  s.id = std::move(id);
  if (!IsValidName(s.id)) return FieldError("id", "must be 1..128 characters of [A-Za-z0-9_.:-]");
  auto cron_text = Find(obj, "cron");
  if (!cron_text) return Required("cron");
  if (!cron_text->IsString()) return FieldError("cron", "must be a string");
  auto expr = cron::CronExpr::Parse(cron_text->GetString(), "field \"cron\"");
  if (!expr.ok()) return expr.status();
  s.expr = std::move(expr).value();
  if (auto tz = Find(obj, "time_zone")) {
    if (!tz->IsString()) return FieldError("time_zone", "must be a string (an IANA zone name)");
    s.time_zone = std::string(tz->GetString());
  }
  auto zone = FindTimeZone(s.time_zone, "field \"time_zone\"");
  if (!zone.ok()) return zone.status();
  s.zone = *zone;
  YM_RETURN_IF_ERROR(OptInt(obj, "", "start_at", 0, kMaxRunAtMs, &s.start_ms));
  YM_RETURN_IF_ERROR(OptInt(obj, "", "end_at", 0, kMaxRunAtMs, &s.end_ms));
  if (s.start_ms && s.end_ms && *s.end_ms < *s.start_ms) {
    return FieldError("end_at", "must not be before start_at");
  }
  std::optional<std::int64_t> jitter;
  YM_RETURN_IF_ERROR(OptInt(obj, "", "jitter_ms", 0, cron::ScheduleSpec::kMaxJitterMs, &jitter));
  s.jitter_ms = jitter.value_or(0);
  if (auto m = Find(obj, "missed_runs")) YM_RETURN_IF_ERROR(MissedRunsValue(*m, &s.missed));
  if (auto o = Find(obj, "overlap")) {
    if (!o->IsString()) return FieldError("overlap", "must be a string");
    auto overlap = cron::ParseOverlap(o->GetString(), "field \"overlap\"");
    if (!overlap.ok()) return overlap.status();
    s.overlap = *overlap;
  }
  auto job = Find(obj, "job");
  if (!job) return Required("job");
  YM_RETURN_IF_ERROR(JobValue(*job, limits, &s));
  if (allow_paused) YM_RETURN_IF_ERROR(OptBool(obj, "", "paused", &req.paused));
  YM_RETURN_IF_ERROR(s.Validate());
  s.json = CanonicalJson(s);
  return req;
}

void WriteMissedRuns(JsonWriter& w, const cron::MissedRunConfig& m) {
  w.StartObject();
  WriteKey(w, "policy");
  WriteStr(w, cron::MissedPolicyName(m.policy));
  WriteKey(w, "max_count");
  w.Uint(m.max_count);
  WriteKey(w, "max_age_ms");
  w.Int64(m.max_age_ms);
  WriteKey(w, "grace_ms");
  w.Int64(m.grace_ms);
  w.EndObject();
}

void WriteOptMs(JsonWriter& w, const std::optional<std::int64_t>& ms) {
  if (ms) {
    w.Int64(*ms);
  } else {
    w.Null();
  }
}

void WriteSchedule(JsonWriter& w, const ScheduleView& v, bool full) {
  const cron::Schedule& s = v.schedule;
  const cron::ScheduleSpec& spec = s.spec;
  const cron::ScheduleState& st = s.state;
  w.StartObject();
  WriteKey(w, "id");
  WriteStr(w, spec.id);
  WriteKey(w, "cron");
  WriteStr(w, spec.expr->text());
  WriteKey(w, "time_zone");
  WriteStr(w, spec.time_zone);
  WriteKey(w, "start_at");
  WriteOptMs(w, spec.start_ms);
  WriteKey(w, "end_at");
  WriteOptMs(w, spec.end_ms);
  WriteKey(w, "jitter_ms");
  w.Int64(spec.jitter_ms);
  WriteKey(w, "missed_runs");
  WriteMissedRuns(w, spec.missed);
  WriteKey(w, "overlap");
  WriteStr(w, cron::OverlapName(spec.overlap));
  WriteKey(w, "paused");
  w.Bool(st.paused);
  WriteKey(w, "job");
  std::string scratch;  // the template's payload is redacted like a job's (obs/redact.h)
  WriteRawJson(w, obs::PayloadRedactor().ApplyUnder(spec.job_json, "payload", scratch));
  WriteKey(w, "state");
  WriteStr(w, st.paused ? "paused" : s.ended ? "ended" : "active");
  WriteKey(w, "created_at");
  w.Int64(st.created_at_ms);
  WriteKey(w, "updated_at");
  w.Int64(st.updated_at_ms);
  WriteKey(w, "cursor");
  w.Int64(st.cursor_ms);
  WriteKey(w, "next_fire_at");
  if (st.paused || s.ended || v.next_fire_times.empty()) {
    w.Null();
  } else {
    w.Int64(v.next_fire_times.front());
  }
  if (full) {
    WriteKey(w, "next_fire_times");
    w.StartArray();
    for (std::int64_t t : v.next_fire_times) w.Int64(t);
    w.EndArray();
  }
  WriteKey(w, "live_job");
  if (v.live_job) {
    WriteStr(w, FormatJobId(st.last_job));
  } else {
    w.Null();
  }
  WriteKey(w, "buffered_window");
  WriteOptMs(w, st.buffered_ms);
  WriteKey(w, "last_run");
  if (st.last_job == 0) {
    w.Null();
  } else {
    w.StartObject();
    WriteKey(w, "window");
    w.Int64(st.last_window_ms);
    WriteKey(w, "job_id");
    WriteStr(w, FormatJobId(st.last_job));
    WriteKey(w, "enqueued_at");
    w.Int64(st.last_enqueued_at_ms);
    WriteKey(w, "lag_ms");
    w.Int64(st.last_enqueued_at_ms - st.last_window_ms);
    w.EndObject();
  }
  // Lag over the windows the history holds that the schedule emitted itself: a trigger has no
  // window to lag, and a backfilled window is late by design (as in ym_schedule_fire_lag_seconds).
  std::int64_t last_lag = -1, max_lag = -1;
  std::uint64_t samples = 0;
  for (const cron::HistoryEntry& e : s.history) {
    if (!e.emitted || e.reason == "trigger" || e.reason == "backfill") continue;
    last_lag = e.lag_ms;
    max_lag = std::max(max_lag, e.lag_ms);
    ++samples;
  }
  WriteKey(w, "lag");
  w.StartObject();
  WriteKey(w, "last_ms");
  if (samples == 0) {
    w.Null();
  } else {
    w.Int64(last_lag);
  }
  WriteKey(w, "max_recent_ms");
  if (samples == 0) {
    w.Null();
  } else {
    w.Int64(max_lag);
  }
  WriteKey(w, "samples");
  w.Uint64(samples);
  w.EndObject();
  if (full) {
    WriteKey(w, "history");
    w.StartArray();
    for (auto it = s.history.rbegin(); it != s.history.rend(); ++it) {
      const cron::HistoryEntry& e = *it;
      w.StartObject();
      WriteKey(w, "window");
      w.Int64(e.window_ms);
      if (e.through_ms != e.window_ms) {
        WriteKey(w, "through");
        w.Int64(e.through_ms);
      }
      WriteKey(w, "outcome");
      WriteStr(w, e.emitted ? "emitted" : "skipped");
      WriteKey(w, "reason");
      WriteStr(w, e.reason);
      WriteKey(w, "job_id");
      if (e.job_id != 0) {
        WriteStr(w, FormatJobId(e.job_id));
      } else {
        w.Null();
      }
      WriteKey(w, "at");
      w.Int64(e.at_ms);
      WriteKey(w, "lag_ms");
      if (e.lag_ms >= 0) {
        w.Int64(e.lag_ms);
      } else {
        w.Null();
      }
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
}

}  // namespace

Result<ScheduleRequest> ParseScheduleCreate(std::string_view body, const CodecLimits& limits) {
  auto doc = ParseDocument(body);
  if (!doc.ok()) return doc.status();
  return SpecFromValue(doc->root(), "", /*id_in_body=*/true, /*allow_paused=*/true, limits);
}

Result<ScheduleRequest> ParseScheduleReplace(const std::string& id, std::string_view body,
                                             const CodecLimits& limits) {
  auto doc = ParseDocument(body);
  if (!doc.ok()) return doc.status();
  return SpecFromValue(doc->root(), id, /*id_in_body=*/false, /*allow_paused=*/true, limits);
}

Status CheckSchedulePatch(std::string_view body) {
  auto patch = ParseDocument(body);
  if (!patch.ok()) return patch.status();
  const Value p = patch->root();
  if (!p.IsObject()) return Validation("a schedule patch must be a JSON object");
  return CheckMembers(p, "",
                      {"id", "cron", "time_zone", "start_at", "end_at", "jitter_ms", "missed_runs",
                       "overlap", "job", "paused"});
}

Result<ScheduleRequest> ParseSchedulePatch(const std::string& id, std::string_view body,
                                           const std::string& current_json,
                                           const CodecLimits& limits) {
  auto patch = ParseDocument(body);
  if (!patch.ok()) return patch.status();
  const Value p = patch->root();
  if (!p.IsObject()) return Validation("a schedule patch must be a JSON object");
  YM_RETURN_IF_ERROR(CheckMembers(p, "",
                                  {"id", "cron", "time_zone", "start_at", "end_at", "jitter_ms",
                                   "missed_runs", "overlap", "job", "paused"}));
  auto current = json::Document::Parse(current_json);
  if (!current.ok()) return Status(Code::kInternal, "stored schedule spec does not parse");
  // Member texts: the current ones, replaced by those the patch gives.
  std::map<std::string, std::string, std::less<>> members;
  for (const auto& m : current->root()) {
    members[std::string(m.name.GetString())] = std::string(m.value.Raw());
  }
  for (const auto& m : p) {
    const std::string_view name = m.name.GetString();
    if (name == "missed_runs" && m.value.IsObject()) {
      // Merged member by member with the current policy.
      std::map<std::string, std::string, std::less<>> missed;
      if (auto cur = members.find("missed_runs"); cur != members.end()) {
        auto old = json::Document::Parse(cur->second);
        if (old.ok() && old->root().IsObject()) {
          for (const auto& o : old->root()) {
            missed[std::string(o.name.GetString())] = std::string(o.value.Raw());
          }
        }
      }
      for (const auto& o : m.value) {
        missed[std::string(o.name.GetString())] = std::string(o.value.Raw());
      }
      std::string text = "{";
      for (const auto& [k, v] : missed) {
        if (text.size() > 1) text += ",";
        rapidjson::StringBuffer kb;
        JsonWriter kw(kb);
        WriteStr(kw, k);
        text += Take(kb) + ":" + v;
      }
      members["missed_runs"] = text + "}";
    } else {
      members[std::string(name)] = std::string(m.value.Raw());
    }
  }
  std::string merged = "{";
  for (const auto& [k, v] : members) {
    if (merged.size() > 1) merged += ",";
    rapidjson::StringBuffer kb;
    JsonWriter kw(kb);
    WriteStr(kw, k);
    merged += Take(kb) + ":" + v;
  }
  merged += "}";
  auto doc = ParseDocument(merged);
  if (!doc.ok()) return doc.status();
  return SpecFromValue(doc->root(), id, /*id_in_body=*/false, /*allow_paused=*/true, limits);
}

Result<cron::ScheduleSpec> ParseStoredSchedule(const std::string& id, std::string_view json) {
  auto doc = json::Document::Parse(json);
  if (!doc.ok()) return doc.status();
  // A stored template was checked against the payload limit when it was created; a server
  // restarted with a smaller limit still loads it.
  CodecLimits unlimited;
  unlimited.max_payload_bytes = std::numeric_limits<std::size_t>::max();
  auto req =
      SpecFromValue(doc->root(), id, /*id_in_body=*/false, /*allow_paused=*/false, unlimited);
  if (!req.ok()) return req.status();
  return std::move(req->spec);
}

Result<std::size_t> ParseScheduleGetQuery(std::string_view query) {
  auto params = ParseQueryString(query);
  if (!params.ok()) return params.status();
  std::size_t next = kDefaultNextFireTimes;
  for (const auto& [name, value] : *params) {
    if (name == "next") {
      std::size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size() || n > kMaxNextFireTimes) {
        return QueryError(name,
                          fmt::format("must be an integer between 0 and {}", kMaxNextFireTimes));
      }
      next = n;
    } else {
      return QueryError(name, "unknown parameter");
    }
  }
  return next;
}

Result<QueueListQuery> ParseListSchedulesQuery(std::string_view query) {
  return ParseNamePageQuery(query, kSchedulesCursorScope);
}

Result<std::pair<std::int64_t, std::int64_t>> ParseBackfill(std::string_view body) {
  auto doc = ParseDocument(body);
  if (!doc.ok()) return doc.status();
  const Value v = doc->root();
  if (!v.IsObject()) return Validation("a backfill must be a JSON object {\"from\",\"to\"}");
  YM_RETURN_IF_ERROR(CheckMembers(v, "", {"from", "to"}));
  std::optional<std::int64_t> from, to;
  YM_RETURN_IF_ERROR(OptInt(v, "", "from", 0, kMaxRunAtMs, &from));
  YM_RETURN_IF_ERROR(OptInt(v, "", "to", 0, kMaxRunAtMs, &to));
  if (!from) return Required("from");
  if (!to) return Required("to");
  if (*to < *from) return FieldError("to", "must not be before \"from\"");
  return std::make_pair(*from, *to);
}

std::string RenderSchedule(const ScheduleView& view, bool full) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteSchedule(w, view, full);
  return Take(buf);
}

std::string RenderSchedulePage(const std::vector<ScheduleView>& items, bool more,
                               std::size_t max_bytes) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  const std::size_t n =
      WriteCappedItems(w, buf, items, max_bytes,
                       [](JsonWriter& iw, const ScheduleView& v) { WriteSchedule(iw, v, false); });
  WriteKey(w, "next_cursor");
  if (n > 0 && (n < items.size() || more)) {
    WriteStr(w, EncodeCursor(kSchedulesCursorScope, items[n - 1].schedule.spec.id));
  } else {
    w.Null();
  }
  w.EndObject();
  return Take(buf);
}

std::string RenderScheduleDeleted(const std::string& id) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "id");
  WriteStr(w, id);
  WriteKey(w, "deleted");
  w.Bool(true);
  w.EndObject();
  return Take(buf);
}

std::string RenderBackfill(const BackfillOutcome& o) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "emitted");
  w.Uint64(o.emitted);
  WriteKey(w, "duplicates");
  w.Uint64(o.duplicates);
  WriteKey(w, "after_cursor");
  w.Uint64(o.after_cursor);
  WriteKey(w, "windows");
  w.Uint64(o.windows);
  w.EndObject();
  return Take(buf);
}

std::optional<ScheduleKeyParts> ParseScheduleKey(std::string_view key) {
  constexpr std::string_view kPrefix = "schedule:";
  if (key.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  key.remove_prefix(kPrefix.size());
  const std::size_t colon = key.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view tail = key.substr(colon + 1);
  std::string_view head = key.substr(0, colon);
  std::int64_t ms = 0;
  auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), ms);
  if (ec != std::errc() || p != tail.data() + tail.size() || tail.empty()) return std::nullopt;
  ScheduleKeyParts parts;
  constexpr std::string_view kTrigger = ":trigger";
  if (head.size() > kTrigger.size() && head.substr(head.size() - kTrigger.size()) == kTrigger) {
    parts.id = std::string(head.substr(0, head.size() - kTrigger.size()));
  } else {
    parts.id = std::string(head);
    parts.window = ms;
  }
  if (!IsValidName(parts.id)) return std::nullopt;
  return parts;
}

}  // namespace ym::net
