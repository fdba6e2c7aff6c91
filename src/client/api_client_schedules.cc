// The API client's schedule calls: /v1/schedules (docs/api.md, "Schedules").

#include "client/api_client.h"
#include "client/wire.h"

namespace ym::client {
namespace {

constexpr std::string_view kSchedules = "/v1/schedules";

std::string SchedulePath(std::string_view id, std::string_view verb = {}) {
  std::string target = std::string(kSchedules) + "/" + Escape(id);
  if (!verb.empty()) {
    target += ':';
    target += verb;
  }
  return target;
}

// The spec's members that are set; `with_id` for POST (PUT and PATCH name it in the path).
Result<std::string> WriteScheduleSpec(const ScheduleSpec& s, bool with_id) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  auto str = [&w](const char* key, const std::optional<std::string>& v) {
    if (!v) return;
    w.Key(key);
    w.String(v->data(), static_cast<rapidjson::SizeType>(v->size()));
  };
  auto num = [&w](const char* key, const std::optional<std::int64_t>& v) {
    if (!v) return;
    w.Key(key);
    w.Int64(*v);
  };
  if (with_id) str("id", s.id);
  str("cron", s.cron);
  str("time_zone", s.time_zone);
  num("start_at", s.start_at_ms);
  num("end_at", s.end_at_ms);
  num("jitter_ms", s.jitter_ms);
  if (s.missed_policy || s.missed_max_count || s.missed_max_age_ms || s.missed_grace_ms) {
    w.Key("missed_runs");
    w.StartObject();
    str("policy", s.missed_policy);
    num("max_count", s.missed_max_count);
    num("max_age_ms", s.missed_max_age_ms);
    num("grace_ms", s.missed_grace_ms);
    w.EndObject();
  }
  str("overlap", s.overlap);
  if (s.paused) {
    w.Key("paused");
    w.Bool(*s.paused);
  }
  if (s.job) {
    w.Key("job");
    YM_RETURN_IF_ERROR(WriteSpec(w, *s.job));
  }
  w.EndObject();
  return Str(sb);
}

ScheduleDecision ParseDecision(const Value& v) {
  ScheduleDecision d;
  d.window_ms = Int(v, "window");
  d.through_ms = OptInt(v, "through").value_or(d.window_ms);
  d.outcome = String(v, "outcome");
  d.reason = String(v, "reason");
  d.job_id = String(v, "job_id");
  d.at_ms = Int(v, "at");
  d.lag_ms = OptInt(v, "lag_ms");
  return d;
}

Schedule ParseSchedule(const Value& v) {
  Schedule s;
  s.id = String(v, "id");
  s.cron = String(v, "cron");
  s.time_zone = String(v, "time_zone");
  s.start_at_ms = OptInt(v, "start_at");
  s.end_at_ms = OptInt(v, "end_at");
  s.jitter_ms = Int(v, "jitter_ms");
  if (std::optional<Value> m = Member(v, "missed_runs"); m && m->IsObject()) {
    s.missed_policy = String(*m, "policy");
    s.missed_max_count = Int(*m, "max_count");
    s.missed_max_age_ms = Int(*m, "max_age_ms");
    s.missed_grace_ms = Int(*m, "grace_ms");
  }
  s.overlap = String(v, "overlap");
  s.paused = Bool(v, "paused");
  s.job_json = OptRaw(v, "job").value_or("null");
  s.state = String(v, "state");
  s.created_at_ms = Int(v, "created_at");
  s.updated_at_ms = Int(v, "updated_at");
  s.cursor_ms = Int(v, "cursor");
  s.next_fire_at_ms = OptInt(v, "next_fire_at");
  if (std::optional<Value> n = Member(v, "next_fire_times"); n && n->IsArray()) {
    for (const auto& t : *n) {
      if (std::optional<std::int64_t> ms = t.value.AsInt64()) s.next_fire_times.push_back(*ms);
    }
  }
  s.live_job = String(v, "live_job");
  s.buffered_window_ms = OptInt(v, "buffered_window");
  if (std::optional<Value> r = Member(v, "last_run"); r && r->IsObject()) {
    ScheduleDecision d;
    d.window_ms = Int(*r, "window");
    d.through_ms = d.window_ms;
    d.outcome = "emitted";
    d.job_id = String(*r, "job_id");
    d.at_ms = Int(*r, "enqueued_at");
    d.lag_ms = OptInt(*r, "lag_ms");
    s.last_run = std::move(d);
  }
  if (std::optional<Value> l = Member(v, "lag"); l && l->IsObject()) {
    s.lag_last_ms = OptInt(*l, "last_ms");
    s.lag_max_recent_ms = OptInt(*l, "max_recent_ms");
    s.lag_samples = Int(*l, "samples");
  }
  if (std::optional<Value> h = Member(v, "history"); h && h->IsArray()) {
    for (const auto& item : *h) s.history.push_back(ParseDecision(item.value));
  }
  s.json = std::string(v.Raw());
  return s;
}

}  // namespace

Result<Schedule> ApiClient::ScheduleCall(HttpMethod method, const std::string& target,
                                         std::string_view body, std::string_view what) {
  Result<std::string> reply = Call(method, target, body);
  if (!reply.ok()) return reply.status();
  Result<json::Document> doc = ParseReply(*reply, what);
  if (!doc.ok()) return doc.status();
  return ParseSchedule(doc->root());
}

Result<Schedule> ApiClient::CreateSchedule(const ScheduleSpec& spec) {
  Result<std::string> body = WriteScheduleSpec(spec, /*with_id=*/true);
  if (!body.ok()) return body.status();
  return ScheduleCall(HttpMethod::kPost, std::string(kSchedules), *body, "POST /v1/schedules");
}

Result<Schedule> ApiClient::UpdateSchedule(const ScheduleSpec& spec, bool patch) {
  Result<std::string> body = WriteScheduleSpec(spec, /*with_id=*/false);
  if (!body.ok()) return body.status();
  return ScheduleCall(patch ? HttpMethod::kPatch : HttpMethod::kPut, SchedulePath(spec.id), *body,
                      patch ? "PATCH /v1/schedules/{id}" : "PUT /v1/schedules/{id}");
}

Result<Schedule> ApiClient::GetSchedule(std::string_view id, std::optional<std::int64_t> next) {
  std::string target = SchedulePath(id);
  bool first = true;
  if (next) AddQuery(&target, &first, "next", std::to_string(*next));
  return ScheduleCall(HttpMethod::kGet, target, {}, "GET /v1/schedules/{id}");
}

Result<std::vector<Schedule>> ApiClient::ListSchedules(std::uint32_t page_size) {
  return ReadEveryPage<Schedule>(
      std::string(kSchedules), page_size,
      [this](const std::string& target) { return Call(HttpMethod::kGet, target, {}); },
      ParseSchedule);
}

Status ApiClient::DeleteSchedule(std::string_view id) {
  Result<std::string> body = Call(HttpMethod::kDelete, SchedulePath(id), {});
  return body.ok() ? Status::Ok() : body.status();
}

Result<Schedule> ApiClient::PauseSchedule(std::string_view id, bool pause) {
  return ScheduleCall(HttpMethod::kPost, SchedulePath(id, pause ? "pause" : "resume"), "{}",
                      pause ? "POST /v1/schedules/{id}:pause" : "POST /v1/schedules/{id}:resume");
}

Result<EnqueueResult> ApiClient::TriggerSchedule(std::string_view id) {
  Result<std::string> body = Call(HttpMethod::kPost, SchedulePath(id, "trigger"), "{}");
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/schedules/{id}:trigger");
  if (!doc.ok()) return doc.status();
  EnqueueResult r;
  r.id = String(doc->root(), "id");
  r.state = String(doc->root(), "state");
  return r;
}

Result<BackfillResult> ApiClient::BackfillSchedule(std::string_view id, std::int64_t from_ms,
                                                   std::int64_t to_ms) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("from");
  w.Int64(from_ms);
  w.Key("to");
  w.Int64(to_ms);
  w.EndObject();
  Result<std::string> body = Call(HttpMethod::kPost, SchedulePath(id, "backfill"), Str(sb));
  if (!body.ok()) return body.status();
  Result<json::Document> doc = ParseReply(*body, "POST /v1/schedules/{id}:backfill");
  if (!doc.ok()) return doc.status();
  const Value& v = doc->root();
  return BackfillResult{Int(v, "emitted"), Int(v, "duplicates"), Int(v, "after_cursor"),
                        Int(v, "windows")};
}

}  // namespace ym::client
