// The worker runtime: leaser, slots, heartbeater and acker around one mutex-guarded table of
// leased jobs. The contract is in include/yardmaster/worker.h.
//
// A leased job moves through:
//
//   leased --(slot takes it)--> running --(handler returns)--> reporting --(reply)--> forgotten
//     |                           |
//     +--(Stop)--> handed back    +--(grace runs out)--> handed back --(reply)--> forgotten
//
// and it stays in `jobs_` (so it is heartbeated) until the server has confirmed its outcome or
// refused its lease. Lost leases leave the table at once, from whichever state.

#include "yardmaster/worker.h"

#include <cxxabi.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "client/api_client.h"
#include "common/json.h"
#include "sdk/runtime_policy.h"
#include "yardmaster/client.h"

namespace yardmaster {

JobContext::JobContext(std::string id, std::string ns, std::string queue, std::string kind,
                       std::string payload_json, std::int32_t attempt, std::int32_t max_attempts,
                       std::vector<std::string> tags)
    : id_(std::move(id)),
      ns_(std::move(ns)),
      queue_(std::move(queue)),
      kind_(std::move(kind)),
      payload_(std::move(payload_json)),
      attempt_(attempt),
      max_attempts_(max_attempts),
      tags_(std::move(tags)) {}

bool JobContext::SleepFor(std::chrono::milliseconds d) const {
  // Polling in short steps keeps JobContext free of a condition variable that every runtime
  // path would have to signal; 10 ms adds little to a cancel delivered by the cancel watch.
  const auto until = std::chrono::steady_clock::now() + d;
  while (!cancelled()) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(until - now, std::chrono::milliseconds(10)));
  }
  return false;
}

void JobContext::MarkStopped(StopReason reason) {
  StopReason expected = StopReason::kNone;
  reason_.compare_exchange_strong(expected, reason, std::memory_order_acq_rel);
}

namespace {

constexpr std::size_t kMaxProgressBytes = 4096;  // the server's limit (docs/api.md)

bool IsPercent(const ym::json::Value& v) {
  std::optional<double> d = v.AsDouble();
  return v.IsNumber() && d && *d >= 0.0 && *d <= 100.0;
}

}  // namespace

Status JobContext::Progress(double percent) {
  if (!(percent >= 0.0 && percent <= 100.0)) {
    return Status("validation_failed", "progress: percent must be 0..100");
  }
  // Shortest text that reads back as the same double.
  char buf[64];
  std::snprintf(buf, sizeof buf, "{\"percent\":%.17g}", percent);
  return Progress(buf);
}

Status JobContext::Progress(std::string_view object_json) {
  auto doc = ym::json::Document::Parse(object_json);
  if (!doc.ok() || !doc->root().IsObject()) {
    return Status("validation_failed", "progress: must be a JSON object");
  }
  for (const auto& m : doc->root()) {
    if (m.name.GetString() == "percent" && !IsPercent(m.value)) {
      return Status("validation_failed", "progress: \"percent\" must be a number 0..100");
    }
  }
  if (doc->text().size() > kMaxProgressBytes) {
    return Status("validation_failed", "progress: at most 4096 bytes of JSON");
  }
  std::function<void()> hook;
  {
    std::lock_guard<std::mutex> lock(progress_mu_);
    progress_ = std::string(doc->text());
    hook = progress_hook_;
  }
  if (hook) hook();
  return Status::Ok();
}

void JobContext::SetProgressHook(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(progress_mu_);
  progress_hook_ = std::move(hook);
}

std::optional<std::string> JobContext::TakeProgress() {
  std::lock_guard<std::mutex> lock(progress_mu_);
  std::optional<std::string> out = std::move(progress_);
  progress_.reset();
  return out;
}

Outcome Outcome::Ok(std::string result_json) {
  return Outcome(Kind::kOk, std::move(result_json), "");
}

Outcome Outcome::Retry(std::string message, std::optional<std::chrono::milliseconds> after) {
  Outcome o(Kind::kRetry, std::move(message), "retry");
  o.after_ = after;
  return o;
}

Outcome Outcome::Permanent(std::string message) {
  return Outcome(Kind::kPermanent, std::move(message), "permanent");
}

Outcome Outcome::Cancelled(std::string message) {
  return Outcome(Kind::kCancelled, std::move(message), "cancelled");
}

Outcome& Outcome::WithType(std::string type) {
  type_ = std::move(type);
  return *this;
}

namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
using ym::client::ApiClient;

std::int64_t NowEpochMs() {
  return std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string DefaultWorkerId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "worker") + "-" + std::to_string(getpid());
}

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == ':' || c == '-';
  });
}

// The demangled type of the exception being handled ("std::runtime_error"); call only inside a
// catch block. Works for any thrown type, std::exception or not.
std::string CurrentExceptionTypeName() {
  const std::type_info* type = abi::__cxa_current_exception_type();
  if (type == nullptr) return "exception";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type->name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type->name());
}

// An idle worker sends at most 10 lease requests a second, whatever poll_wait says
// (docs/workers.md, "Leasing").
constexpr Millis kMinEmptyLeaseInterval{100};

// How long one cancel watch waits on the server for news (POST /v1/cancels:watch); a cancel
// arrives as soon as it is requested whatever this is, it only sets how often an idle watch is
// renewed.
constexpr Millis kCancelWatchWait{25'000};
// A watch answered without news faster than this (a draining server answers at once) is not
// renewed before kCancelWatchPause, so it cannot turn into a request loop.
constexpr Millis kCancelWatchMinRound{100};
constexpr Millis kCancelWatchPause{500};

enum class JobState { kLeased, kRunning, kReporting, kHandedBack };

struct Tracked {
  std::string id;
  std::string token;
  Millis lease{0};
  Clock::time_point next_heartbeat;
  JobState state = JobState::kLeased;
  std::shared_ptr<JobContext> ctx;
  bool cancel_counted = false;
  Clock::time_point progress_sent{};  // when the last progress report went out
  // When the attempt reaches its execution timeout (the job's timeout_ms from when the lease
  // arrived); max(): the job has none.
  Clock::time_point deadline = Clock::time_point::max();
  std::int64_t deadline_at_ms = 0;  // the same, as the broker sent it (its wall clock)
};

// When to beat next: `planned`, unless the broker already capped the lease at the attempt's
// deadline (its expiry, `expires_at_ms`, reached deadline_at on the broker's own clock): such a
// lease cannot be extended, so no beat is due before the deadline (a progress report still
// brings one forward; cancels arrive by the cancel watch).
Clock::time_point NextBeat(const Tracked& t, std::int64_t expires_at_ms,
                           Clock::time_point planned) {
  if (t.deadline_at_ms != 0 && expires_at_ms >= t.deadline_at_ms) {
    return std::max(planned, t.deadline);
  }
  return planned;
}

// JobContext::Progress() reports go out at most this often per job.
constexpr Millis kProgressInterval{250};

// One outcome waiting to be sent.
struct Report {
  std::shared_ptr<Tracked> job;
  bool ack = true;
  std::optional<std::string> result_json;  // ack
  ym::client::FailureInfo error;           // fail
  std::optional<std::int64_t> retry_in_ms;
  bool handback = false;
};

}  // namespace

class Worker::Impl {
 public:
  explicit Impl(WorkerOptions options) : opt_(std::move(options)) {
    if (opt_.worker_id.empty()) opt_.worker_id = DefaultWorkerId();
    opt_.server_url = ResolveServerUrl(opt_.server_url);
  }

  Status Validate() const {
    if (opt_.queues.empty() || opt_.queues.size() > 64) {
      return Status("invalid_request", "worker needs 1 to 64 queues");
    }
    for (const std::string& q : opt_.queues) {
      if (!ValidName(q)) {
        return Status("invalid_request",
                      "queue name '" + q + "' must be 1..128 of [A-Za-z0-9_.:-]");
      }
    }
    if (opt_.concurrency < 1 || opt_.concurrency > 1000) {
      return Status("invalid_request", "concurrency must be 1..1000");
    }
    if (opt_.prefetch && (*opt_.prefetch < 0 || opt_.concurrency + *opt_.prefetch > 1000)) {
      return Status("invalid_request", "prefetch must be >= 0 and concurrency + prefetch <= 1000");
    }
    if (opt_.lease && (opt_.lease->count() < 100 || opt_.lease->count() > 86'400'000)) {
      return Status("invalid_request", "lease must be 100..86400000 ms");
    }
    if (opt_.poll_wait.count() < 0 || opt_.poll_wait.count() > 30'000) {
      return Status("invalid_request", "poll_wait must be 0..30000 ms");
    }
    if (opt_.heartbeat_fraction < 0.05 || opt_.heartbeat_fraction > 0.9) {
      return Status("invalid_request", "heartbeat_fraction must be 0.05..0.9");
    }
    if (opt_.ack_batch_size < 1 || opt_.ack_batch_size > 1000) {
      return Status("invalid_request", "ack_batch_size must be 1..1000");
    }
    if (opt_.ack_flush_interval.count() < 0 || opt_.shutdown_grace.count() < 0 ||
        opt_.report_grace.count() < 0) {
      return Status("invalid_request",
                    "ack_flush_interval, shutdown_grace and report_grace must be >= 0");
    }
    if (auto url = ym::client::ParseBaseUrl(opt_.server_url); !url.ok()) {
      return ym::sdk::ToPublic(url.status(), 0);
    }
    return Status::Ok();
  }

  Status Run();
  void Stop(std::optional<Millis> grace);

  // Every line starts with its severity (WorkerOptions::log): "warning: " for what an operator
  // should look at (failed attempts, lost leases, retries), "error: " for what the worker
  // gives up on, "info: " for its life.
  enum class Severity { kInfo, kWarning, kError };
  void Log(Severity severity, const std::string& line) {
    const char* prefix = severity == Severity::kError     ? "error: "
                         : severity == Severity::kWarning ? "warning: "
                                                          : "info: ";
    std::lock_guard<std::mutex> lock(log_mu_);
    if (opt_.log) {
      opt_.log(prefix + line);
    } else {
      std::cerr << "yardmaster worker " << opt_.worker_id << ": " << prefix << line << std::endl;
    }
  }
  void Log(const std::string& line) { Log(Severity::kInfo, line); }

  // One line per failed attempt, the C++ counterpart of the Python worker's WARNING record:
  // the exception's type (or the outcome's error type) and message, and what happens next.
  // C++ has no portable stack trace to add; the type and what() are what the server records.
  void LogFailedAttempt(const JobContext& ctx, const Outcome& outcome) {
    const StopReason stop = ctx.stop_reason();
    const bool retryable = outcome.kind() == Outcome::Kind::kRetry;
    const bool cancel_obeyed =
        outcome.kind() == Outcome::Kind::kCancelled && stop == StopReason::kCancelled;
    std::string then;
    if (stop == StopReason::kLeaseLost) {
      then = "not reported: the lease was lost";
    } else if (stop == StopReason::kTimeout) {
      then = "not reported: the attempt reached its timeout and the broker failed it";
    } else if (stop == StopReason::kShutdown) {
      then = "not reported: the job was handed back at shutdown";
    } else if (cancel_obeyed) {
      then = "the job ends cancelled";
    } else if (!retryable) {
      then = "not retried: the job is dead";
    } else if (ctx.max_attempts() > 0 && ctx.attempt() >= ctx.max_attempts()) {
      then = "no attempts left: the job is dead";
    } else {
      then = "it will be retried";
    }
    Log(cancel_obeyed ? Severity::kInfo : Severity::kWarning,
        "job " + ctx.id() + " (queue " + ctx.queue() + ", kind " + ctx.kind() + ") attempt " +
            std::to_string(ctx.attempt()) + " of " + std::to_string(ctx.max_attempts()) +
            " failed (" + outcome.type() + "): " + outcome.message() + "; " + then);
  }

  WorkerOptions opt_;
  std::unordered_map<std::string, Handler> handlers_;
  Handler default_handler_;

  mutable std::mutex mu_;
  // One condition variable for every wait: the waits are few and short, and a single one cannot
  // miss a wake-up that a second one would have needed.
  std::condition_variable cv_;
  bool started_ = false;                                  // GUARDED_BY(mu_)
  bool stopping_ = false;                                 // GUARDED_BY(mu_)
  Clock::time_point stop_deadline_;                       // GUARDED_BY(mu_)
  bool acker_exit_ = false;                               // GUARDED_BY(mu_)
  Clock::time_point acker_deadline_;                      // GUARDED_BY(mu_)
  bool heartbeater_exit_ = false;                         // GUARDED_BY(mu_)
  std::deque<std::shared_ptr<Tracked>> queued_;           // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<Tracked>> jobs_;  // GUARDED_BY(mu_)
  std::deque<Report> reports_;                            // GUARDED_BY(mu_)
  Clock::time_point oldest_report_;                       // GUARDED_BY(mu_)
  WorkerStats stats_;                                     // GUARDED_BY(mu_)
  ym::sdk::AutoPrefetch auto_prefetch_;                   // GUARDED_BY(mu_)
  // The leaser's connection while its loop runs, so that Stop() can interrupt a long-poll.
  ym::client::HttpClient* leaser_http_ = nullptr;  // GUARDED_BY(mu_)
  // The cancel watcher's connection, so that Run() can end its long-poll at shutdown.
  ym::client::HttpClient* watcher_http_ = nullptr;  // GUARDED_BY(mu_)
  // A lease refusal that retrying cannot heal; Run() returns it.
  std::optional<Status> fatal_;  // GUARDED_BY(mu_)

  std::mutex log_mu_;

 private:
  Result<ApiClient> NewClient(Millis request_timeout);
  void LeaserLoop();
  void SlotLoop();
  void HeartbeatLoop();
  // Keeps one POST /v1/cancels:watch open while jobs are held, so that a cancel reaches a
  // running handler at once rather than at its next heartbeat.
  void CancelWatchLoop();
  // Marks a held job cancelled (its handler's stop token fires). Requires mu_.
  void CancelLocked(Tracked& t) {
    if (t.cancel_counted) return;
    t.cancel_counted = true;
    ++stats_.cancelled;
    t.ctx->MarkStopped(StopReason::kCancelled);
  }
  void AckLoop();
  // Stops the jobs whose execution timeout has come (`now` >= their deadline): the broker has
  // failed those attempts with type "timeout", so they are no longer heartbeated or reported,
  // and their handlers are told to stop (kTimeout). A job whose outcome is already queued is
  // left to its report (the report's 409, if any, settles it). Requires mu_.
  void TimeOutLocked(Clock::time_point now) {
    std::vector<std::shared_ptr<Tracked>> due;
    for (const auto& [id, t] : jobs_) {
      if (t->deadline <= now && (t->state == JobState::kLeased || t->state == JobState::kRunning))
        due.push_back(t);
    }
    for (const std::shared_ptr<Tracked>& t : due) {
      t->ctx->MarkStopped(StopReason::kTimeout);
      jobs_.erase(t->id);
      ++stats_.timeouts;
      Log(Severity::kWarning, "job " + t->id + " (queue " + t->ctx->queue() + ", kind " +
                                  t->ctx->kind() + ") attempt " +
                                  std::to_string(t->ctx->attempt()) + " reached its timeout of " +
                                  std::to_string(t->ctx->timeout()->count()) +
                                  " ms; the broker fails it (timeout) and the handler was told "
                                  "to stop");
    }
    if (!due.empty()) cv_.notify_all();
  }
  // "no handler for kind 'x' in worker W (kinds: a, b)".
  std::string UnknownKindMessage(const std::string& kind) const {
    std::vector<std::string> kinds;
    for (const auto& [k, h] : handlers_) kinds.push_back(k);
    std::sort(kinds.begin(), kinds.end());
    std::string list;
    for (const std::string& k : kinds) list += (list.empty() ? "" : ", ") + k;
    return "no handler for kind '" + kind + "' in worker " + opt_.worker_id +
           " (kinds: " + (list.empty() ? "none" : list) + ")";
  }
  // Runs the handler of one job and turns what it did into a Report (or nothing when the job
  // was handed back or lost meanwhile).
  void RunOne(const std::shared_ptr<Tracked>& job);
  // Queues a fail with retry_in_ms 0 for a job this worker will not finish. Requires mu_.
  void HandBackLocked(const std::shared_ptr<Tracked>& job, const std::string& why);
  // Drops a job whose lease the server refused. Requires mu_.
  void LoseLocked(const std::shared_ptr<Tracked>& job, const std::string& where,
                  const ym::Status& why);
  // Whether `job` is still the tracked lease of its id (a re-delivery to this same worker
  // replaces the entry). Requires mu_.
  bool TrackedLocked(const std::shared_ptr<Tracked>& job) const {
    auto it = jobs_.find(job->id);
    return it != jobs_.end() && it->second == job;
  }
  void ForgetLocked(const std::shared_ptr<Tracked>& job) {
    if (TrackedLocked(job)) jobs_.erase(job->id);
  }
  void PushReportLocked(Report r) {
    if (reports_.empty()) oldest_report_ = Clock::now();
    reports_.push_back(std::move(r));
    cv_.notify_all();
  }
  // Jobs to keep queued ahead of free slots now: the fixed option, or the automatic target.
  int PrefetchTargetLocked() const {
    return opt_.prefetch ? *opt_.prefetch : auto_prefetch_.Target(opt_.concurrency);
  }
  // Stop() without taking mu_ again. Requires mu_.
  void StopLocked(std::optional<Millis> grace);
  // Waits on cv_ for up to `d`, returning early when `stop()` becomes true.
  template <typename Pred>
  void SleepUnless(std::unique_lock<std::mutex>& lock, Millis d, Pred stop) {
    cv_.wait_for(lock, d, stop);
  }
};

Result<ApiClient> Worker::Impl::NewClient(Millis request_timeout) {
  ym::client::HttpClientOptions http;
  http.connect_timeout = Millis(2'000);
  http.request_timeout = request_timeout;
  http.ca_file = opt_.ca_file;
  http.client_cert_file = opt_.client_cert_file;
  http.client_key_file = opt_.client_key_file;
  http.token = opt_.token;
  http.token_file = opt_.token_file;
  ym::Result<ApiClient> api = ApiClient::Create(opt_.server_url, http);
  if (!api.ok()) return ym::sdk::ToPublic(api.status(), 0);
  return std::move(api).value();
}

void Worker::Impl::HandBackLocked(const std::shared_ptr<Tracked>& job, const std::string& why) {
  job->state = JobState::kHandedBack;
  job->ctx->MarkStopped(StopReason::kShutdown);
  Report r;
  r.job = job;
  r.ack = false;
  r.error = {"shutdown", why, true};
  // 0: the job is ready again at once, for a worker that is not shutting down.
  r.retry_in_ms = 0;
  r.handback = true;
  PushReportLocked(std::move(r));
}

void Worker::Impl::LoseLocked(const std::shared_ptr<Tracked>& job, const std::string& where,
                              const ym::Status& why) {
  if (!TrackedLocked(job)) return;
  const std::string id = job->id;
  job->ctx->MarkStopped(StopReason::kLeaseLost);
  jobs_.erase(id);
  ++stats_.leases_lost;
  // Log outside the hot path's lock would be nicer, but lost leases are rare and the line is
  // what an operator needs to correlate with a duplicate run.
  Log(Severity::kWarning, "lease of job " + id + " lost (" + where + ": " + why.ToString() + ")");
}

void Worker::Impl::LeaserLoop() {
  Result<ApiClient> api_or = NewClient(Millis(30'000));
  if (!api_or.ok()) return;  // Validate() already parsed the URL, so this cannot happen.
  ApiClient& api = *api_or;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    leaser_http_ = &api.http();
  }
  // Stop() must never reach the client once this function has returned.
  struct Unpublish {
    Impl* self;
    ~Unpublish() {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->leaser_http_ = nullptr;
    }
  } unpublish{this};
  ym::sdk::ReconnectBackoff backoff(
      opt_.reconnect_min, opt_.reconnect_max,
      static_cast<std::uint64_t>(getpid()) ^ static_cast<std::uint64_t>(NowEpochMs()));
  bool down_logged = false;
  while (true) {
    int want = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] {
        want = ym::sdk::LeaseWant(opt_.concurrency, opt_.concurrency + PrefetchTargetLocked(),
                                  stats_.running, static_cast<int>(queued_.size()));
        return stopping_ || want > 0;
      });
      if (stopping_) return;
    }
    ym::client::LeaseRequest req;
    req.queues = opt_.queues;
    req.max = static_cast<std::uint32_t>(want);
    req.wait_ms = opt_.poll_wait.count();
    req.worker_id = opt_.worker_id;
    if (opt_.lease) req.lease_ms = opt_.lease->count();
    const auto sent = Clock::now();
    ym::Result<std::vector<ym::client::LeasedJob>> got = api.Lease(req);
    const auto round_trip = Clock::now() - sent;
    if (!got.ok()) {
      const int http_status = api.last_http_status();
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;  // interrupted by Stop(), or failed while stopping: nothing to do
      if (ym::sdk::LeaseRefusalIsFinal(http_status)) {
        Log(Severity::kError,
            "lease refused (" + got.status().ToString() + "); stopping the worker");
        fatal_ = ym::sdk::ToPublic(got.status(), http_status);
        StopLocked(std::nullopt);
        return;
      }
      ++stats_.reconnects;
      Millis delay = backoff.Next();
      if (auto after = api.last_retry_after_s(); http_status == 429 && after) {
        delay = std::max(delay, Millis(*after * 1000));
      }
      if (!down_logged) {
        Log(Severity::kWarning,
            "lease failed (" + got.status().ToString() + "); retrying with backoff");
        down_logged = true;
      }
      SleepUnless(lock, delay, [&] { return stopping_; });
      continue;
    }
    if (down_logged) {
      Log("leasing again");
      down_logged = false;
    }
    backoff.Reset();
    if (got->empty() && round_trip < kMinEmptyLeaseInterval) {
      // An empty answer that came back at once (poll_wait 0, or a server that ends long-polls
      // early): pause, so that an idle worker cannot turn into a request loop.
      std::unique_lock<std::mutex> lock(mu_);
      SleepUnless(lock, std::chrono::duration_cast<Millis>(kMinEmptyLeaseInterval - round_trip),
                  [&] { return stopping_; });
      continue;
    }
    const std::int64_t now_ms = NowEpochMs();
    std::lock_guard<std::mutex> lock(mu_);
    // A full answer did not long-poll: its time is the round trip that prefetch must cover.
    if (static_cast<int>(got->size()) == want) auto_prefetch_.RecordRoundTrip(round_trip);
    for (ym::client::LeasedJob& j : *got) {
      auto t = std::make_shared<Tracked>();
      t->id = j.id;
      t->token = j.token;
      t->lease = ym::sdk::EffectiveLease(opt_.lease, j.expires_at_ms, now_ms);
      t->next_heartbeat = Clock::now() + ym::sdk::HeartbeatDelay(t->lease, opt_.heartbeat_fraction);
      t->ctx = std::make_shared<JobContext>(std::move(j.id), std::move(j.ns), std::move(j.queue),
                                            std::move(j.kind), std::move(j.payload_json), j.attempt,
                                            j.max_attempts, std::move(j.tags));
      t->ctx->SetTraceContext(std::move(j.traceparent), std::move(j.tracestate));
      if (j.timeout_ms && *j.timeout_ms > 0) {
        // From the lease's arrival, on this process's steady clock: never earlier than the
        // broker's deadline, whatever the two wall clocks say.
        t->deadline = Clock::now() + Millis(*j.timeout_ms);
        t->deadline_at_ms = j.deadline_at_ms.value_or(0);
        t->ctx->SetTimeout(Millis(*j.timeout_ms), t->deadline);
        t->next_heartbeat = NextBeat(*t, j.expires_at_ms, t->next_heartbeat);
      }
      // A progress report brings the job's next heartbeat forward (at most every
      // kProgressInterval).
      t->ctx->SetProgressHook([this, weak = std::weak_ptr<Tracked>(t)] {
        std::shared_ptr<Tracked> job = weak.lock();
        if (!job) return;
        std::lock_guard<std::mutex> lock(mu_);
        if (!TrackedLocked(job)) return;
        const auto due = std::max(Clock::now(), job->progress_sent + kProgressInterval);
        if (due < job->next_heartbeat) {
          job->next_heartbeat = due;
          cv_.notify_all();
        }
      });
      ++stats_.leased;
      jobs_[t->id] = t;
      if (stopping_) {
        // A reply that crossed Stop(): do not start these.
        HandBackLocked(t, "worker shutting down; job not started");
      } else {
        queued_.push_back(t);
      }
    }
    cv_.notify_all();
  }
}

void Worker::Impl::SlotLoop() {
  while (true) {
    std::shared_ptr<Tracked> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
      if (stopping_) return;  // Run() hands back whatever is still queued.
      job = queued_.front();
      queued_.pop_front();
      if (!TrackedLocked(job)) continue;  // its lease was lost while it waited
      job->state = JobState::kRunning;
      ++stats_.running;
      cv_.notify_all();  // the leaser counts running + queued
    }
    RunOne(job);
  }
}

void Worker::Impl::RunOne(const std::shared_ptr<Tracked>& job) {
  JobContext& ctx = *job->ctx;
  const Handler* handler = nullptr;
  if (auto it = handlers_.find(ctx.kind()); it != handlers_.end()) {
    handler = &it->second;
  } else if (default_handler_) {
    handler = &default_handler_;
  }
  std::optional<Outcome> outcome;
  std::optional<Clock::duration> run_time;
  if (ctx.stop_reason() == StopReason::kCancelled) {
    // The cancel was learnt while the job waited in the queue: it is not started at all.
    outcome = Outcome::Cancelled("cancelled before it started");
  } else if (handler == nullptr) {
    outcome = Outcome::Retry(UnknownKindMessage(ctx.kind())).WithType("unknown_kind");
  } else {
    const auto started = Clock::now();
    try {
      outcome = (*handler)(ctx);
    } catch (const std::exception& e) {
      outcome = Outcome::Retry(e.what()).WithType(CurrentExceptionTypeName());
    } catch (...) {
      outcome = Outcome::Retry("a non-standard exception escaped the handler")
                    .WithType(CurrentExceptionTypeName());
    }
    run_time = Clock::now() - started;
  }
  if (outcome->kind() != Outcome::Kind::kOk) LogFailedAttempt(ctx, *outcome);
  std::lock_guard<std::mutex> lock(mu_);
  --stats_.running;
  if (run_time) auto_prefetch_.RecordHandler(*run_time);
  cv_.notify_all();
  // Handed back (grace ran out) or lost: someone else will run it; this outcome is moot.
  if (job->state != JobState::kRunning || !TrackedLocked(job)) return;
  job->state = JobState::kReporting;
  Report r;
  r.job = job;
  switch (outcome->kind()) {
    case Outcome::Kind::kOk:
      r.ack = true;
      r.result_json = outcome->result_json();
      break;
    case Outcome::Kind::kRetry:
      r.ack = false;
      r.error = {outcome->type(), outcome->message(), true};
      if (outcome->retry_after()) r.retry_in_ms = outcome->retry_after()->count();
      break;
    case Outcome::Kind::kPermanent:
    case Outcome::Kind::kCancelled:
      r.ack = false;
      r.error = {outcome->type(), outcome->message(), false};
      break;
  }
  // The API bounds these fields; clipping here keeps one long message from making the server
  // refuse the whole outcome.
  if (r.error.message.size() > 8192) r.error.message.resize(8192);
  if (r.error.type.empty()) r.error.type = "error";
  if (r.error.type.size() > 128) r.error.type.resize(128);
  PushReportLocked(std::move(r));
}

void Worker::Impl::HeartbeatLoop() {
  Result<ApiClient> api_or = NewClient(Millis(10'000));
  if (!api_or.ok()) return;
  ApiClient& api = *api_or;
  struct Due {
    std::shared_ptr<Tracked> job;
    std::string id, token;
  };
  while (true) {
    std::vector<Due> due;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (!heartbeater_exit_) {
        Clock::time_point next = Clock::now() + Millis(1'000);
        for (const auto& [id, t] : jobs_) {
          next = std::min(next, t->next_heartbeat);
          // Only a job that can still time out (TimeOutLocked): a deadline passed while the
          // outcome is on its way must not make this loop spin.
          if (t->state == JobState::kLeased || t->state == JobState::kRunning) {
            next = std::min(next, t->deadline);
          }
        }
        if (next <= Clock::now()) break;
        cv_.wait_until(lock, next);
      }
      if (heartbeater_exit_) return;
      const auto now = Clock::now();
      TimeOutLocked(now);
      for (const auto& [id, t] : jobs_) {
        if (t->next_heartbeat <= now) due.push_back({t, t->id, t->token});
      }
    }
    for (const Due& d : due) {
      std::optional<std::int64_t> extend;
      if (opt_.lease) extend = opt_.lease->count();
      // A report that this beat fails to deliver is not sent again; the next one is.
      std::optional<std::string> progress = d.job->ctx->TakeProgress();
      ym::Result<ym::client::HeartbeatResult> r = api.Heartbeat(d.id, d.token, extend, progress);
      std::lock_guard<std::mutex> lock(mu_);
      if (!TrackedLocked(d.job)) continue;
      Tracked& t = *d.job;
      if (progress) t.progress_sent = Clock::now();
      switch (ym::sdk::ClassifyItem(r.status())) {
        case ym::sdk::ItemVerdict::kDone: {
          ++stats_.heartbeats;
          const Millis lease = ym::sdk::EffectiveLease(opt_.lease, r->expires_at_ms, NowEpochMs());
          t.lease = lease;
          t.next_heartbeat =
              NextBeat(t, r->expires_at_ms,
                       Clock::now() + ym::sdk::HeartbeatDelay(lease, opt_.heartbeat_fraction));
          if (r->cancel_requested) CancelLocked(t);
          break;
        }
        case ym::sdk::ItemVerdict::kLeaseLost:
          if (t.state == JobState::kReporting || t.state == JobState::kHandedBack) {
            // The outcome is queued or on its way, so this heartbeat probably crossed it and
            // the server has applied it already ("job 7 is succeeded"). Stop heartbeating; the
            // outcome's own reply settles the job, and counts a lost lease if it gets a 409 too.
            t.next_heartbeat = Clock::time_point::max();
          } else {
            LoseLocked(d.job, "heartbeat", r.status());
          }
          break;
        case ym::sdk::ItemVerdict::kRetry:
        case ym::sdk::ItemVerdict::kRejected:
          // Keep trying: the lease may still be alive when the server comes back.
          t.next_heartbeat =
              Clock::now() + ym::sdk::HeartbeatRetryDelay(t.lease, opt_.heartbeat_fraction);
          break;
      }
    }
  }
}

void Worker::Impl::CancelWatchLoop() {
  Result<ApiClient> api_or = NewClient(Millis(10'000));
  if (!api_or.ok()) return;
  ApiClient& api = *api_or;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (heartbeater_exit_) return;
    watcher_http_ = &api.http();
  }
  struct Unpublish {
    Impl* self;
    ~Unpublish() {
      std::lock_guard<std::mutex> lock(self->mu_);
      self->watcher_http_ = nullptr;
    }
  } unpublish{this};
  ym::sdk::ReconnectBackoff backoff(opt_.reconnect_min, opt_.reconnect_max,
                                    static_cast<std::uint64_t>(NowEpochMs()) * 17 + 3);
  // The ids the last answer held: the server answers at once when its set holds any other.
  std::vector<std::string> known;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return heartbeater_exit_ || !jobs_.empty(); });
      if (heartbeater_exit_) return;
    }
    const auto sent = Clock::now();
    ym::Result<std::vector<std::string>> got =
        api.WatchCancels(opt_.worker_id, known, kCancelWatchWait.count());
    const auto round_trip = Clock::now() - sent;
    std::unique_lock<std::mutex> lock(mu_);
    if (heartbeater_exit_) return;
    if (!got.ok()) {
      const int http_status = api.last_http_status();
      if (http_status == 404 || http_status == 405) {
        // A server older than the endpoint: heartbeats still carry cancels.
        Log("the server has no POST /v1/cancels:watch (" + got.status().ToString() +
            "); cancels arrive with heartbeats");
        return;
      }
      SleepUnless(lock, backoff.Next(), [&] { return heartbeater_exit_; });
      continue;
    }
    backoff.Reset();
    bool news = false;
    for (const std::string& id : *got) {
      if (std::find(known.begin(), known.end(), id) == known.end()) news = true;
      // Ids of jobs this worker does not hold (another process with the same worker_id, or a
      // job already reported) are ignored.
      if (auto it = jobs_.find(id); it != jobs_.end()) CancelLocked(*it->second);
    }
    known = std::move(*got);
    if (known.size() > 1000) known.resize(1000);  // the API's limit on `known`
    if (!news && round_trip < kCancelWatchMinRound) {
      SleepUnless(lock, kCancelWatchPause, [&] { return heartbeater_exit_; });
    }
  }
}

void Worker::Impl::AckLoop() {
  Result<ApiClient> api_or = NewClient(Millis(30'000));
  if (!api_or.ok()) return;
  ApiClient& api = *api_or;
  ym::sdk::ReconnectBackoff backoff(opt_.reconnect_min, opt_.reconnect_max,
                                    static_cast<std::uint64_t>(NowEpochMs()) * 31 + 7);
  while (true) {
    std::vector<Report> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (true) {
        const auto now = Clock::now();
        if (acker_exit_ && (reports_.empty() || now >= acker_deadline_)) {
          if (!reports_.empty()) {
            Log(Severity::kError,
                std::to_string(reports_.size()) +
                    " outcomes could not be reported before shutdown; their leases will expire");
          }
          return;
        }
        // At shutdown there is nothing to batch with any more: send at once.
        if (!reports_.empty() && acker_exit_) break;
        if (ym::sdk::ShouldFlushAcks(reports_.size(), opt_.ack_batch_size, oldest_report_, now,
                                     opt_.ack_flush_interval)) {
          break;
        }
        if (reports_.empty()) {
          cv_.wait(lock);
        } else {
          cv_.wait_until(lock, oldest_report_ + opt_.ack_flush_interval);
        }
      }
      const std::size_t n = std::min<std::size_t>(reports_.size(), 1000);
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(reports_.front()));
        reports_.pop_front();
      }
      oldest_report_ = Clock::now();
    }
    std::vector<ym::client::AckItem> acks;
    std::vector<ym::client::FailItem> fails;
    std::vector<const Report*> ack_src, fail_src;
    for (const Report& r : batch) {
      if (r.ack) {
        acks.push_back({r.job->id, r.job->token, r.result_json});
        ack_src.push_back(&r);
      } else {
        fails.push_back({r.job->id, r.job->token, r.error, r.retry_in_ms});
        fail_src.push_back(&r);
      }
    }
    ym::Result<ym::client::AckBatchResult> res = api.AckBatch(acks, fails);
    std::unique_lock<std::mutex> lock(mu_);
    if (!res.ok()) {
      const ym::sdk::ItemVerdict v = ym::sdk::ClassifyItem(res.status());
      if (v == ym::sdk::ItemVerdict::kRetry || v == ym::sdk::ItemVerdict::kLeaseLost) {
        // The whole request failed in transit: nothing was applied, send it all again later.
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
          reports_.push_front(std::move(*it));
        }
        oldest_report_ = Clock::now();
        SleepUnless(lock, backoff.Next(),
                    [&] { return acker_exit_ && Clock::now() >= acker_deadline_; });
        continue;
      }
      // Rejected as a whole (e.g. a result that is not JSON): fail those jobs permanently one by
      // one, so a single bad result cannot block every other outcome.
      Log(Severity::kWarning,
          "acks:batch refused (" + res.status().ToString() + "); reporting items one by one");
      for (Report& r : batch) {
        if (r.ack) {
          r.ack = false;
          r.error = {"invalid_result", "handler result refused: " + res.status().message(), false};
          r.result_json.reset();
        }
        reports_.push_back(std::move(r));
      }
      continue;
    }
    backoff.Reset();
    auto settle = [&](const Report& r, const ym::Status& s) {
      switch (ym::sdk::ClassifyItem(s)) {
        case ym::sdk::ItemVerdict::kDone:
          if (r.handback) {
            ++stats_.handed_back;
          } else if (r.ack) {
            ++stats_.succeeded;
          } else {
            ++stats_.failed;
          }
          ForgetLocked(r.job);
          break;
        case ym::sdk::ItemVerdict::kLeaseLost:
          LoseLocked(r.job, r.ack ? "ack" : "fail", s);
          break;
        case ym::sdk::ItemVerdict::kRetry:
          PushReportLocked(r);
          break;
        case ym::sdk::ItemVerdict::kRejected:
          if (r.ack) {
            Report f = r;
            f.ack = false;
            f.result_json.reset();
            f.error = {"invalid_result", "handler result refused: " + s.message(), false};
            Log(Severity::kWarning, "job " + r.job->id + ": result refused (" + s.ToString() +
                                        "); failing it as invalid_result");
            PushReportLocked(std::move(f));
          } else {
            Log(Severity::kError, "fail of job " + r.job->id + " refused (" + s.ToString() +
                                      "); its lease will expire");
            ForgetLocked(r.job);
          }
          break;
      }
    };
    for (std::size_t i = 0; i < ack_src.size(); ++i) settle(*ack_src[i], res->acks[i]);
    for (std::size_t i = 0; i < fail_src.size(); ++i) settle(*fail_src[i], res->fails[i]);
    cv_.notify_all();
  }
}

Status Worker::Impl::Run() {
  if (Status s = Validate(); !s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Status("invalid_state", "a Worker runs once");
    started_ = true;
  }
  std::thread leaser([this] { LeaserLoop(); });
  std::thread heartbeater([this] { HeartbeatLoop(); });
  std::thread watcher([this] { CancelWatchLoop(); });
  std::thread acker([this] { AckLoop(); });
  std::vector<std::thread> slots;
  for (int i = 0; i < opt_.concurrency; ++i) slots.emplace_back([this] { SlotLoop(); });

  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return stopping_; });
  Log("shutting down: " + std::to_string(stats_.running) + " running, " +
      std::to_string(queued_.size()) + " not started");
  for (const auto& job : queued_) HandBackLocked(job, "worker shutting down; job not started");
  queued_.clear();
  lock.unlock();
  leaser.join();  // at most one long-poll away; what it brings back is handed back

  lock.lock();
  // stop_deadline_ may move earlier while we wait (a second Stop), so re-read it each time.
  while (stats_.running > 0 && Clock::now() < stop_deadline_) {
    cv_.wait_until(lock, stop_deadline_);
  }
  if (stats_.running > 0) {
    int n = 0;
    for (const auto& [id, job] : jobs_) {
      if (job->state == JobState::kRunning) {
        HandBackLocked(job, "worker shut down before the handler finished");
        ++n;
      }
    }
    Log(Severity::kWarning,
        "grace period over: handed back " + std::to_string(n) + " running jobs");
  }
  lock.unlock();
  for (std::thread& t : slots) t.join();

  lock.lock();
  acker_exit_ = true;
  // Outcomes get their own grace: a server that is restarting right now should still hear them.
  acker_deadline_ = Clock::now() + opt_.report_grace;
  cv_.notify_all();
  lock.unlock();
  acker.join();

  lock.lock();
  heartbeater_exit_ = true;
  if (watcher_http_ != nullptr) watcher_http_->Interrupt();
  cv_.notify_all();
  lock.unlock();
  heartbeater.join();
  watcher.join();
  Log("stopped");
  return fatal_.value_or(Status::Ok());
}

void Worker::Impl::Stop(std::optional<Millis> grace) {
  std::lock_guard<std::mutex> lock(mu_);
  StopLocked(grace);
}

void Worker::Impl::StopLocked(std::optional<Millis> grace) {
  // A long-poll in flight would otherwise hold the shutdown for up to poll_wait.
  if (leaser_http_ != nullptr) leaser_http_->Interrupt();
  const auto deadline = Clock::now() + grace.value_or(opt_.shutdown_grace);
  if (!stopping_) {
    stopping_ = true;
    stop_deadline_ = deadline;
  } else {
    stop_deadline_ = std::min(stop_deadline_, deadline);
  }
  cv_.notify_all();
}

Worker::Worker(WorkerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Worker::~Worker() { Stop(Millis(0)); }

void Worker::Handle(std::string kind, Handler handler) {
  impl_->handlers_[std::move(kind)] = std::move(handler);
}

void Worker::HandleAll(Handler handler) { impl_->default_handler_ = std::move(handler); }

Status Worker::Run() { return impl_->Run(); }

void Worker::Stop(std::optional<std::chrono::milliseconds> grace) { impl_->Stop(grace); }

WorkerStats Worker::Stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu_);
  return impl_->stats_;
}

Status Worker::RunUntilSignal() {
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  // Threads inherit the mask, so every thread Run() starts has the signals blocked and only
  // the sigwait thread below ever receives them.
  pthread_sigmask(SIG_BLOCK, &set, &old);
  std::atomic<bool> done{false};  // atomic: read by the signal thread, set by this one
  std::thread signals([&] {
    int received = 0;
    const timespec tick{0, 100'000'000};
    while (!done.load()) {
      const int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig < 0) continue;  // timeout or EINTR: check `done` again
      ++received;
      impl_->Log(std::string(sig == SIGTERM ? "SIGTERM" : "SIGINT") +
                 (received == 1 ? ": stopping gracefully" : ": stopping now"));
      Stop(received == 1 ? std::nullopt : std::optional<Millis>(Millis(0)));
    }
  });
  Status s = Run();
  done.store(true);
  signals.join();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return s;
}

}  // namespace yardmaster
