// `yardmaster schedules ...`: the command-line definitions (CLI11) and their checks.

#include <CLI/CLI.hpp>

#include "cli/schedules.h"
#include "common/json.h"

namespace ym::cli {

void ScheduleCommands::SpecFlags::Add(CLI::App* app, bool create) {
  const std::string dflt = create ? " (default: " : " (unchanged when not given; default: ";
  cron_opt = app->add_option("--cron,-c", cron,
                             "When it fires: 5 fields MIN HOUR DOM MONTH DOW, 6 with seconds "
                             "first, @hourly/@daily/..., or `every 90s` (docs/cron.md)")
                 ->type_name("EXPR");
  if (create) cron_opt->required();
  tz_opt = app->add_option("--time-zone,-z", time_zone,
                           "IANA time zone of the expression" + dflt + "UTC)")
               ->type_name("ZONE");
  start_opt =
      app->add_option("--start-at", start_at, "No window before this time: epoch ms or RFC 3339")
          ->type_name("TIME");
  end_opt = app->add_option("--end-at", end_at, "No window after this time: epoch ms or RFC 3339")
                ->type_name("TIME");
  jitter_opt = app->add_option("--jitter-ms", jitter_ms,
                               "Delay each window's job by a fixed pseudo-random 0..N ms, "
                               "0..3600000" +
                                   dflt + "0)");
  missed_opt = app->add_option("--missed", missed,
                               "Windows missed while down or paused: catch_up, latest_only or "
                               "skip" +
                                   dflt + "latest_only)")
                   ->check(CLI::IsMember({"catch_up", "latest_only", "skip"}));
  count_opt = app->add_option(
      "--max-missed", max_count,
      "catch_up: emit at most the N most recent missed windows, 1..10000" + dflt + "100)");
  age_opt = app->add_option(
      "--max-age-ms", max_age_ms,
      "catch_up, latest_only: never emit a window older than this" + dflt + "86400000)");
  grace_opt = app->add_option(
      "--grace-ms", grace_ms,
      "A window this late is still on time (every policy emits it)" + dflt + "60000)");
  overlap_opt = app->add_option("--overlap", overlap,
                                "When the previous window's job is still live: skip, allow, "
                                "buffer_one or cancel_previous" +
                                    dflt + "skip)")
                    ->check(CLI::IsMember({"skip", "allow", "buffer_one", "cancel_previous"}));
  paused_opt = app->add_flag("--paused,!--active", paused,
                             create ? "Create it paused" : "Pause (--paused) or resume (--active)");
  spec_opts = {cron_opt,  tz_opt,  start_opt, end_opt,     jitter_opt, missed_opt,
               count_opt, age_opt, grace_opt, overlap_opt, paused_opt};

  const std::string job = create ? "" : " (with --queue and --kind: replaces the template)";
  queue_opt = app->add_option("--queue,-q", queue, "Queue of each window's job" + job);
  kind_opt = app->add_option("--kind,-k", kind, "Kind of each window's job" + job);
  if (create) {
    queue_opt->required();
    kind_opt->required();
  }
  payload_opt = app->add_option("--payload,-p", payload,
                                "Payload of each window's job: JSON text, @FILE or - for stdin "
                                "(default: null)")
                    ->type_name("JSON|@FILE|-");
  ns_opt = app->add_option("--namespace,-n", ns, "Namespace of the jobs (default: \"default\")");
  priority_opt = app->add_option("--priority", priority, "Priority of the jobs, -1000000..1000000")
                     ->check(CLI::Range(-1'000'000, 1'000'000));
  attempts_opt = app->add_option("--max-attempts", max_attempts,
                                 "Attempts before a job goes dead, 1..1000 (default: the queue's)")
                     ->check(CLI::Range(1, 1000));
  lease_opt = app->add_option("--lease-ms", lease_ms, "Lease length per attempt (ms)");
  timeout_opt = app->add_option("--timeout-ms", timeout_ms, "Longest run of one attempt (ms)");
  ck_opt = app->add_option("--concurrency-key", concurrency_key, "Concurrency key of the jobs");
  tag_opt = app->add_option("--tag,-t", tags, "A tag of the jobs; repeat for several")
                ->type_name("TAG")
                ->allow_extra_args(false);
  job_opts = {queue_opt,    kind_opt,  payload_opt, ns_opt, priority_opt,
              attempts_opt, lease_opt, timeout_opt, ck_opt, tag_opt};
}

Status ScheduleCommands::SpecFlags::Fill(bool create, client::ScheduleSpec* s,
                                         std::string* payload_arg) const {
  if (cron_opt->count() > 0) s->cron = cron;
  if (tz_opt->count() > 0) s->time_zone = time_zone;
  if (start_opt->count() > 0) {
    Result<std::int64_t> t = ParseTimeArg("--start-at", start_at);
    if (!t.ok()) return Validation(t.status().message());
    s->start_at_ms = *t;
  }
  if (end_opt->count() > 0) {
    Result<std::int64_t> t = ParseTimeArg("--end-at", end_at);
    if (!t.ok()) return Validation(t.status().message());
    s->end_at_ms = *t;
  }
  if (jitter_opt->count() > 0) s->jitter_ms = jitter_ms;
  if (missed_opt->count() > 0) s->missed_policy = missed;
  if (count_opt->count() > 0) s->missed_max_count = max_count;
  if (age_opt->count() > 0) s->missed_max_age_ms = max_age_ms;
  if (grace_opt->count() > 0) s->missed_grace_ms = grace_ms;
  if (overlap_opt->count() > 0) s->overlap = overlap;
  if (paused_opt->count() > 0) s->paused = paused;

  bool any_job = false;
  for (const CLI::Option* o : job_opts) any_job |= o->count() > 0;
  if (any_job) {
    // The template is replaced as a whole (docs/api.md), so it needs its two required members.
    if (queue_opt->count() == 0 || kind_opt->count() == 0) {
      return Validation(
          "schedules update: the job flags replace the whole template; give --queue and --kind "
          "with them");
    }
    client::EnqueueRequest job;
    job.queue = queue;
    job.kind = kind;
    if (ns_opt->count() > 0) job.ns = ns;
    if (priority_opt->count() > 0) job.priority = priority;
    if (attempts_opt->count() > 0) job.max_attempts = max_attempts;
    if (lease_opt->count() > 0) job.lease_ms = lease_ms;
    if (timeout_opt->count() > 0) job.timeout_ms = timeout_ms;
    if (ck_opt->count() > 0) job.concurrency_key = concurrency_key;
    job.tags = tags;
    // A literal payload is checked now; @FILE and - are read when the command runs.
    if (payload != "-" && (payload.empty() || payload.front() != '@')) {
      Result<json::Document> doc = json::Document::Parse(payload);
      if (!doc.ok()) {
        return Validation("--payload is not valid JSON: " + doc.status().message() +
                          " (quote JSON strings, e.g. --payload '\"text\"', or use @FILE)");
      }
    }
    *payload_arg = payload;
    s->job = std::move(job);
  } else if (!create) {
    bool any_spec = false;
    for (const CLI::Option* o : spec_opts) any_spec |= o->count() > 0;
    if (!any_spec) {
      return Validation("schedules update: give at least one change (--cron, --time-zone, ...)");
    }
  }
  return Status::Ok();
}

void ScheduleCommands::Add(CLI::App* app, const std::function<void(CLI::App*)>& add_common,
                           Invocation* inv) {
  root_ = app->add_subcommand(
      "schedules",
      "Durable cron: one job per window of a schedule, never twice (list, get, create, update, "
      "delete, pause, resume, trigger, backfill)");
  root_->require_subcommand(1);
  add_common(root_);
  auto sub = [&](const char* name, const char* help, bool with_id = true) {
    CLI::App* s = root_->add_subcommand(name, help);
    add_common(s);
    if (with_id) s->add_option("id", inv->schedule.id, "Schedule id")->required();
    return s;
  };
  list_ = sub("list", "List schedules with their next and last run", false);
  get_ = sub("get", "Show a schedule: its next fire times, last run, lag and history");
  next_opt_ = get_->add_option("--next", next_, "Show this many next fire times, 0..100 (def. 5)")
                  ->check(CLI::Range(std::int64_t{0}, std::int64_t{100}));
  create_ = sub("create", "Create a schedule (its windows start after now, or at --start-at)");
  create_flags_.Add(create_, /*create=*/true);
  update_ = sub("update",
                "Change a schedule's flags given; takes effect on its next window (the cursor "
                "and history are kept)");
  update_flags_.Add(update_, /*create=*/false);
  delete_ = sub("delete", "Delete a schedule and its history (jobs it emitted are kept)");
  pause_ = sub("pause", "Stop a schedule emitting jobs");
  resume_ = sub("resume", "Resume a paused schedule; windows missed meanwhile follow --missed");
  trigger_ = sub("trigger", "Enqueue one job from the schedule's template now");
  backfill_ = sub("backfill",
                  "Emit the schedule's past windows from --from to --to, each at most once ever");
  backfill_->add_option("--from", from_, "First time of the range: epoch ms or RFC 3339")
      ->type_name("TIME")
      ->required();
  backfill_->add_option("--to", to_, "Last time of the range (inclusive)")
      ->type_name("TIME")
      ->required();
}

bool ScheduleCommands::parsed() const { return root_ != nullptr && root_->parsed(); }

Status ScheduleCommands::Finish(Invocation* inv) const {
  if (list_->parsed()) {
    inv->command = Command::kSchedulesList;
  } else if (get_->parsed()) {
    inv->command = Command::kSchedulesGet;
    if (next_opt_->count() > 0) inv->schedule_next = next_;
  } else if (create_->parsed()) {
    inv->command = Command::kSchedulesCreate;
    return create_flags_.Fill(/*create=*/true, &inv->schedule, &inv->payload_arg);
  } else if (update_->parsed()) {
    inv->command = Command::kSchedulesUpdate;
    return update_flags_.Fill(/*create=*/false, &inv->schedule, &inv->payload_arg);
  } else if (delete_->parsed()) {
    inv->command = Command::kSchedulesDelete;
  } else if (pause_->parsed()) {
    inv->command = Command::kSchedulesPause;
  } else if (resume_->parsed()) {
    inv->command = Command::kSchedulesResume;
  } else if (trigger_->parsed()) {
    inv->command = Command::kSchedulesTrigger;
  } else {
    inv->command = Command::kSchedulesBackfill;
    Result<std::int64_t> from = ParseTimeArg("--from", from_);
    if (!from.ok()) return Validation(from.status().message());
    Result<std::int64_t> to = ParseTimeArg("--to", to_);
    if (!to.ok()) return Validation(to.status().message());
    inv->backfill_from_ms = *from;
    inv->backfill_to_ms = *to;
  }
  return Status::Ok();
}

}  // namespace ym::cli
