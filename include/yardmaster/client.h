// yardmaster::Client: the producer side of the C++ SDK (enqueue, inspect, cancel, replay).
//
// What: typed calls for the producer endpoints of the HTTP API v1 (docs/api.md): POST /v1/jobs,
// POST /v1/jobs:batch, GET /v1/jobs/{id}, POST /v1/jobs/{id}:cancel and :replay, and the bulk
// operations POST /v1/jobs:cancel, :replay and :delete by filter. Payloads and
// results travel as JSON text that the SDK passes through unchanged; the caller serializes with
// whatever JSON library it likes.
//
// Connections: one keep-alive HTTP/1.1 connection, opened by the first call and reused by the
// next ones; a connection the server closed while idle is replaced transparently.
//
// Threads: a Client may be shared by several threads. Calls are serialized on its one
// connection (a mutex), so a thread that needs its own throughput should own its own Client.
//
// Errors: every call returns a Status / Result (include/yardmaster/status.h), never throws.
// `unavailable` with http_status() == 0 means the server could not be reached; other codes are
// the server's (e.g. `not_found`, `invalid_state`, `validation_failed`, `resource_exhausted`).
// The SDK does not retry producer calls on its own: an enqueue whose reply was lost may or may
// not have been applied, and only the caller knows whether an idempotency key makes a retry
// safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "yardmaster/status.h"

namespace yardmaster {

// The URL used when neither ClientOptions::server_url nor $YM_URL is set.
inline constexpr std::string_view kDefaultServerUrl = "http://127.0.0.1:7433";

// The server URL to use: `explicit_url` when non-empty, else $YM_URL when set and non-empty,
// else kDefaultServerUrl.
std::string ResolveServerUrl(std::string_view explicit_url = {});

struct ClientOptions {
  // `http://HOST:PORT` or `https://HOST:PORT`; empty means ResolveServerUrl() ($YM_URL, then
  // the default).
  std::string server_url;
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{30'000};
  // https:// only: a PEM file of the CAs the server's certificate must chain to; empty means
  // $YM_CA_FILE when set, else the system's trusted CAs. The host name (or IP address) of the
  // URL is always checked against the certificate. (Last, so that aggregate initialization of
  // the fields above keeps working.)
  std::string ca_file;
  // https:// only, for a server that requires client certificates (mTLS): the client's PEM
  // certificate and unencrypted key; empty means $YM_CLIENT_CERT_FILE / $YM_CLIENT_KEY_FILE
  // when set, else none.
  std::string client_cert_file;
  std::string client_key_file;
  // An API token (docs/security.md, "Tokens"), sent as `Authorization: Bearer` with every
  // request; or a file whose first line is one. Both empty: $YM_TOKEN, else the file named by
  // $YM_TOKEN_FILE, else none. `token` wins over `token_file`.
  std::string token;
  std::string token_file;
};

struct RetryBackoff {
  std::int64_t initial_ms = 1000;
  std::int64_t max_ms = 3'600'000;
  double multiplier = 2.0;
};

// One job to enqueue. Unset optionals are not sent, so the queue's defaults apply.
struct EnqueueOptions {
  std::string queue;                  // required
  std::string kind;                   // required
  std::string payload_json = "null";  // any JSON text
  std::optional<std::string> ns;      // "namespace" on the wire
  std::optional<std::int32_t> priority;
  std::optional<std::int64_t> delay_ms;
  std::optional<std::int64_t> run_at_ms;
  std::optional<std::int32_t> max_attempts;
  std::optional<RetryBackoff> backoff;
  std::optional<std::int64_t> lease_ms;
  // Longest run of one attempt (1..86400000 ms; 0: none, even if the queue has one); the
  // broker fails an attempt that runs longer with type "timeout". Unset: the queue's.
  std::optional<std::int64_t> timeout_ms;
  std::optional<std::string> idempotency_key;
  std::optional<std::int64_t> idempotency_ttl_ms;
  std::optional<std::string> concurrency_key;
  std::vector<std::string> tags;
  // W3C trace context of the code that enqueues (docs/cpp-sdk.md, "Trace context"), e.g. from
  // an OpenTelemetry propagator's inject(); handed to the worker that runs the job. traceparent
  // is "00-<32 hex>-<16 hex>-<2 hex>"; the broker refuses a malformed one (validation_failed).
  std::optional<std::string> traceparent;
  std::optional<std::string> tracestate;  // only with a traceparent
};

struct Enqueued {
  std::string id;
  std::string state;       // "ready" or "scheduled"
  bool duplicate = false;  // an idempotency key matched an existing job; nothing was created
  // A singleton limit in mode "skip" found a live job of the key (docs/flow-control.md,
  // "Singleton and debounce"): `id` and `state` are that job's and nothing was created. (In
  // mode "refuse" the call fails with code "singleton_conflict", its message naming the job.)
  bool skipped = false;
  // The waiting jobs a debounce limit replaced with this one (cancelled, superseded_by it).
  std::vector<std::string> superseded;
};

// A job as GET /v1/jobs/{id} reports it. `json` is the server's whole object, so fields newer
// than this SDK are still reachable.
struct JobInfo {
  std::string id;
  std::string ns;
  std::string queue;
  std::string kind;
  std::string state;  // scheduled, ready, active, succeeded, dead, cancelled
  std::string payload_json;
  std::int32_t attempts = 0;
  std::int32_t max_attempts = 0;
  bool cancel_requested = false;
  std::optional<std::string> dead_reason;
  std::optional<std::string> last_error_json;
  std::optional<std::string> result_json;
  // The W3C trace context given at enqueue and the enqueue request's id; nullopt: none.
  std::optional<std::string> traceparent;
  std::optional<std::string> tracestate;
  std::optional<std::string> request_id;
  std::string json;

  // True in the terminal states: succeeded, dead, cancelled.
  bool ended() const { return state == "succeeded" || state == "dead" || state == "cancelled"; }
};

// Which jobs a search (Client::Search, GET /v1/jobs) or a bulk operation (CancelJobs,
// ReplayJobs, DeleteJobs) selects (docs/api.md): every field is optional and they combine with
// AND; live and finished jobs alike. Times are epoch milliseconds, `*_after` inclusive,
// `*_before` exclusive; a finished-at bound matches finished jobs only. A bulk operation refuses
// an empty filter unless BulkOptions::all is set, so that a mistake cannot act on every job.
struct JobFilter {
  std::optional<std::string> ns;  // "namespace" on the wire
  std::optional<std::string> queue;
  std::optional<std::string> kind;
  std::vector<std::string> states;  // any of these; empty: every state (the operation applies to)
  std::optional<std::string> tag;
  std::optional<std::int64_t> created_after_ms;
  std::optional<std::int64_t> created_before_ms;
  std::optional<std::int64_t> finished_after_ms;
  std::optional<std::int64_t> finished_before_ms;
};

// Client::Search: the filter's fields, and the pages to read.
struct JobSearch : JobFilter {
  std::int32_t page_size = 100;       // jobs per request, 1..1000
  std::optional<std::string> cursor;  // resume from a JobSearchPage::next_cursor
};

// One page of a search, in ascending id order. It may hold fewer than page_size jobs (even
// none) and still have a next_cursor: the server bounds the work of one request.
struct JobSearchPage {
  std::vector<JobInfo> jobs;
  std::optional<std::string> next_cursor;  // nullopt: the search is complete
};

// cancel: live jobs, as Cancel() does (a waiting one at once, a running one flagged);
// replay: dead and cancelled jobs, as Replay() does; delete: finished jobs only (succeeded,
// dead, cancelled; never a live one).
enum class BulkAction { kCancel, kReplay, kDelete };

struct BulkOptions {
  bool all = false;                   // every job the action applies to (the filter is empty)
  std::optional<std::int32_t> limit;  // jobs per request, 1..10000 (server default 1000)
  bool dry_run = false;               // count the matches, change nothing
  // The loop (CancelJobs, ReplayJobs, DeleteJobs): start at this cursor (a previous
  // next_cursor), and stop after this many requests (0: until done).
  std::string cursor;
  std::int64_t max_pages = 0;
};

// One request's answer, or a loop's totals.
struct BulkResult {
  std::int64_t matched = 0;
  std::int64_t applied = 0;           // cancelled, replayed or deleted
  std::int64_t cancel_requested = 0;  // cancel: running jobs flagged (counted in `applied`)
  std::int64_t skipped = 0;           // matched but already done or changed meanwhile
  std::int64_t pages = 0;             // requests sent (1 for a page)
  // Where to resume; nullopt when nothing more matches.
  std::optional<std::string> next_cursor;
};

// A rate: at most `count` starts per `period_ms` (1000, 60000, 3600000, 86400000: a second,
// minute, hour, day; any period up to a day) with a `burst` (0: the server's default, the
// least burst that reaches the rate on a clock of whole ms).
struct LimitRate {
  std::int64_t count = 1;
  std::int64_t period_ms = 1000;
  std::int64_t burst = 0;
};

// A calendar quota: at most `count` starts per `per` ("day", "week" from Monday, "month") in
// the IANA zone `time_zone`.
struct LimitQuota {
  std::int64_t count = 1;
  std::string per = "day";
  std::string time_zone = "UTC";
};

// A circuit breaker per key (docs/flow-control.md, "Circuit breakers"): a key opens after
// `consecutive_failures` failures in a row, or `failure_percent`% failures among the last
// `window` outcomes (once `min_samples` are in); open for `open_base_ms`, doubled after each
// failed trial up to `open_max_ms`. Unset members take the server's defaults.
struct LimitBreaker {
  std::optional<std::int64_t> consecutive_failures;
  std::optional<std::int64_t> window;
  std::optional<std::int64_t> min_samples;
  std::optional<std::int64_t> failure_percent;
  std::optional<std::int64_t> open_base_ms;
  std::optional<std::int64_t> open_max_ms;
};

// One key of a breaker with state: "open" (until next_open_at_ms, epoch ms), "half_open" (a
// trial is allowed, or out when trial_in_flight) or "closed" with failures recorded.
struct BreakerKey {
  std::string key;
  std::string state;
  std::int64_t opened_at_ms = 0;
  std::int64_t next_open_at_ms = 0;
  std::int64_t open_interval_ms = 0;
  bool trial_in_flight = false;
  std::int64_t consecutive_failures = 0;
};

// A limit (docs/flow-control.md): among the jobs it matches, per key, at most `concurrency`
// active jobs, `rate` starts per period and `quota` starts per calendar window, and a
// `breaker` that holds a failing key back (at least one of them). Unset match members match every
// value; `key` is empty (one count for all matched jobs), "concurrency_key", "kind", "namespace",
// "queue" or "payload.<field>[.<field>...]".
struct LimitSpec {
  std::string name;
  std::optional<std::string> match_queue;
  std::optional<std::string> match_kind;
  std::optional<std::string> match_namespace;
  std::string key;
  std::optional<std::int64_t> concurrency;
  std::optional<LimitRate> rate;
  std::optional<LimitQuota> quota;
  std::optional<LimitBreaker> breaker;
  // Key modes (docs/flow-control.md, "Singleton and debounce"), at most one, each enough
  // without a bound: "refuse" or "skip" (empty: none); or a debounce of debounce_delay_ms
  // (0..2592000000), with an optional max wait (debounce_delay_ms..2592000000).
  std::string singleton;
  std::optional<std::int64_t> debounce_delay_ms;
  std::optional<std::int64_t> debounce_max_wait_ms;
};

// A limit as the server shows it, with its live counts.
struct LimitInfo : LimitSpec {
  std::int64_t active_keys = 0;                              // keys with an active job
  std::vector<std::pair<std::string, std::int64_t>> active;  // the top keys, largest first
  // With a quota: the current window (epoch ms; 0 before any start) and its busiest keys.
  std::int64_t quota_window_start_ms = 0;
  std::int64_t quota_window_end_ms = 0;
  std::int64_t quota_used_keys = 0;
  std::vector<std::pair<std::string, std::int64_t>> quota_used;
  // With a breaker: how many keys are open or half-open, and the keys with state (tripped
  // first, at most 100).
  std::int64_t breaker_tripped_keys = 0;
  std::vector<BreakerKey> breaker_keys;
  // ResetBreaker: how many of the keys reset were open or half-open.
  std::int64_t reset_tripped_keys = 0;
  bool created = false;  // SetLimit: it was new
};

// A namespace's (tenant's) configuration (docs/flow-control.md, "Namespace limits"): at most
// `max_live_jobs` live jobs, at most `enqueue_rate` enqueues per period (429 namespace_limit
// past either), its `weight` among the namespaces of a queue, and at most `max_active` of its
// jobs leased at once across its queues (the rest wait, blocked_reason namespace_limit). Unset
// members are off.
struct NamespaceRateSpec {
  std::int64_t count = 1;
  std::int64_t period_ms = 1000;  // 1000, 60000, 3600000 or any 1..86400000
  std::int64_t burst = 0;         // 0: the server's default (count)
};
struct NamespaceSpec {
  std::string name;
  std::optional<std::int64_t> max_live_jobs;
  std::optional<NamespaceRateSpec> enqueue_rate;
  std::optional<std::int64_t> weight;      // 1..1000
  std::optional<std::int64_t> max_active;  // 1..1000000
};

// A namespace as the server shows it, with its live count.
struct NamespaceInfo : NamespaceSpec {
  std::int64_t live_jobs = 0;    // scheduled + ready + active
  std::int64_t active_jobs = 0;  // leased now
  bool created = false;          // SetNamespace: it was new
};

// A schedule (docs/cron.md): one job per window of `cron` in `time_zone`, from the template
// `job`, each window at most once ever. What CreateSchedule, ReplaceSchedule and UpdateSchedule
// send: members left unset are not sent (create and replace: the server's defaults; update:
// unchanged). Creating needs `cron` and `job`; the template is an enqueue without delay_ms,
// run_at_ms and idempotency_* (the schedule sets those).
struct ScheduleSpec {
  std::string id;
  std::optional<std::string> cron;  // "0 9 * * MON-FRI", "*/10 * * * * *", "@daily", "every 90s"
  std::optional<std::string> time_zone;  // IANA, default "UTC"
  std::optional<std::int64_t> start_at_ms;
  std::optional<std::int64_t> end_at_ms;
  std::optional<std::int64_t> jitter_ms;          // 0..3600000
  std::optional<std::string> missed_policy;       // "catch_up", "latest_only", "skip"
  std::optional<std::int64_t> missed_max_count;   // catch_up: 1..10000
  std::optional<std::int64_t> missed_max_age_ms;  // 1000..31622400000
  std::optional<std::int64_t> missed_grace_ms;    // how late a window is still on time
  std::optional<std::string> overlap;  // "skip", "allow", "buffer_one", "cancel_previous"
  std::optional<bool> paused;
  std::optional<EnqueueOptions> job;
};

// One decision of a schedule's history: a window emitted, or windows skipped (window..through).
struct ScheduleDecision {
  std::int64_t window_ms = 0;
  std::int64_t through_ms = 0;
  std::string outcome;  // "emitted" or "skipped"
  std::string reason;   // docs/cron.md, "History"
  std::string job_id;   // empty when none
  std::int64_t at_ms = 0;
  std::optional<std::int64_t> lag_ms;
};

// A schedule as the server shows it: its spec (defaults filled in), state and progress.
struct ScheduleInfo {
  std::string id;
  std::string cron;
  std::string time_zone;
  std::optional<std::int64_t> start_at_ms;
  std::optional<std::int64_t> end_at_ms;
  std::int64_t jitter_ms = 0;
  std::string missed_policy;
  std::int64_t missed_max_count = 0;
  std::int64_t missed_max_age_ms = 0;
  std::int64_t missed_grace_ms = 0;
  std::string overlap;
  bool paused = false;
  std::string job_json;  // the template, as JSON
  std::string state;     // "active", "paused", "ended"
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::int64_t cursor_ms = 0;  // every window at or before it is decided
  std::optional<std::int64_t> next_fire_at_ms;
  std::vector<std::int64_t> next_fire_times;
  std::string live_job;  // the latest window's job while it is live, else empty
  std::optional<std::int64_t> buffered_window_ms;
  std::optional<ScheduleDecision> last_run;  // the latest emitted window (at_ms: enqueued at)
  std::optional<std::int64_t> lag_last_ms;
  std::optional<std::int64_t> lag_max_recent_ms;
  std::int64_t lag_samples = 0;
  std::vector<ScheduleDecision> history;  // newest first (GetSchedule only)
};

// BackfillSchedule: of the `windows` in the range, `emitted` now, `duplicates` emitted before,
// `after_cursor` left to the schedule's own sequence.
struct BackfillResult {
  std::int64_t emitted = 0;
  std::int64_t duplicates = 0;
  std::int64_t after_cursor = 0;
  std::int64_t windows = 0;
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // POST /v1/jobs.
  Result<Enqueued> Enqueue(const EnqueueOptions& job);
  // POST /v1/jobs:batch with 1..1000 jobs. The outer Result fails only when the whole request
  // failed; each item then has its own Result, in request order.
  Result<std::vector<Result<Enqueued>>> EnqueueBatch(const std::vector<EnqueueOptions>& jobs);
  // GET /v1/jobs/{id}; `not_found` once retention removed the job.
  Result<JobInfo> Get(std::string_view id);
  // Waits for the job to end (succeeded, dead or cancelled) and returns it, with its result;
  // the server wakes the request when the job ends (GET /v1/jobs/{id}?wait_ms, at most 30 s per
  // request, repeated as needed). With `timeout`, returns after at most about that long: the
  // job as last seen, which is still live unless ended() says otherwise. Without it, waits as
  // long as it takes. The client's connection is held meanwhile.
  Result<JobInfo> Wait(std::string_view id,
                       std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // POST /v1/jobs/{id}:cancel. A ready/scheduled job is cancelled at once; an active one is
  // flagged and its worker's handler sees JobContext::cancelled(). `invalid_state` for a
  // terminal job.
  Result<JobInfo> Cancel(std::string_view id);
  // POST /v1/jobs/{id}:replay of a dead or cancelled job (a new run, attempts reset).
  Result<JobInfo> Replay(std::string_view id);
  // GET /v1/jobs with the filters of `search`: one page. To read them all, call again with
  // search.cursor = page.next_cursor until it is nullopt.
  Result<JobSearchPage> Search(const JobSearch& search);

  // POST /v1/jobs:cancel, :replay or :delete: one request, at most `options.limit` matching
  // jobs after `cursor` (empty: from the start). A request retried after a lost answer is safe:
  // what the first try did is skipped, not done twice.
  Result<BulkResult> BulkPage(BulkAction action, const JobFilter& filter, std::string_view cursor,
                              const BulkOptions& options = {});
  // The whole operation: one request after another, following next_cursor until done (or
  // options.max_pages), with the totals. On an error the pages before it stand; the error is
  // returned (resume from the last next_cursor with BulkPage or options.cursor).
  Result<BulkResult> CancelJobs(const JobFilter& filter, const BulkOptions& options = {});
  Result<BulkResult> ReplayJobs(const JobFilter& filter, const BulkOptions& options = {});
  Result<BulkResult> DeleteJobs(const JobFilter& filter, const BulkOptions& options = {});

  // PUT /v1/limits/{name}: creates or replaces a limit, answered once durable.
  // `validation_failed` names the bad field.
  Result<LimitInfo> SetLimit(const LimitSpec& limit);
  // GET /v1/limits/{name}; `not_found` when there is no such limit.
  Result<LimitInfo> GetLimit(std::string_view name);
  // GET /v1/limits, every page, in name order.
  Result<std::vector<LimitInfo>> ListLimits();
  // DELETE /v1/limits/{name}; the jobs it held back run at once.
  Status DeleteLimit(std::string_view name);
  // POST /v1/limits/{name}:reset-breaker: closes the limit's breaker for `key` (every key when
  // nullopt) at once; the jobs it held back run. `not_found` when there is no such limit,
  // `validation_failed` when it has no breaker.
  Result<LimitInfo> ResetBreaker(std::string_view name,
                                 const std::optional<std::string>& key = std::nullopt);

  // PUT /v1/namespaces/{ns}: creates or replaces a namespace's configuration, answered once
  // durable. `validation_failed` names the bad field.
  Result<NamespaceInfo> SetNamespace(const NamespaceSpec& ns);
  // GET /v1/namespaces/{ns}; `not_found` when it has no configuration.
  Result<NamespaceInfo> GetNamespace(std::string_view name);
  // GET /v1/namespaces, every page, in name order.
  Result<std::vector<NamespaceInfo>> ListNamespaces();
  // DELETE /v1/namespaces/{ns}: its limits are lifted and its weight is 1 again.
  Status DeleteNamespace(std::string_view name);

  // POST /v1/schedules: creates a schedule, answered once durable; `already_exists` when the
  // id is taken, `validation_failed` naming the bad member.
  Result<ScheduleInfo> CreateSchedule(const ScheduleSpec& spec);
  // PUT /v1/schedules/{id}: replaces its spec; PATCH (UpdateSchedule): only the members set.
  // Both keep the cursor and history and take effect on the next window; `not_found`.
  Result<ScheduleInfo> ReplaceSchedule(const ScheduleSpec& spec);
  Result<ScheduleInfo> UpdateSchedule(const ScheduleSpec& spec);
  // GET /v1/schedules/{id}, with `next` next fire times (nullopt: the server's default, 5).
  Result<ScheduleInfo> GetSchedule(std::string_view id,
                                   std::optional<std::int64_t> next = std::nullopt);
  // GET /v1/schedules, every page, in id order (without history).
  Result<std::vector<ScheduleInfo>> ListSchedules();
  // DELETE /v1/schedules/{id}: the schedule and its history; jobs it emitted are kept.
  Status DeleteSchedule(std::string_view id);
  // POST /v1/schedules/{id}:pause and :resume (missed windows then follow its policy).
  Result<ScheduleInfo> PauseSchedule(std::string_view id);
  Result<ScheduleInfo> ResumeSchedule(std::string_view id);
  // POST /v1/schedules/{id}:trigger: one job from the template now, outside the windows.
  Result<Enqueued> TriggerSchedule(std::string_view id);
  // POST /v1/schedules/{id}:backfill: the windows in [from_ms, to_ms] at or before the cursor,
  // each emitted at most once ever.
  Result<BackfillResult> BackfillSchedule(std::string_view id, std::int64_t from_ms,
                                          std::int64_t to_ms);

  // The URL this client talks to.
  const std::string& server_url() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace yardmaster
