// ApiClient: typed calls for every endpoint of the Yardmaster HTTP API v1 (docs/api.md).
//
// What: each method builds the request body with the field names of docs/api.md, sends it over
// one keep-alive HttpClient and decodes the reply into plain structs. Error replies
// (`{"error":{"code","message"}}`) become a Status whose Code is the one named by the server,
// so callers switch on Code rather than on HTTP statuses. Payloads, results and other
// user-defined JSON travel as JSON text (`*_json` fields) so the client never reinterprets them.
//
// Ownership: an ApiClient owns its HttpClient (and so its connection). Returned values are
// plain copies. Every job and queue also keeps the server's JSON text of that object (`json`),
// so tools can print exactly what the server said, including fields newer than this client.
//
// Threads: one client per thread; it is movable, not copyable, and not safe for concurrent use.
//
// Errors: a method fails with
//   - the server's code (not_found, stale_lease, validation_failed, ...) when the server replied
//     with an error; `last_http_status()` is then that reply's HTTP status;
//   - `unavailable` with `last_http_status() == 0` when no reply arrived at all (refused,
//     timed out, reset): the server is unreachable;
//   - `internal` when a 2xx reply does not have the documented shape.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/http_client.h"
#include "common/status.h"

namespace ym::client {

// Parses a stable error code name ("stale_lease") back into its Code; nullopt when unknown.
std::optional<Code> ParseCodeName(std::string_view name);

// The Code that an HTTP status maps to when an error reply carries no (known) code, e.g. from a
// proxy in between. Mirrors common/status.h's HttpStatus() in reverse.
Code CodeForHttpStatus(int http_status);

// Turns an HTTP error reply into a Status: the code named in `{"error":{"code","message"}}` when
// the body has one that we know, otherwise CodeForHttpStatus() with the body (or the status) as
// message. Must only be called for non-2xx statuses.
Status StatusFromErrorReply(int http_status, std::string_view body);

struct Backoff {
  std::int64_t initial_ms = 1000;
  std::int64_t max_ms = 3'600'000;
  double multiplier = 2.0;
};

// One job to enqueue; unset optionals are not sent, so the server applies the queue's defaults.
struct EnqueueRequest {
  std::string queue;
  std::string kind;
  std::string payload_json = "null";  // must be well-formed JSON text
  std::optional<std::string> ns;      // "namespace" on the wire
  std::optional<std::int32_t> priority;
  std::optional<std::int64_t> delay_ms;
  std::optional<std::int64_t> run_at_ms;  // "run_at" on the wire, epoch ms
  std::optional<std::int32_t> max_attempts;
  std::optional<Backoff> backoff;
  std::optional<std::int64_t> lease_ms;
  std::optional<std::int64_t> timeout_ms;  // one attempt's longest run; 0: none
  std::optional<std::string> idempotency_key;
  std::optional<std::int64_t> idempotency_ttl_ms;
  std::optional<std::string> concurrency_key;
  std::vector<std::string> tags;
  // W3C trace context, sent as the job's body fields (docs/api.md, "Trace context").
  std::optional<std::string> traceparent;
  std::optional<std::string> tracestate;
};

struct EnqueueResult {
  std::string id;
  std::string state;
  bool duplicate = false;  // an idempotency key matched an existing job; nothing was created
  // A singleton limit in mode skip found a live job of the key: `id` is that job's, nothing
  // was created. `superseded`: the waiting jobs a debounce limit replaced with this one.
  bool skipped = false;
  std::vector<std::string> superseded;
};

struct JobAttemptError {
  std::int32_t attempt = 0;
  std::string type;
  std::string message;
  std::int64_t at_ms = 0;
};

struct JobLease {
  std::string worker_id;
  std::int64_t expires_at_ms = 0;
  std::optional<std::int64_t> deadline_at_ms;  // the attempt's timeout deadline, if any
};

struct Job {
  std::string id;
  std::string ns;
  std::string queue;
  std::string kind;
  std::string state;
  std::int32_t priority = 0;
  std::string payload_json = "null";
  std::int32_t attempts = 0;
  std::int32_t max_attempts = 0;
  std::int32_t runs = 0;
  std::optional<Backoff> backoff;
  std::int64_t lease_ms = 0;
  std::optional<std::int64_t> timeout_ms;  // nullopt: none
  std::optional<std::string> idempotency_key;
  std::optional<std::string> concurrency_key;
  std::vector<std::string> tags;
  std::int64_t run_at_ms = 0;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::optional<std::int64_t> finished_at_ms;
  bool cancel_requested = false;
  std::optional<std::string> dead_reason;
  std::optional<std::string> last_error_json;  // whatever the server reports, as JSON text
  std::vector<JobAttemptError> errors;
  std::optional<std::string> result_json;
  std::optional<JobLease> lease;  // only while active
  std::optional<std::string> blocked_reason;
  std::optional<std::int64_t> blocked_until_ms;  // when it may run next, when known
  std::optional<std::string> progress_json;      // the running attempt's progress, a JSON object
  std::optional<std::string> traceparent;        // W3C trace context given at enqueue
  std::optional<std::string> tracestate;
  std::optional<std::string> request_id;  // the enqueue request's id
  std::string json;                       // the server's JSON object for this job
};

// Which jobs a search (GET /v1/jobs) or a bulk operation (POST /v1/jobs:cancel|:replay|:delete)
// selects (docs/api.md): every field that is set must match; unset fields are not sent. Times
// are epoch ms, `*_after` inclusive, `*_before` exclusive. A bulk operation refuses an empty
// filter unless `all` is set on its request.
struct JobFilterParams {
  std::optional<std::string> ns;  // "namespace" on the wire
  std::optional<std::string> queue;
  std::optional<std::string> kind;
  std::vector<std::string> states;  // any of these; empty: every state (the action applies to)
  std::optional<std::string> tag;
  std::optional<std::int64_t> created_after_ms;  // "created_after" on the wire
  std::optional<std::int64_t> created_before_ms;
  std::optional<std::int64_t> finished_after_ms;
  std::optional<std::int64_t> finished_before_ms;
};

// GET /v1/jobs: one page.
struct ListJobsRequest {
  JobFilterParams filter;
  std::optional<std::int32_t> limit;
  std::optional<std::string> cursor;
};

struct JobPage {
  std::vector<Job> items;
  std::optional<std::string> next_cursor;  // nullopt on the last page
};

struct LeaseRequest {
  std::vector<std::string> queues;
  std::uint32_t max = 1;
  std::int64_t wait_ms = 0;  // long-poll up to this long (server max 30000) when nothing is ready
  std::string worker_id;
  std::optional<std::int64_t> lease_ms;
};

struct LeasedJob {
  std::string id;
  std::string ns;
  std::string queue;
  std::string kind;
  std::string payload_json = "null";
  std::int32_t attempt = 0;
  std::int32_t max_attempts = 0;
  std::int32_t priority = 0;
  std::int64_t created_at_ms = 0;
  std::vector<std::string> tags;
  std::string token;
  std::int64_t expires_at_ms = 0;
  // The job's execution timeout and this attempt's deadline (server wall clock); nullopt: none.
  std::optional<std::int64_t> timeout_ms;
  std::optional<std::int64_t> deadline_at_ms;
  // W3C trace context given at enqueue and the enqueue request's id; empty: none.
  std::string traceparent;
  std::string tracestate;
  std::string request_id;
};

struct HeartbeatResult {
  std::int64_t expires_at_ms = 0;
  bool cancel_requested = false;
};

struct FailureInfo {
  std::string type;
  std::string message;
  bool retryable = true;
};

// The job's state after an ack or a fail ("succeeded", "scheduled", "dead", "cancelled").
struct JobStateResult {
  std::string id;
  std::string state;
};

struct AckItem {
  std::string id;
  std::string token;
  std::optional<std::string> result_json;
};

struct FailItem {
  std::string id;
  std::string token;
  FailureInfo error;
  std::optional<std::int64_t> retry_in_ms;
};

// Per-item outcomes of acks:batch, in request order; an OK Status means that item was applied.
struct AckBatchResult {
  std::vector<Status> acks;
  std::vector<Status> fails;
};

struct Retention {
  std::int64_t succeeded_ms = 0;
  std::int64_t dead_ms = 0;
  std::int64_t cancelled_ms = 0;
  std::int64_t max_succeeded = 0;  // most finished jobs kept per state; 0: no cap
  std::int64_t max_dead = 0;
  std::int64_t max_cancelled = 0;
};

struct QueueCounts {
  std::int64_t scheduled = 0;
  std::int64_t ready = 0;
  std::int64_t active = 0;
  std::int64_t succeeded = 0;
  std::int64_t dead = 0;
  std::int64_t cancelled = 0;
};

struct Queue {
  std::string name;
  bool paused = false;
  std::int32_t max_attempts = 0;
  std::int64_t lease_ms = 0;
  std::optional<std::int64_t> timeout_ms;  // nullopt: none
  std::int64_t weight = 1;                 // share in a lease naming several queues
  Backoff backoff;
  Retention retention;
  QueueCounts counts;
  // Live jobs not running, per blocked_reason (docs/flow-control.md, "Reason codes").
  std::map<std::string, std::int64_t> blocked;
  std::int64_t oldest_ready_age_ms = 0;
  std::int64_t waiting_workers = 0;
  std::string json;  // the server's JSON object for this queue
};

struct QueuePage {
  std::vector<Queue> items;
  std::optional<std::string> next_cursor;  // nullopt on the last page
};

// A limit's rate: `count` starts per `period_ms` with a `burst` (0: the server's default, the
// least burst that reaches the rate).
struct LimitRate {
  std::int64_t count = 0;
  std::int64_t period_ms = 1000;
  std::int64_t burst = 0;
};

// A limit's calendar quota: `count` starts per `per` ("day", "week", "month") in `time_zone`.
struct LimitQuota {
  std::int64_t count = 0;
  std::string per = "day";
  std::string time_zone = "UTC";
};

// A limit's circuit breaker: the members set are sent, the others take the server's defaults
// (docs/flow-control.md, "Circuit breakers"); GET answers every member.
struct LimitBreaker {
  std::optional<std::int64_t> consecutive_failures;
  std::optional<std::int64_t> window;
  std::optional<std::int64_t> min_samples;
  std::optional<std::int64_t> failure_percent;
  std::optional<std::int64_t> open_base_ms;
  std::optional<std::int64_t> open_max_ms;
};

// One key of a breaker as GET /v1/limits/{name} shows it (times in epoch ms; 0: not set).
struct BreakerKey {
  std::string key;
  std::string state;  // "closed", "open", "half_open"
  std::int64_t opened_at_ms = 0;
  std::int64_t next_open_at_ms = 0;
  std::int64_t open_interval_ms = 0;
  bool trial_in_flight = false;
  std::int64_t consecutive_failures = 0;
};

// A limit (docs/api.md, "Limits"): what PUT /v1/limits/{name} sends (name, match_*, key and
// the bounds: concurrency, rate, quota, at least one) and what GET answers (also its live counts
// and the server's JSON).
struct Limit {
  std::string name;
  std::optional<std::string> match_queue;
  std::optional<std::string> match_kind;
  std::optional<std::string> match_namespace;
  std::string key;  // empty: one count for every matched job
  std::optional<std::int64_t> concurrency;
  std::optional<LimitRate> rate;
  std::optional<LimitQuota> quota;
  std::optional<LimitBreaker> breaker;
  // Key modes (docs/flow-control.md, "Singleton and debounce"): "refuse" or "skip" (empty:
  // none), or a debounce delay with an optional max wait.
  std::string singleton;
  std::optional<std::int64_t> debounce_delay_ms;
  std::optional<std::int64_t> debounce_max_wait_ms;
  std::int64_t active_keys = 0;
  std::vector<std::pair<std::string, std::int64_t>> active;  // the top keys, largest first
  // With a quota: its current window (0, 0 before any start) and the keys that used most of it.
  std::int64_t quota_window_start_ms = 0;
  std::int64_t quota_window_end_ms = 0;
  std::int64_t quota_used_keys = 0;
  std::vector<std::pair<std::string, std::int64_t>> quota_used;
  // With a breaker: the keys open or half-open, and those it shows (tripped first).
  std::int64_t breaker_tripped_keys = 0;
  std::vector<BreakerKey> breaker_keys;
  // POST :reset-breaker: how many keys the reset closed that were open or half-open.
  std::int64_t reset_tripped_keys = 0;
  std::string json;
};

// A namespace's configuration (docs/api.md, "Namespaces"): what PUT /v1/namespaces/{ns} sends
// and what GET answers (also its live count and the server's JSON).
struct NamespaceRate {
  std::int64_t count = 0;
  std::int64_t period_ms = 1000;
  std::int64_t burst = 0;  // 0: not sent (the server's default: count)
};
struct Namespace {
  std::string name;
  std::optional<std::int64_t> max_live_jobs;
  std::optional<NamespaceRate> enqueue_rate;
  std::optional<std::int64_t> weight;
  std::optional<std::int64_t> max_active;
  std::int64_t live_jobs = 0;
  std::int64_t active_jobs = 0;
  std::string json;
};

// An API token (docs/api.md, "Tokens"). `secret` is set only in the answer to CreateToken:
// the server shows it that once.
struct ApiToken {
  std::string id;
  std::string name;
  std::string role;
  std::vector<std::string> namespaces;  // ["*"]: all
  std::int64_t created_at = 0;
  std::optional<std::int64_t> expires_at;
  bool expired = false;
  std::optional<std::int64_t> revoked_at;
  std::optional<std::int64_t> last_used_at;
  std::string secret;
};
// What POST /v1/tokens sends; empty namespaces: all.
struct TokenRequest {
  std::string name;
  std::string role;
  std::vector<std::string> namespaces;
  std::optional<std::int64_t> expires_in_ms;
};

// A schedule (docs/api.md, "Schedules"): what POST /v1/schedules, PUT and PATCH send. Members
// left unset are not sent: POST and PUT then take the server's defaults, PATCH leaves them as
// they are. `job` is the template: an enqueue spec without delay_ms, run_at and idempotency_*.
struct ScheduleSpec {
  std::string id;
  std::optional<std::string> cron;
  std::optional<std::string> time_zone;
  std::optional<std::int64_t> start_at_ms;
  std::optional<std::int64_t> end_at_ms;
  std::optional<std::int64_t> jitter_ms;
  std::optional<std::string> missed_policy;  // "catch_up", "latest_only", "skip"
  std::optional<std::int64_t> missed_max_count;
  std::optional<std::int64_t> missed_max_age_ms;
  std::optional<std::int64_t> missed_grace_ms;
  std::optional<std::string> overlap;  // "skip", "allow", "buffer_one", "cancel_previous"
  std::optional<bool> paused;
  std::optional<EnqueueRequest> job;
};

// One decision of a schedule's history: a window emitted, or a range of windows skipped.
struct ScheduleDecision {
  std::int64_t window_ms = 0;
  std::int64_t through_ms = 0;  // a skipped range's last window (= window_ms for one)
  std::string outcome;          // "emitted" or "skipped"
  std::string reason;
  std::string job_id;  // empty when none
  std::int64_t at_ms = 0;
  std::optional<std::int64_t> lag_ms;
};

// A schedule as GET answers it: its spec (every member, defaults filled in), its state and
// progress, and the server's JSON.
struct Schedule {
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
  std::string job_json;  // the template, as the server shows it
  std::string state;     // "active", "paused", "ended"
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::int64_t cursor_ms = 0;
  std::optional<std::int64_t> next_fire_at_ms;
  std::vector<std::int64_t> next_fire_times;
  std::string live_job;  // empty when none
  std::optional<std::int64_t> buffered_window_ms;
  std::optional<ScheduleDecision> last_run;  // window, job_id, at_ms (enqueued_at), lag_ms
  std::optional<std::int64_t> lag_last_ms;
  std::optional<std::int64_t> lag_max_recent_ms;
  std::int64_t lag_samples = 0;
  std::vector<ScheduleDecision> history;  // newest first (GET of one schedule only)
  std::string json;
};

struct BackfillResult {
  std::int64_t emitted = 0;
  std::int64_t duplicates = 0;
  std::int64_t after_cursor = 0;
  std::int64_t windows = 0;
};

// PUT /v1/queues/{q}: only the fields that are set are sent and changed. The retention_* fields
// travel as one `retention` object, which the server replaces whole: when any of them is set,
// those left unset take the server's defaults, not the queue's current values (docs/api.md).
struct QueueUpdate {
  std::optional<bool> paused;
  std::optional<std::int32_t> max_attempts;
  std::optional<std::int64_t> lease_ms;
  std::optional<std::int64_t> timeout_ms;  // 0: none
  std::optional<Backoff> backoff;
  std::optional<std::int64_t> retention_succeeded_ms;
  std::optional<std::int64_t> retention_dead_ms;
  std::optional<std::int64_t> retention_cancelled_ms;
  std::optional<std::int64_t> retention_max_succeeded;  // 0: no cap
  std::optional<std::int64_t> retention_max_dead;
  std::optional<std::int64_t> retention_max_cancelled;
  std::optional<std::int64_t> weight;  // 1..1000
};

struct ListDeadRequest {
  std::optional<std::string> queue;
  std::optional<std::int32_t> limit;
  std::optional<std::string> cursor;
};

struct DeadReplayRequest {
  std::optional<std::string> queue;
  std::vector<std::string> ids;  // empty: every dead job that matches `queue`
  std::optional<std::int64_t> limit;
};

// POST /v1/jobs:cancel, :replay or :delete: one page.
struct BulkRequest {
  std::string action;  // "cancel", "replay" or "delete"
  JobFilterParams filter;
  bool all = false;  // act on every job the action applies to (the filter must be empty)
  std::optional<std::int32_t> limit;
  std::optional<std::string> cursor;
  bool dry_run = false;
};

struct BulkPage {
  std::int64_t matched = 0;
  std::int64_t applied = 0;  // "cancelled", "replayed" or "deleted"
  std::int64_t cancel_requested = 0;
  std::int64_t skipped = 0;
  std::optional<std::string> next_cursor;  // nullopt: nothing more matches
  std::string json;
};

// POST /v1/namespaces/{name}:wipe: one step of erasing a namespace's data.
struct WipePage {
  std::int64_t live_jobs = 0;
  std::int64_t finished_jobs = 0;
  std::int64_t idempotency_keys = 0;
  std::int64_t schedules = 0;
  std::int64_t skipped = 0;
  bool done = false;
  std::optional<std::string> next_cursor;  // nullopt once done
  std::string json;
};

struct ServerInfo {
  std::string version;
  std::string commit;  // empty from a server older than 0.1.0's build info
  std::int64_t started_at_ms = 0;
  std::int64_t live_jobs = 0;
  std::int64_t commits = 0;
  bool draining = false;
  std::string json;
};

class ApiClient {
 public:
  explicit ApiClient(HttpClient http);
  // Parses `url` (see ParseBaseUrl) and builds a client; no connection is opened yet.
  static Result<ApiClient> Create(std::string_view url, HttpClientOptions options = {});

  // POST /v1/jobs.
  Result<EnqueueResult> Enqueue(const EnqueueRequest& job);
  // POST /v1/jobs:batch (1..1000 jobs): one result per job, in order; a job the server rejected
  // has its own non-OK Status while the others are enqueued.
  Result<std::vector<Result<EnqueueResult>>> EnqueueBatch(const std::vector<EnqueueRequest>& jobs);
  // GET /v1/jobs/{id}.
  Result<Job> GetJob(std::string_view id);
  // GET /v1/jobs/{id}?wait_ms=N (0..30000): answered when the job ends or after wait_ms with
  // its state then.
  Result<Job> WaitJob(std::string_view id, std::int64_t wait_ms);
  // GET /v1/jobs with the request's filters, limit and cursor: one page.
  Result<JobPage> ListJobs(const ListJobsRequest& request);
  // POST /v1/jobs/{id}:cancel; returns the job afterwards (an active job is only flagged).
  Result<Job> CancelJob(std::string_view id);
  // POST /v1/jobs/{id}:replay of a dead or cancelled job.
  Result<Job> ReplayJob(std::string_view id);

  // POST /v1/leases; blocks up to request.wait_ms on the server when nothing is ready, and may
  // return an empty vector.
  Result<std::vector<LeasedJob>> Lease(const LeaseRequest& request);
  // POST /v1/jobs/{id}:heartbeat; extend_ms unset keeps the job's lease_ms. `progress_json`
  // (a JSON object, sent as is) reports the attempt's progress.
  Result<HeartbeatResult> Heartbeat(std::string_view id, std::string_view token,
                                    std::optional<std::int64_t> extend_ms = std::nullopt,
                                    std::optional<std::string_view> progress_json = std::nullopt);
  // POST /v1/cancels:watch: the ids of the active jobs leased to `worker_id` whose cancel is
  // requested; the server holds the request up to wait_ms (0..30000) while that set holds
  // nothing outside `known`.
  Result<std::vector<std::string>> WatchCancels(std::string_view worker_id,
                                                const std::vector<std::string>& known,
                                                std::int64_t wait_ms);
  // POST /v1/jobs/{id}:ack.
  Result<JobStateResult> Ack(std::string_view id, std::string_view token,
                             std::optional<std::string_view> result_json = std::nullopt);
  // POST /v1/jobs/{id}:fail.
  Result<JobStateResult> Fail(std::string_view id, std::string_view token, const FailureInfo& error,
                              std::optional<std::int64_t> retry_in_ms = std::nullopt);
  // POST /v1/acks:batch.
  Result<AckBatchResult> AckBatch(const std::vector<AckItem>& acks,
                                  const std::vector<FailItem>& fails);

  // GET /v1/queues, every page: follows next_cursor, `page_size` queues per request.
  Result<std::vector<Queue>> ListQueues(std::uint32_t page_size = 1000);
  // One page of GET /v1/queues?limit=&cursor= (empty cursor: the first page).
  Result<QueuePage> ListQueuesPage(std::string_view cursor, std::uint32_t limit);
  // GET /v1/queues/{q}.
  Result<Queue> GetQueue(std::string_view name);
  // PUT /v1/queues/{q}.
  // Without `create`, a queue that does not exist is 404 queue_not_found (?create=true).
  Result<Queue> PutQueue(std::string_view name, const QueueUpdate& update, bool create = false);
  // POST /v1/queues/{q}:pause and :resume. Without `create`, a queue that does not exist is
  // 404 queue_not_found; with it, the queue is created (?create=true).
  Result<Queue> PauseQueue(std::string_view name, bool create = false);
  // DELETE /v1/queues/{q}: removes the queue's configuration (it follows the defaults again).
  Result<Queue> ResetQueue(std::string_view name);
  Result<Queue> ResumeQueue(std::string_view name, bool create = false);

  // PUT /v1/limits/{name}: creates or replaces the limit (`*created` tells which when given).
  Result<Limit> PutLimit(const Limit& limit, bool* created = nullptr);
  // GET /v1/limits/{name}, with its live counts.
  Result<Limit> GetLimit(std::string_view name);
  // GET /v1/limits, every page.
  Result<std::vector<Limit>> ListLimits(std::uint32_t page_size = 1000);
  // DELETE /v1/limits/{name}.
  Status DeleteLimit(std::string_view name);
  // POST /v1/limits/{name}:reset-breaker, for `key` (every key when nullopt).
  Result<Limit> ResetBreaker(std::string_view name, const std::optional<std::string>& key);

  // PUT /v1/namespaces/{ns}: creates or replaces (`*created` tells which when given).
  Result<Namespace> PutNamespace(const Namespace& ns, bool* created = nullptr);
  // GET /v1/namespaces/{ns}, with its live count.
  Result<Namespace> GetNamespace(std::string_view name);
  // GET /v1/namespaces, every page.
  Result<std::vector<Namespace>> ListNamespaces(std::uint32_t page_size = 1000);
  // DELETE /v1/namespaces/{ns}.
  Status DeleteNamespace(std::string_view name);
  // One step of a wipe (`cursor`: the previous step's next_cursor); repeat until `done`.
  Result<WipePage> WipeNamespace(std::string_view name, std::optional<std::int32_t> limit,
                                 const std::optional<std::string>& cursor);
  // GET /v1/namespaces/{ns}/export: the namespace's jobs as JSON lines, handed to `sink` as they
  // arrive (never held whole). Returns the number of lines (jobs) received. An export cut short
  // (connection lost, a server error midway) is an error, never a short success.
  Result<std::uint64_t> ExportNamespace(std::string_view name,
                                        const std::function<bool(std::string_view)>& sink);

  // API tokens (docs/api.md, "Tokens"; admin only).
  Result<ApiToken> CreateToken(const TokenRequest& request);
  Result<std::vector<ApiToken>> ListTokens();
  Result<ApiToken> RevokeToken(std::string_view id);

  // POST /v1/schedules (create; 409 already_exists when the id is taken).
  Result<Schedule> CreateSchedule(const ScheduleSpec& spec);
  // PUT /v1/schedules/{id} (replace the spec) or, with `patch`, PATCH (only the members set).
  Result<Schedule> UpdateSchedule(const ScheduleSpec& spec, bool patch);
  // GET /v1/schedules/{id}?next=N (nullopt: the server's default count of next fire times).
  Result<Schedule> GetSchedule(std::string_view id, std::optional<std::int64_t> next = {});
  // GET /v1/schedules, every page.
  Result<std::vector<Schedule>> ListSchedules(std::uint32_t page_size = 1000);
  // DELETE /v1/schedules/{id}.
  Status DeleteSchedule(std::string_view id);
  // POST /v1/schedules/{id}:pause or :resume.
  Result<Schedule> PauseSchedule(std::string_view id, bool pause);
  // POST /v1/schedules/{id}:trigger: the job enqueued now.
  Result<EnqueueResult> TriggerSchedule(std::string_view id);
  // POST /v1/schedules/{id}:backfill of the windows in [from_ms, to_ms].
  Result<BackfillResult> BackfillSchedule(std::string_view id, std::int64_t from_ms,
                                          std::int64_t to_ms);

  // GET /v1/dead?queue=&limit=&cursor=.
  Result<JobPage> ListDead(const ListDeadRequest& request);
  // POST /v1/dead:replay; returns how many jobs were replayed.
  Result<std::int64_t> ReplayDead(const DeadReplayRequest& request);

  // POST /v1/jobs:cancel, :replay or :delete (request.action): one page of a bulk operation.
  Result<BulkPage> Bulk(const BulkRequest& request);

  // GET /v1/info.
  Result<ServerInfo> Info();
  // GET /healthz: OK while the process serves.
  Status Healthz();
  // GET /readyz: OK when ready; `unavailable` while recovering or draining.
  Status Readyz();
  // GET /metrics: Prometheus text.
  Result<std::string> Metrics();
  // GET /v1/alerts: the alert rules and their state, as the JSON body (docs/api.md).
  Result<std::string> Alerts();
  // GET /v1/audit?after=&limit= and GET /v1/audit/checkpoint: the JSON bodies (docs/api.md,
  // "Audit log"; net/codec_audit.h reads a page).
  Result<std::string> AuditPage(std::uint64_t after, std::uint32_t limit);
  Result<std::string> AuditCheckpoint();

  // The HTTP status of the last reply, or 0 when the last call got no reply (unreachable).
  int last_http_status() const { return last_http_status_; }
  // The body of the last reply, verbatim; what `--json` output prints.
  const std::string& last_body() const { return last_body_; }
  // Seconds from the last reply's Retry-After header, for 429 backpressure.
  std::optional<std::int64_t> last_retry_after_s() const { return last_retry_after_s_; }

  HttpClient& http() { return http_; }

 private:
  // Sends a request and returns the body of a 2xx reply, or the Status of an error reply.
  Result<std::string> Call(HttpMethod method, const std::string& target, std::string_view body,
                           std::chrono::milliseconds extra_timeout = {});
  Result<Queue> QueueCall(HttpMethod method, const std::string& target, std::string_view body);
  Result<Job> JobCall(HttpMethod method, const std::string& target,
                      std::chrono::milliseconds extra_timeout = {});
  // A call whose reply is one schedule object; `what` names the request in errors.
  Result<Schedule> ScheduleCall(HttpMethod method, const std::string& target, std::string_view body,
                                std::string_view what);

  HttpClient http_;
  int last_http_status_ = 0;
  std::string last_body_;
  std::optional<std::int64_t> last_retry_after_s_;
};

}  // namespace ym::client
