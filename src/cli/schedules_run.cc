// `yardmaster schedules ...`: running the commands and printing schedules.

#include <ostream>
#include <utility>

#include "cli/format.h"
#include "cli/schedules.h"
#include "common/json.h"

namespace ym::cli {
namespace {

using client::Schedule;
using client::ScheduleDecision;

std::string MsOr(const std::optional<std::int64_t>& ms, std::string_view none = "-") {
  return ms ? FormatTime(*ms) : std::string(none);
}

std::string LagText(const std::optional<std::int64_t>& ms) {
  return ms ? FormatDuration(*ms) : "-";
}

// "queue/kind" of the template, read from the server's JSON of it.
std::string TemplateText(const Schedule& s) {
  Result<json::Document> doc = json::Document::Parse(s.job_json);
  if (!doc.ok() || !doc->root().IsObject()) return s.job_json;
  std::string queue, kind;
  for (const auto& m : doc->root()) {
    if (!m.value.IsString()) continue;
    if (m.name.GetString() == "queue") queue = m.value.GetString();
    if (m.name.GetString() == "kind") kind = m.value.GetString();
  }
  return queue + "/" + kind;
}

std::string MissedText(const Schedule& s) {
  std::string t = s.missed_policy;
  if (s.missed_policy == "catch_up") t += ", at most " + std::to_string(s.missed_max_count);
  if (s.missed_policy != "skip") t += ", max age " + FormatDuration(s.missed_max_age_ms);
  return t + ", grace " + FormatDuration(s.missed_grace_ms);
}

std::string WindowText(const ScheduleDecision& d) {
  if (d.through_ms == d.window_ms) return FormatTime(d.window_ms);
  return FormatTime(d.window_ms) + " .. " + FormatTime(d.through_ms);
}

void PrintSchedule(const Schedule& s, std::ostream& out) {
  std::vector<std::pair<std::string, std::string>> f = {
      {"schedule", s.id},     {"cron", s.cron},    {"time_zone", s.time_zone},
      {"state", s.state},     {"job", s.job_json}, {"missed_runs", MissedText(s)},
      {"overlap", s.overlap},
  };
  if (s.start_at_ms || s.end_at_ms) {
    f.emplace_back("bounds", MsOr(s.start_at_ms, "(none)") + " .. " + MsOr(s.end_at_ms, "(none)"));
  }
  if (s.jitter_ms > 0) f.emplace_back("jitter", FormatDuration(s.jitter_ms));
  f.emplace_back("cursor", FormatTime(s.cursor_ms));
  f.emplace_back("next_fire_at", MsOr(s.next_fire_at_ms));
  if (s.last_run) {
    f.emplace_back("last_run", FormatTime(s.last_run->window_ms) + " -> job " + s.last_run->job_id +
                                   ", lag " + LagText(s.last_run->lag_ms));
  } else {
    f.emplace_back("last_run", "-");
  }
  f.emplace_back("lag", "last " + LagText(s.lag_last_ms) + ", max " + LagText(s.lag_max_recent_ms) +
                            " over " + std::to_string(s.lag_samples) + " runs");
  f.emplace_back("live_job", s.live_job.empty() ? "-" : s.live_job);
  if (s.buffered_window_ms) f.emplace_back("buffered_window", FormatTime(*s.buffered_window_ms));
  f.emplace_back("created_at", FormatTime(s.created_at_ms));
  f.emplace_back("updated_at", FormatTime(s.updated_at_ms));
  PrintFields(out, f);
  if (!s.next_fire_times.empty()) {
    out << "\nnext fire times:\n";
    for (std::int64_t t : s.next_fire_times) out << "  " << FormatTime(t) << '\n';
  }
  if (!s.history.empty()) {
    out << "\nhistory (newest first):\n";
    Table t({"WINDOW", "OUTCOME", "REASON", "JOB", "DECIDED_AT", "LAG"},
            {false, false, false, true, false, true});
    for (const ScheduleDecision& d : s.history) {
      t.AddRow({WindowText(d), d.outcome, d.reason, d.job_id.empty() ? "-" : d.job_id,
                FormatTime(d.at_ms), LagText(d.lag_ms)});
    }
    t.Print(out);
  }
}

}  // namespace

int RunSchedules(const Invocation& inv, client::ApiClient& api, std::istream& in, std::ostream& out,
                 std::ostream& err,
                 const std::function<int(const Status&, const client::ApiClient&)>& fail) {
  const std::string& id = inv.schedule.id;
  switch (inv.command) {
    case Command::kSchedulesList: {
      Result<std::vector<Schedule>> r = api.ListSchedules();
      if (!r.ok()) return fail(r.status(), api);
      if (inv.json) {
        PrintMergedPages(*r, out);
        return kExitOk;
      }
      if (r->empty()) {
        out << "no schedules\n";
        return kExitOk;
      }
      Table t({"SCHEDULE", "CRON", "TIME_ZONE", "STATE", "NEXT_FIRE", "LAST_RUN", "LAG", "JOB"},
              {false, false, false, false, false, false, true, false});
      for (const Schedule& s : *r) {
        t.AddRow({s.id, s.cron, s.time_zone, s.state, MsOr(s.next_fire_at_ms),
                  s.last_run ? FormatTime(s.last_run->window_ms) : "-", LagText(s.lag_last_ms),
                  TemplateText(s)});
      }
      t.Print(out);
      return kExitOk;
    }
    case Command::kSchedulesGet:
    case Command::kSchedulesCreate:
    case Command::kSchedulesUpdate:
    case Command::kSchedulesPause:
    case Command::kSchedulesResume: {
      client::ScheduleSpec spec = inv.schedule;
      if (spec.job) {
        Result<std::string> payload = ResolvePayload(inv.payload_arg, in);
        if (!payload.ok()) {
          err << "error: " << payload.status().message() << '\n';
          return kExitUsage;
        }
        spec.job->payload_json = std::move(*payload);
      }
      const Command c = inv.command;
      Result<Schedule> r = c == Command::kSchedulesGet      ? api.GetSchedule(id, inv.schedule_next)
                           : c == Command::kSchedulesCreate ? api.CreateSchedule(spec)
                           : c == Command::kSchedulesUpdate
                               ? api.UpdateSchedule(spec, true)
                               : api.PauseSchedule(id, c == Command::kSchedulesPause);
      if (!r.ok()) return fail(r.status(), api);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else if (c == Command::kSchedulesGet) {
        PrintSchedule(*r, out);
      } else {
        const char* what = c == Command::kSchedulesCreate   ? "created"
                           : c == Command::kSchedulesUpdate ? "updated"
                           : c == Command::kSchedulesPause  ? "paused"
                                                            : "resumed";
        out << "schedule " << r->id << " " << what << " (" << r->state << "); next fire at "
            << MsOr(r->next_fire_at_ms, "none") << '\n';
      }
      return kExitOk;
    }
    case Command::kSchedulesDelete: {
      Status s = api.DeleteSchedule(id);
      if (!s.ok()) return fail(s, api);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else {
        out << "schedule " << id << " deleted (the jobs it emitted are kept)\n";
      }
      return kExitOk;
    }
    case Command::kSchedulesTrigger: {
      Result<client::EnqueueResult> r = api.TriggerSchedule(id);
      if (!r.ok()) return fail(r.status(), api);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else {
        out << "schedule " << id << ": enqueued job " << r->id << " (" << r->state << ")\n";
      }
      return kExitOk;
    }
    case Command::kSchedulesBackfill: {
      Result<client::BackfillResult> r =
          api.BackfillSchedule(id, inv.backfill_from_ms, inv.backfill_to_ms);
      if (!r.ok()) return fail(r.status(), api);
      if (inv.json) {
        out << api.last_body() << '\n';
      } else {
        out << "schedule " << id << ": " << r->windows << " windows in the range; " << r->emitted
            << " emitted, " << r->duplicates << " already emitted before, " << r->after_cursor
            << " after the cursor (left to the schedule)\n";
      }
      return kExitOk;
    }
    default:
      break;
  }
  err << "error: internal: not a schedules command\n";
  return kExitServerError;
}

}  // namespace ym::cli
