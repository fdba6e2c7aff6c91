// Codec: the JSON and query-string wire format of docs/api.md, as pure functions.
//
// Parse* functions turn request bodies and query strings into the core request types
// (core/types.h) and enforce every shape rule of docs/api.md: required fields, types, ranges,
// name charsets, unknown fields, payload size. They never judge meaning (whether a job exists,
// whether a token is current): that is core's job. Payloads and ack results are kept as the JSON
// text the client sent, minus insignificant whitespace (docs/api.md, "Payloads are passed
// through exactly"): numbers are never converted. Render* functions turn core results into
// response bodies with a RapidJSON Writer, so every user-supplied string is escaped.
//
// Errors (as Status):
//   kInvalidJson      the body is not exactly one well-formed JSON value: invalid UTF-8, a lone
//                     surrogate escape, or any byte after the value (common/json.h)
//   kValidation       well-formed JSON with a missing field, a wrong type, a value out of range
//                     or an unknown field; the message names the field, e.g.
//                     `field "priority": must be an integer between -1000000 and 1000000`
//   kPayloadTooLarge  a payload or ack result whose text without insignificant whitespace exceeds
//                     CodecLimits::max_payload_bytes
//   kInvalidRequest   a bad query string or cursor
// JSON `null` for an optional field means the same as leaving the field out.
//
// Ownership and threads: no state at all; every function may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "core/bulk.h"
#include "core/flow/limit_set.h"
#include "core/flow/namespace_limits.h"
#include "core/job.h"
#include "core/namespace_wipe.h"
#include "core/types.h"
#include "server/broker.h"

namespace ym::net {

struct CodecLimits {
  // Largest payload (or ack result), measured on its kept text (without insignificant
  // whitespace).
  std::size_t max_payload_bytes = 1 << 20;
};

// Request-shape limits of docs/api.md, shared by the parsers, tests and docs.
inline constexpr std::int32_t kMaxPriority = 1'000'000;
inline constexpr std::int64_t kMaxDelayMs = 3650LL * 24 * 3600 * 1000;  // ten years
inline constexpr std::int64_t kMaxRunAtMs = 253'402'300'799'999;        // 9999-12-31
inline constexpr std::int32_t kMaxMaxAttempts = 1000;
inline constexpr std::int64_t kMinLeaseMs = 100;
inline constexpr std::int64_t kMaxLeaseMs = 86'400'000;
// Execution timeout of one attempt (`timeout_ms`); 0 means none.
inline constexpr std::int64_t kMaxTimeoutMs = 86'400'000;
inline constexpr std::int64_t kMaxBackoffMs = 30LL * 24 * 3600 * 1000;  // 30 days
inline constexpr double kMaxBackoffMultiplier = 100.0;
inline constexpr std::size_t kMaxIdempotencyKeyBytes = 256;
inline constexpr std::int64_t kMaxIdempotencyTtlMs = 30LL * 24 * 3600 * 1000;
inline constexpr std::size_t kMaxTags = 32;
inline constexpr std::size_t kMaxTagBytes = 128;
inline constexpr std::size_t kMaxBatchItems = 1000;
inline constexpr std::size_t kMaxLeaseQueues = 64;
inline constexpr std::uint32_t kMaxLeaseJobs = 1000;
inline constexpr std::int64_t kMaxWaitMs = 30'000;
inline constexpr std::size_t kMaxWorkerIdBytes = 128;
inline constexpr std::size_t kMaxErrorTypeBytes = 128;
inline constexpr std::size_t kMaxErrorMessageBytes = 8192;
inline constexpr std::int64_t kMaxRetryInMs = 30LL * 24 * 3600 * 1000;
inline constexpr std::int64_t kMaxRetentionMs = 3650LL * 24 * 3600 * 1000;
// Largest per-queue cap on the finished jobs kept of one state (0: no cap).
inline constexpr std::int64_t kMaxRetentionCap = 1'000'000'000'000;
inline constexpr std::uint32_t kDefaultReplayLimit = 1000;
inline constexpr std::uint32_t kMaxReplayLimit = 100'000;
inline constexpr std::uint32_t kDefaultListLimit = 100;
inline constexpr std::uint32_t kMaxListLimit = 1000;
// Request bodies nested deeper than this are refused (422): it bounds the JSON reader's
// recursion, whatever a client sends.
inline constexpr int kMaxJsonDepth = 128;

// ---- request bodies ----

Result<EnqueueSpec> ParseEnqueue(std::string_view body, const CodecLimits& limits);

// `{"jobs":[spec, ...]}` with 1..1000 items. A malformed envelope fails as a whole; a bad item
// fails alone (its slot holds the error) so that the other items still go through.
Result<std::vector<Result<EnqueueSpec>>> ParseEnqueueBatch(std::string_view body,
                                                           const CodecLimits& limits);

// The W3C trace context headers of an enqueue (every value of each, as received; empty: absent):
// kInvalidRequest (400) for a malformed one, a traceparent sent more than once, or a tracestate
// without a traceparent. Several tracestate headers form one list (joined by ","), as the
// specification allows. The handler gives the result to each job whose body has no
// "traceparent" of its own (docs/api.md, "Trace context").
Result<TraceContext> ParseTraceHeaders(const std::vector<std::string>& traceparent,
                                       const std::vector<std::string>& tracestate);

Result<LeaseRequest> ParseLease(std::string_view body);

// The most a job's progress (its JSON text, without whitespace) may take.
inline constexpr std::size_t kMaxProgressBytes = 4096;

struct HeartbeatRequest {
  std::uint64_t token = 0;
  // 0 when absent: the lease is extended by the job's own lease_ms.
  std::int64_t extend_ms = 0;
  // The attempt's progress, as JSON object text: `"progress": 42` arrives as `{"percent":42}`,
  // `"progress": {...}` as sent (its `percent`, if any, a number 0..100). nullopt: unchanged.
  std::optional<std::string> progress;
};
Result<HeartbeatRequest> ParseHeartbeat(std::string_view body);

// POST /v1/cancels:watch: `{"worker_id","known"?,"wait_ms"?}`. worker_id is the one the
// worker's leases carry (1..128 bytes); known holds up to kMaxBatchItems job ids it already
// knows to be cancelled; wait_ms is 0..kMaxWaitMs (default 0: answer at once).
struct CancelWatchRequest {
  std::string worker_id;
  std::vector<JobId> known;
  std::int64_t wait_ms = 0;
};
Result<CancelWatchRequest> ParseCancelWatch(std::string_view body);

// `{"token","result"?}`; `id` is taken from the path and stored in the returned item.
Result<AckItem> ParseAck(JobId id, std::string_view body, const CodecLimits& limits);
// `{"token","error":{"type"?,"message","retryable"?},"retry_in_ms"?}`.
Result<FailItem> ParseFail(JobId id, std::string_view body);

// `{"acks":[...],"fails":[...]}` with 1..1000 items in total; each bad item fails alone.
struct CompleteBatch {
  std::vector<Result<AckItem>> acks;
  std::vector<Result<FailItem>> fails;
};
Result<CompleteBatch> ParseCompleteBatch(std::string_view body, const CodecLimits& limits);

// PUT /v1/queues/{q}: `name` comes from the path.
Result<QueueConfigPatch> ParseQueuePatch(std::string name, std::string_view body);

// POST /v1/dead:replay. Either `ids` (1..1000 job ids) or a filter (`queue`, `limit`).
struct DeadReplayRequest {
  std::string queue;       // empty: every queue
  std::vector<JobId> ids;  // non-empty: replay exactly these
  std::uint32_t limit = kDefaultReplayLimit;
};
Result<DeadReplayRequest> ParseDeadReplay(std::string_view body);

// POST /v1/jobs:cancel, :replay, :delete (core/bulk.h). The body holds the filter, under the
// names of GET /v1/jobs's query parameters (`namespace`, `queue`, `kind`, `state` (one state, a
// comma-separated list, or an array of states), `tag`, `created_after`, `created_before`,
// `finished_after`, `finished_before`), or `"all": true` (an empty filter is refused, so that a
// typo cannot act on every job), plus `limit` (1..kMaxBulkLimit), `cursor` (the previous reply's
// `next_cursor`, valid only for the same action and filter) and `dry_run`. kValidation for a
// bad field, an empty filter or a state the action does not apply to; kInvalidRequest for a
// cursor that is malformed or from another action or filter.
Result<BulkRequest> ParseBulk(BulkAction action, std::string_view body);
// The cursor scope of a bulk operation with its (narrowed) filter.
std::string BulkCursorScope(BulkAction action, const JobFilter& filter);
std::string EncodeBulkCursor(BulkAction action, const JobFilter& filter, JobId after_id);

// Bodies of routes that take "no body or {}" (cancel, replay, pause, resume).
Status ParseEmptyObject(std::string_view body);

// ---- query strings and cursors ----

// Splits `a=1&b=x%20y` into decoded pairs, in order. '+' decodes to a space. Fails with
// kInvalidRequest on a bad percent escape or a repeated name.
Result<std::vector<std::pair<std::string, std::string>>> ParseQueryString(std::string_view query);
// Percent-decodes one URL component; kInvalidRequest on a bad escape.
Result<std::string> PercentDecode(std::string_view text, bool plus_is_space);

// GET /v1/jobs: queue, state, limit (1..1000, default 100), cursor.
Result<ListQuery> ParseListJobsQuery(std::string_view query);
// GET /v1/jobs/{id}: `wait_ms` (0..kMaxWaitMs, default 0: answer at once).
Result<std::int64_t> ParseGetJobQuery(std::string_view query);
// GET /v1/dead: queue, limit, cursor; the state is always dead.
Result<ListQuery> ParseListDeadQuery(std::string_view query);

// GET /v1/queues: limit (1..1000, default 100), cursor.
struct QueueListQuery {
  std::string after;  // from the cursor; empty: from the first queue
  std::uint32_t limit = 100;
};
Result<QueueListQuery> ParseListQueuesQuery(std::string_view query);
// GET /v1/limits: the same parameters, with cursors of its own scope.
Result<QueueListQuery> ParseListLimitsQuery(std::string_view query);
// PUT /v1/limits/{name}: the body is the limit (flow::LimitSpec::FromJson): 422 naming the field
// for a bad name, unknown member, unknown key, empty payload path or concurrency out of range.
Result<flow::LimitSpec> ParseLimitSpec(const std::string& name, std::string_view body);
// POST /v1/limits/{name}:reset-breaker: an empty body or `{}` (every key), or `{"key":"..."}`
// (one key; any string, the empty key included). 422 naming the field otherwise.
Result<std::optional<std::string>> ParseResetBreaker(std::string_view body);
// GET /v1/namespaces: `limit` and `cursor` as for /v1/limits (cursors of one do not fit the
// other).
Result<QueueListQuery> ParseListNamespacesQuery(std::string_view query);
// PUT /v1/namespaces/{name}: the body is the namespace (flow::NamespaceSpec::FromJson): 422
// naming the field.
Result<flow::NamespaceSpec> ParseNamespaceSpec(const std::string& name, std::string_view body);
// POST /v1/namespaces/{name}:wipe: `{"confirm": name, "limit"?: 1..10000, "cursor"?: the
// previous reply's next_cursor}` (core/namespace_wipe.h). 422 naming the field; a cursor of
// another namespace, or not a wipe cursor, is refused.
Result<WipeRequest> ParseWipe(const std::string& name, std::string_view body);
// {"namespace", "erased": {"live_jobs", "finished_jobs", "idempotency_keys", "schedules"},
//  "skipped", "done", "next_cursor": null once done}
std::string RenderWipeOutcome(const std::string& name, const WipeOutcome& outcome);
// PUT /v1/queues/{q}, :pause, :resume: `create=true` creates a queue that does not exist
// (`create=false` or no parameter: 404 queue_not_found for such a queue).
Result<bool> ParseCreateQuery(std::string_view query);

// The cursor scope (net/cursor.h) of a listing: `GET /v1/jobs` with its queue and state filters,
// or `GET /v1/dead` with its queue filter. A cursor is valid only for the scope it was made for.
std::string JobsCursorScope(const ListQuery& query);
std::string DeadCursorScope(const ListQuery& query);

// ---- response bodies ----

std::string RenderError(const Status& status);
std::string RenderJob(const JobView& view);
// `{"items":[...],"next_cursor"}`. Stops before the job that would take the body over
// `max_bytes` (but always renders at least one job): the cursor then resumes after the last job
// rendered. Cursors are made for `cursor_scope`.
std::string RenderJobPage(const JobPage& page, std::string_view cursor_scope,
                          std::size_t max_bytes = std::numeric_limits<std::size_t>::max());
// POST /v1/jobs: `{"id","state","duplicate"?}`.
std::string RenderEnqueueOutcome(const EnqueueOutcome& outcome);
// POST /v1/jobs:batch: `{"results":[...]}`.
std::string RenderEnqueueResults(const std::vector<Result<EnqueueOutcome>>& results);
std::string RenderLeasedJobs(const std::vector<LeasedJob>& jobs);
std::string RenderHeartbeat(const HeartbeatOutcome& outcome);
// POST /v1/cancels:watch: `{"cancel_requested":["42",...]}`.
std::string RenderCancelWatch(const std::vector<JobId>& cancel_requested);
// `{"id","state"}`; a null state renders as JSON null.
std::string RenderIdState(JobId id, const JobState* state);
std::string RenderCompleteResults(const std::vector<Status>& acks,
                                  const std::vector<Status>& fails);
std::string RenderQueue(const QueueInfo& info);
// `{"items":[...],"next_cursor"}`, capped by `max_bytes` like RenderJobPage.
std::string RenderQueuePage(const QueuePage& page,
                            std::size_t max_bytes = std::numeric_limits<std::size_t>::max());
// `{"name","match","key","concurrency","active_keys","active":[{"key","count"}]}`.
std::string RenderLimit(const flow::LimitInfo& info);
// `{"items":[...],"next_cursor"}`, capped by `max_bytes` like RenderJobPage.
std::string RenderLimitPage(const flow::LimitPage& page,
                            std::size_t max_bytes = std::numeric_limits<std::size_t>::max());
// POST /v1/limits/{name}:reset-breaker: the limit as RenderLimit shows it after the reset, with
// `"reset":{"key":K|null,"tripped_keys":N}` (N: the keys that were open or half-open).
std::string RenderBreakerReset(const flow::LimitInfo& info, const std::optional<std::string>& key);
// DELETE /v1/limits/{name}: `{"name","deleted":true}`.
std::string RenderLimitDeleted(const std::string& name);
// {"name","max_live_jobs","enqueue_rate","weight","max_active","live_jobs","active_jobs"}.
std::string RenderNamespace(const flow::NamespaceInfo& info);
std::string RenderNamespacePage(const flow::NamespacePage& page, std::size_t max_bytes);
std::string RenderReplayed(std::uint64_t replayed);
// `{"matched","cancelled"|"replayed"|"deleted","cancel_requested"?,"skipped","dry_run"?,
// "next_cursor"}` (cancel_requested for a cancel; dry_run only when true).
std::string RenderBulkOutcome(const BulkRequest& request, const BulkOutcome& outcome);
std::string RenderInfo(const BrokerInfo& info);
// `{"status":"<status>"}`.
std::string RenderStatusWord(std::string_view status);

// One check of /readyz: its name and, when it fails, why (Status::ok() when it passes).
struct HealthCheck {
  std::string_view name;
  Status status;
};
// /readyz and /livez: `{"status":"ready"|"ok","checks":{"<name>":"ok"|"<why>",...}}` when every
// check passes; otherwise `{"status":"not_ready","checks":{...},"error":{"code","message"}}`
// with the code of the first failed check and a message naming every failed one.
std::string RenderHealth(std::string_view ok_word, const std::vector<HealthCheck>& checks);
// The first failed check's Status (message naming every failed one), or OK.
Status HealthFailure(const std::vector<HealthCheck>& checks);

}  // namespace ym::net
