// The `yardmaster` command-line client: every command except `server` (docs/cli.md).
//
// What: ParseCommandLine() turns arguments into an Invocation without any I/O, so tests can
// check every usage error without a server; Execute() runs one Invocation against the server
// through ApiClient and prints either readable tables or the server's JSON (`--json`).
//
// Exit codes are part of the scriptable contract:
//   0 success, 1 the server reported an error (`error: <code>: <message>` on stderr),
//   2 usage error (bad flags, bad payload, bad URL), 3 the server is unreachable.
//
// Threads: single-threaded; one call at a time.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/api_client.h"
#include "common/status.h"

namespace ym::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitServerError = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitUnreachable = 3;
inline constexpr int kExitJobFailed = 4;    // jobs wait: the job ended dead or cancelled
inline constexpr int kExitWaitTimeout = 5;  // jobs wait: --timeout passed before the job ended

// Used when neither --server nor YM_URL says otherwise.
inline constexpr std::string_view kDefaultServerUrl = "http://127.0.0.1:7433";

enum class Command {
  kEnqueue,
  kJobsGet,
  kJobsWait,
  kJobsList,
  kJobsCancel,
  kJobsReplay,
  kJobsBulk,  // jobs cancel|replay|delete with a filter (or --all) instead of an id
  kQueuesList,
  kQueuesGet,
  kQueuesPause,
  kQueuesResume,
  kQueuesReset,
  kLimitsList,
  kLimitsGet,
  kLimitsSet,
  kLimitsDelete,
  kLimitsResetBreaker,
  kQueuesSet,
  kNamespacesList,
  kNamespacesGet,
  kNamespacesSet,
  kNamespacesDelete,
  kNamespacesExport,
  kNamespacesWipe,
  kSchedulesList,
  kSchedulesGet,
  kSchedulesCreate,
  kSchedulesUpdate,  // PATCH: only the flags given
  kSchedulesDelete,
  kSchedulesPause,
  kSchedulesResume,
  kSchedulesTrigger,
  kSchedulesBackfill,
  kDeadList,
  kDeadReplay,
  kInfo,
  kAlertsList,
  kTokensCreate,
  kTokensList,
  kTokensRevoke,
  kTokensNewSecret,  // prints a fresh secret; needs no server
  kAuditList,
  kAuditCheckpoint,
  kAuditVerify,
};

// One parsed command line; only the fields of `command` are meaningful.
struct Invocation {
  Command command = Command::kInfo;
  std::string server_url;        // already validated by client::ParseBaseUrl
  std::string ca_file;           // --ca-file (https:// only); empty: $YM_CA_FILE, else the system's
  std::string client_cert_file;  // --client-cert-file/--client-key-file (mTLS); empty: $YM_...
  std::string client_key_file;
  // --token / --token-file (client/http_client.h ResolveToken: then $YM_TOKEN, $YM_TOKEN_FILE).
  std::string token;
  std::string token_file;
  bool json = false;

  // enqueue. `enqueue.payload_json` is filled from `payload_arg` by ResolvePayload() at run time
  // because `@file` and `-` read input; a literal payload is already checked while parsing.
  client::EnqueueRequest enqueue;
  std::string payload_arg = "null";

  std::string job_id;                    // jobs get|wait|cancel|replay
  std::optional<double> wait_timeout_s;  // jobs wait --timeout; nullopt: as long as it takes
  std::string queue_name;                // queues NAME, queues pause|resume
  bool create_queue = false;  // queues pause|resume --create: create it if it does not exist
  client::Limit limit;        // limits get|set|delete|reset-breaker (name), set (the rest)
  std::optional<std::string> breaker_key;  // limits reset-breaker --key; nullopt: every key
  client::QueueUpdate queue_update;        // queues set
  client::Namespace ns;     // namespaces get|set|delete (name), namespaces set (the rest)
  std::string output_file;  // namespaces export -o FILE; empty: standard output
  std::optional<std::int32_t> wipe_limit;  // namespaces wipe --limit (per request)
  client::TokenRequest token_create;       // tokens create
  std::string token_id;                    // tokens revoke
  client::ListJobsRequest list_jobs;
  client::ListDeadRequest list_dead;
  bool all_pages = false;  // jobs list --all, dead list --all: follow next_cursor to the end
  client::DeadReplayRequest dead_replay;
  // jobs cancel|replay|delete by filter: `bulk.action` names the operation. Loops over the
  // cursor (at most `bulk_max_pages` requests when set), printing each page's counts.
  client::BulkRequest bulk;
  std::optional<std::int64_t> bulk_max_pages;
  // schedules: `schedule.id` names it; create/update fill the spec (its job template's payload
  // comes from `payload_arg`, resolved at run time like enqueue's). get --next N; backfill.
  client::ScheduleSpec schedule;
  std::optional<std::int64_t> schedule_next;
  std::int64_t backfill_from_ms = 0;
  std::int64_t backfill_to_ms = 0;
  // audit list|checkpoint|verify (cli/audit.h).
  struct AuditArgs {
    std::uint64_t after = 0;
    std::uint32_t limit = 100;
    bool all = false;
    std::string checkpoint_file;  // verify --checkpoint
    std::string key_file;         // verify --key-file
    std::string db;               // verify --db: read this store file instead of the server
  } audit;
};

struct ParseOutcome {
  // Set when a command should run; otherwise the process exits with `exit_code` after printing
  // `out` (help) to stdout and `err` (usage errors) to stderr.
  std::optional<Invocation> invocation;
  int exit_code = kExitOk;
  std::string out;
  std::string err;
};

// Parses the arguments after the program name. `env_url` is $YM_URL (nullopt when unset); it is
// passed in rather than read here so tests control it.
ParseOutcome ParseCommandLine(const std::vector<std::string>& args,
                              const std::optional<std::string>& env_url);

// A --payload argument: JSON text, `@path` for a file, or `-` for all of stdin. Returns the
// JSON text, or `validation_failed` / `invalid_request` when it cannot be read or is not JSON.
Result<std::string> ResolvePayload(std::string_view arg, std::istream& in);

// A --run-at value: Unix epoch milliseconds, or an RFC 3339 UTC/offset time such as
// `2024-05-01T12:00:00Z` or `2024-05-01T14:00:00.250+02:00`.
Result<std::int64_t> ParseRunAt(std::string_view text);
// `limits set --rate N/second|minute|hour|day` (also N/s, N/m, N/h, N/d) and
// `--quota N/day|week|month`: kInvalidRequest naming the flag for anything else.
Result<client::LimitRate> ParseRateFlag(std::string_view text);
Result<client::LimitQuota> ParseQuotaFlag(std::string_view text);
// The same for any time option (`option` names it in the error), e.g. --created-after.
Result<std::int64_t> ParseTimeArg(std::string_view option, std::string_view text);

// Runs a parsed command and returns the process exit code.
int Execute(const Invocation& invocation, std::istream& in, std::ostream& out, std::ostream& err);

// The whole CLI: parse argv (argv[0] is the program), run, return the exit code.
int Main(int argc, char** argv);

}  // namespace ym::cli
