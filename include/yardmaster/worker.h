// yardmaster::Worker: the worker runtime of the C++ SDK. It leases jobs, runs the handler
// registered for each job's kind, keeps the leases alive and reports the outcomes.
//
//   yardmaster::WorkerOptions options;
//   options.queues = {"emails"};
//   options.concurrency = 4;
//   yardmaster::Worker worker(options);
//   worker.Handle("send_welcome", [](yardmaster::JobContext& job) {
//     if (job.cancelled()) return yardmaster::Outcome::Permanent("cancelled");
//     ... use job.payload() (JSON text) ...
//     return yardmaster::Outcome::Ok(R"({"sent":true})");
//   });
//   return worker.RunUntilSignal();   // SIGTERM/SIGINT: graceful shutdown
//
// Behaviour (leasing, prefetch, heartbeats, cancellation, lost leases, outcomes, shutdown) is
// the contract shared with the Python SDK and the exec worker: docs/workers.md. In short:
//
// Outcomes are values, not exceptions: a handler returns Outcome::Ok(result_json),
// Outcome::Retry(...), Outcome::Permanent(message) or Outcome::Cancelled(message), and what it
// returns is what is reported, also after a cancel. An exception that escapes a handler is
// caught and reported as a retryable failure whose type is the exception's demangled type name
// (e.g. "std::runtime_error") and whose message is what(): an unexpected exception is more often
// a transient fault than a verdict on the job. A job of a kind with no handler fails retryable
// with type "unknown_kind" (a worker that knows the kind may be rolling out).
//
// How it runs (threads all owned by the Worker, started by Run(), joined before it returns):
//   - one leaser: POST /v1/leases for free slots plus the prefetch target, long-polling up to
//     `poll_wait` when nothing is ready. A request goes out when a slot is idle with nothing
//     queued, else when half the capacity is free. No answer, 5xx, 408 and 429 are retried with
//     exponential backoff and jitter (reconnect_min..reconnect_max), forever; any other 4xx
//     stops the worker (Run() returns that error after a graceful shutdown).
//   - `concurrency` slot threads: each runs one handler at a time.
//   - one heartbeater for every leased job: it extends each lease once a `heartbeat_fraction`
//     of it has elapsed, and learns cancellation from the reply. A 409 (stale_lease) or 404
//     means the lease is lost: that job is no longer heartbeated, its outcome will not be
//     reported, and Stats().leases_lost counts it. Nothing crashes. It also watches each job's
//     execution timeout (the job's timeout_ms): at JobContext::deadline() it stops
//     heartbeating the job, marks the context stopped (stop_reason() == kTimeout, which the
//     exec worker turns into killing the command's process group) and drops the job: the
//     broker has failed the attempt with type "timeout", so nothing is reported for it.
//   - one acker: outcomes are sent in batches through POST /v1/acks:batch, when
//     `ack_batch_size` are pending or `ack_flush_interval` after the first one was queued. A job
//     stays heartbeated until its outcome is confirmed.
//   Each thread has its own keep-alive connection.
//
// Shutdown (Stop(), or SIGTERM/SIGINT under RunUntilSignal()):
//   1. leasing stops and a long-poll in flight is interrupted (its connection closed, so the
//      server gives back what it was about to send; a reply that crossed is handed back);
//   2. jobs leased but not started are failed as retryable with retry_in_ms 0 (type
//      "shutdown"), so the server re-delivers them at once to another worker;
//   3. running handlers get up to `shutdown_grace` to finish; their outcomes are reported;
//   4. when the grace runs out, the jobs still running are failed the same way, and their
//      JobContext::cancelled() turns true (stop_reason() == kShutdown) so that handlers return
//      early; what they return afterwards is ignored;
//   5. pending outcomes are sent, retried for up to `report_grace` while the server is down.
//   Run() returns when every handler has returned. A handler that never returns keeps Run()
//   from returning: handlers must poll cancelled() in long loops. A second signal under
//   RunUntilSignal() skips what is left of the grace.
//
// Delivery is at-least-once: a job whose outcome could not be reported (lease lost, worker
// killed) runs again elsewhere. Make handlers idempotent or use the job id as a dedup key.
//
// Threads: Handle() must be called before Run(). Stop() and Stats() may be called from any
// thread, at any time, including from a handler. A Worker runs once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "yardmaster/status.h"

namespace yardmaster {

struct WorkerOptions {
  // `http://HOST:PORT` or `https://HOST:PORT`; empty means $YM_URL, then http://127.0.0.1:7433.
  std::string server_url;
  // Queues to lease from (1..64), in no particular order (the server balances them).
  std::vector<std::string> queues;
  // How many handlers run at once.
  int concurrency = 1;
  // Jobs leased ahead of free slots so that a slot never waits for a round trip; they are
  // heartbeated while they wait, and handed back at once on shutdown. Unset (the default):
  // automatic, just enough to cover the lease round trip given the handlers' run time, and none
  // for long jobs (docs/workers.md). N: up to N whatever the run times; 0: none.
  std::optional<int> prefetch;
  // Lease length asked for each job; unset uses each job's lease_ms (the queue's).
  std::optional<std::chrono::milliseconds> lease;
  // Heartbeat when this fraction of the lease has elapsed (0.05..0.9). A third leaves room for
  // two heartbeats to fail before the lease expires.
  double heartbeat_fraction = 1.0 / 3.0;
  // Long-poll wait of one lease request when nothing is ready (0..30000 ms). Stop() interrupts
  // it, so it only sets how often an idle worker asks.
  std::chrono::milliseconds poll_wait{10'000};
  // Acks are sent when this many are pending or this long after the first pending one.
  int ack_batch_size = 100;
  std::chrono::milliseconds ack_flush_interval{10};
  // Backoff between attempts while the server is unreachable.
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{5'000};
  // How long running handlers may take to finish after Stop().
  std::chrono::milliseconds shutdown_grace{30'000};
  // After the handlers are done, how long outcomes are retried while the server is unreachable.
  // A supervisor must allow shutdown_grace + report_grace before it kills the worker.
  std::chrono::milliseconds report_grace{10'000};
  // Shown in the job's lease; empty: "<hostname>-<pid>".
  std::string worker_id;
  // Log lines go here; unset: stderr, as "yardmaster worker <worker_id>: <line>". Called from
  // any worker thread, one line at a time. Each line starts with its severity:
  //   "warning: " every failed attempt ("job 42 (queue q, kind k) attempt 1 of 10 failed
  //              (std::runtime_error): <what()>; it will be retried"), lost leases, retries;
  //   "error: "   what the worker gives up on (a final lease refusal, unreported outcomes);
  //   "info: "    its life (stopping, stopped), and a handler that obeyed a requested cancel.
  std::function<void(std::string_view line)> log;
  // https:// only: the CA file and the client certificate, as in ClientOptions.
  std::string ca_file;
  std::string client_cert_file;
  std::string client_key_file;
  // The API token, as in ClientOptions.
  std::string token;
  std::string token_file;
};

// Why JobContext::cancelled() turned true.
enum class StopReason {
  kNone,
  kCancelled,  // the job was cancelled on the server (POST /v1/jobs/{id}:cancel)
  kShutdown,   // the worker's shutdown grace ran out; the job was handed back for re-delivery
  kLeaseLost,  // the lease expired or was taken over; another worker may be running the job
  kTimeout,    // the attempt reached its execution timeout (the job's timeout_ms): the broker
               // failed it with type "timeout" and retries it by its backoff
};

// The job a handler runs. Owned by the Worker; valid only during the handler call. The
// accessors may be called from the handler's thread and any thread it starts.
class JobContext {
 public:
  JobContext(std::string id, std::string ns, std::string queue, std::string kind,
             std::string payload_json, std::int32_t attempt, std::int32_t max_attempts,
             std::vector<std::string> tags);

  const std::string& id() const { return id_; }
  const std::string& ns() const { return ns_; }
  const std::string& queue() const { return queue_; }
  const std::string& kind() const { return kind_; }
  // The payload as JSON text, exactly as enqueued.
  const std::string& payload() const { return payload_; }
  // 1 for the first attempt.
  std::int32_t attempt() const { return attempt_; }
  std::int32_t max_attempts() const { return max_attempts_; }
  const std::vector<std::string>& tags() const { return tags_; }
  // The W3C trace context the job was enqueued with (docs/cpp-sdk.md, "Trace context"), for
  // the handler to continue the producer's trace, e.g. by extracting it with an OpenTelemetry
  // propagator; empty when the job has none. The same on every attempt of the job.
  const std::string& traceparent() const { return traceparent_; }
  const std::string& tracestate() const { return tracestate_; }

  // The job's execution timeout (timeout_ms) and when this attempt reaches it, on this process's
  // steady clock (measured from when the lease reached the worker, so a little after the
  // broker's own deadline); nullopt when the job has none.
  std::optional<std::chrono::milliseconds> timeout() const { return timeout_; }
  std::optional<std::chrono::steady_clock::time_point> deadline() const { return deadline_; }

  // True once the handler should stop: the job was cancelled on the server (learnt from the
  // worker's cancel watch at once, or else from a heartbeat), the shutdown grace ran out, the
  // lease was lost, or the attempt reached its timeout (kTimeout: at deadline(); the broker has
  // failed the attempt with type "timeout"). What the handler returns after that is ignored for
  // kShutdown/kLeaseLost/kTimeout; for
  // kCancelled it is reported as it is: return Outcome::Cancelled() to end the job `cancelled`
  // (an Ok acks it as `succeeded`: the work was done after all).
  bool cancelled() const { return reason_.load(std::memory_order_acquire) != StopReason::kNone; }
  StopReason stop_reason() const { return reason_.load(std::memory_order_acquire); }
  // Sleeps up to `d`, waking early when cancelled(); returns !cancelled(). For handlers that
  // wait between steps.
  bool SleepFor(std::chrono::milliseconds d) const;

  // Reports how far this attempt got; the server shows it as the job's `progress` until the
  // attempt ends. `percent` is 0..100; `object_json` is a JSON object of at most 4096 bytes
  // (without whitespace) whose "percent", if present, is a number 0..100, e.g.
  // R"({"percent":40,"step":"resize"})". Sent with a heartbeat within about 250 ms (a later
  // report replaces one not yet sent); returns at once. `validation_failed` for a bad report,
  // which is then not sent.
  Status Progress(double percent);
  Status Progress(std::string_view object_json);

  // Used by the runtime; the first reason set wins.
  void MarkStopped(StopReason reason);
  // Used by the runtime, before the handler starts.
  void SetTimeout(std::chrono::milliseconds timeout, std::chrono::steady_clock::time_point at) {
    timeout_ = timeout;
    deadline_ = at;
  }
  // Used by the runtime, before the handler starts.
  void SetTraceContext(std::string traceparent, std::string tracestate) {
    traceparent_ = std::move(traceparent);
    tracestate_ = std::move(tracestate);
  }
  // Used by the runtime: called (on the handler's thread) when a report is waiting, and takes
  // it for the next heartbeat.
  void SetProgressHook(std::function<void()> hook);
  std::optional<std::string> TakeProgress();

 private:
  std::string id_, ns_, queue_, kind_, payload_;
  std::int32_t attempt_, max_attempts_;
  std::vector<std::string> tags_;
  std::string traceparent_, tracestate_;
  std::optional<std::chrono::milliseconds> timeout_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  // Atomic because the heartbeat thread writes it while the handler reads it.
  std::atomic<StopReason> reason_{StopReason::kNone};
  std::mutex progress_mu_;
  std::optional<std::string> progress_;  // GUARDED_BY(progress_mu_)
  std::function<void()> progress_hook_;  // GUARDED_BY(progress_mu_)
};

// What a handler decided.
class Outcome {
 public:
  enum class Kind { kOk, kRetry, kPermanent, kCancelled };

  // Success; `result_json` (any JSON text) is stored as the job's result.
  static Outcome Ok(std::string result_json = "null");
  // A retryable failure: the server schedules the next attempt with the queue's backoff, or
  // after `after` when given (0 re-delivers at once). Exhausted attempts make the job dead.
  static Outcome Retry(std::string message,
                       std::optional<std::chrono::milliseconds> after = std::nullopt);
  static Outcome Retry(std::chrono::milliseconds after) { return Retry("retry requested", after); }
  // A failure that retrying cannot fix: the job goes dead at once with this message.
  static Outcome Permanent(std::string message);
  // The handler stopped because the job was cancelled (non-retryable, type "cancelled"): the
  // job ends `cancelled` when its cancel was requested, else dead.
  static Outcome Cancelled(std::string message = "stopped: the job was cancelled");
  // Sets the error type reported with a failure (1..128 bytes; default "retry" for Retry,
  // "permanent" for Permanent, "cancelled" for Cancelled). Returns *this for chaining.
  Outcome& WithType(std::string type);

  Kind kind() const { return kind_; }
  const std::string& result_json() const { return text_; }  // kOk
  const std::string& message() const { return text_; }      // kRetry, kPermanent, kCancelled
  const std::string& type() const { return type_; }
  std::optional<std::chrono::milliseconds> retry_after() const { return after_; }

 private:
  Outcome(Kind kind, std::string text, std::string type) noexcept
      : kind_(kind), text_(std::move(text)), type_(std::move(type)) {}
  Kind kind_;
  std::string text_;
  std::string type_;
  std::optional<std::chrono::milliseconds> after_;
};

using Handler = std::function<Outcome(JobContext& job)>;

// Counters since Run() started; a consistent-enough snapshot for logs and tests.
struct WorkerStats {
  std::uint64_t leased = 0;       // jobs received from the server
  std::uint64_t succeeded = 0;    // acks the server confirmed
  std::uint64_t failed = 0;       // fails (retry or permanent) the server confirmed
  std::uint64_t handed_back = 0;  // jobs failed with retry_in_ms 0 at shutdown
  std::uint64_t leases_lost = 0;  // 409/404 on heartbeat, ack or fail
  std::uint64_t cancelled = 0;    // cancellations learnt (cancel watch or heartbeats)
  std::uint64_t timeouts = 0;     // attempts stopped at their execution timeout (kTimeout)
  std::uint64_t heartbeats = 0;   // heartbeats the server answered
  std::uint64_t reconnects = 0;   // lease requests retried: no answer, 5xx, 408, 429
  int running = 0;                // handlers running now
};

class Worker {
 public:
  explicit Worker(WorkerOptions options);
  // Must not run while Run() does: call Stop() and let Run() return first.
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Registers the handler of one job kind; a later call for the same kind replaces it.
  void Handle(std::string kind, Handler handler);
  // The handler for kinds that have none of their own. Without one, such jobs fail as
  // retryable (type "unknown_kind"): a newer worker that knows the kind may be rolling out.
  void HandleAll(Handler handler);

  // Runs until Stop(); returns OK, `invalid_request` (http_status() 0) for bad options (no
  // queue, bad URL, concurrency < 1, ...) without contacting the server, or, after a graceful
  // shutdown, the server's final refusal of the lease requests (any 4xx but 408/429, with its
  // http_status()).
  Status Run();
  // Asks Run() to shut down (see the header comment); returns at once. `grace` replaces
  // shutdown_grace when given; a later call may only shorten it.
  void Stop(std::optional<std::chrono::milliseconds> grace = std::nullopt);
  // Run() with SIGTERM and SIGINT turned into Stop(); a second signal stops with no grace.
  // Blocks those signals in the calling thread and every thread the worker starts (handler
  // threads included), and restores the mask before returning. Returns Run()'s Status.
  Status RunUntilSignal();

  WorkerStats Stats() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace yardmaster
