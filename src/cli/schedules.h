// `yardmaster schedules ...`: durable cron from the command line (docs/cli.md, "schedules").
//
// The parse half registers the subcommands on the CLI11 app (ParseCommandLine calls Add before
// parsing and Finish after); the run half executes a parsed schedules Invocation. Internal to
// src/cli.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "client/api_client.h"
#include "common/status.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace ym::cli {

class ScheduleCommands {
 public:
  // Adds `schedules` and its subcommands to `app`; `add_common` adds the shared options
  // (--server, --json) to each. `inv` receives what CLI11 binds directly.
  void Add(CLI::App* app, const std::function<void(CLI::App*)>& add_common, Invocation* inv);
  // True when the command line named `schedules`.
  bool parsed() const;
  // Sets inv->command and the spec from the flags given; a usage error (kValidation) for what
  // CLI11 cannot check (a time that does not parse, --payload that is not JSON, update without
  // any change, job flags without --queue and --kind).
  Status Finish(Invocation* inv) const;

 private:
  // The flags shared by create and update.
  struct SpecFlags {
    std::string cron, time_zone, start_at, end_at, missed, overlap;
    std::int64_t jitter_ms = 0, max_count = 0, max_age_ms = 0, grace_ms = 0;
    bool paused = false;
    // The job template.
    std::string queue, kind, ns, concurrency_key;
    std::string payload = "null";
    std::int32_t priority = 0, max_attempts = 0;
    std::int64_t lease_ms = 0, timeout_ms = 0;
    std::vector<std::string> tags;
    std::vector<CLI::Option*> spec_opts;  // every spec flag but the job's
    std::vector<CLI::Option*> job_opts;   // the job template's flags
    CLI::Option *cron_opt, *tz_opt, *start_opt, *end_opt, *jitter_opt, *missed_opt, *count_opt,
        *age_opt, *grace_opt, *overlap_opt, *paused_opt, *queue_opt, *kind_opt, *ns_opt, *ck_opt,
        *payload_opt, *priority_opt, *attempts_opt, *lease_opt, *timeout_opt, *tag_opt;

    void Add(CLI::App* app, bool create);
    Status Fill(bool create, client::ScheduleSpec* spec, std::string* payload_arg) const;
  };

  CLI::App* root_ = nullptr;
  CLI::App *list_ = nullptr, *get_ = nullptr, *create_ = nullptr, *update_ = nullptr,
           *delete_ = nullptr, *pause_ = nullptr, *resume_ = nullptr, *trigger_ = nullptr,
           *backfill_ = nullptr;
  SpecFlags create_flags_, update_flags_;
  std::int64_t next_ = 0;
  CLI::Option* next_opt_ = nullptr;
  std::string from_, to_;
};

// Runs a schedules command (inv.command is one of the kSchedules*). `fail` reports a failed
// call (stderr text, exit code) the way every command does.
int RunSchedules(const Invocation& inv, client::ApiClient& api, std::istream& in, std::ostream& out,
                 std::ostream& err,
                 const std::function<int(const Status&, const client::ApiClient&)>& fail);

}  // namespace ym::cli
