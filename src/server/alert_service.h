// AlertService: runs the `[[alerts]]` rules of the config file inside the server
// (docs/operations.md, "Alerts"; GET /v1/alerts in docs/api.md).
//
// Two threads of its own, both clients of the Broker like any producer or worker:
//
//   evaluator thread   every `evaluate_interval_ms`: samples every queue (QueueSampleSource),
//                      runs obs/alerts/AlertEvaluator, and enqueues one delivery job per event
//                      and webhook into the reserved queue `_ym.alerts` (kAlertQueue), with an
//                      idempotency key per (event, webhook) (alerts::DeliveryKey). An enqueue
//                      the broker refuses (draining, read-only store, busy) is tried again at
//                      the next evaluation with the same key, so it is enqueued at most once.
//   delivery thread    long-polls `_ym.alerts` through Broker::Lease and POSTs each job's
//                      payload (the JSON notification) to its webhook with the project's HTTP
//                      client: acks on 2xx, fails the attempt otherwise, so the job's retry and
//                      backoff apply and it goes dead (visible, replayable) after max_attempts.
//
// What survives a restart: the rules come from the config file; instance state lives in memory
// and is rebuilt at Start() from the delivery jobs kept in the store (their payloads are the
// events): an instance whose last event was `firing` comes back firing in the same episode, so
// it does not fire again and resolves under the same dedupe key. Pending instances, values and
// the windows of failure_ratio and dead_growth start afresh. The rebuild sees what retention
// keeps of `_ym.alerts` (succeeded jobs: retention_succeeded_ms, 1 day by default).
//
// Threads: Start/Stop from the main thread; RenderJson from any thread (under mu_).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "obs/alerts/evaluator.h"
#include "obs/alerts/rule.h"
#include "server/broker.h"

namespace ym {

// Where the evaluator's samples come from, behind an interface so tests (and another source)
// can stand in.
class QueueSampleSource {
 public:
  virtual ~QueueSampleSource() = default;
  // One sample per queue core holds. Any thread (the evaluator thread calls it).
  virtual std::vector<alerts::QueueSample> Sample() = 0;
};

// Samples Broker::QueueGauges() (ready jobs, oldest ready age, waiting long-polls, last poll;
// refreshed by core about once a second) and Broker::job_stats() (the counters of
// ym_job_events_total, summed over the kinds of each queue: succeeded; failed + lease_expired +
// timed_out; dead), both read without waiting on core. Limitation: the (queue, kind) pairs past
// `metrics_max_label_sets` are counted under "~other", not per queue, so failure_ratio and
// dead_growth do not see the queues whose pairs all came after the cap. O(queues + label sets)
// per sample.
class GaugeSampleSource final : public QueueSampleSource {
 public:
  explicit GaugeSampleSource(const Broker& broker) : broker_(broker) {}
  std::vector<alerts::QueueSample> Sample() override;

 private:
  const Broker& broker_;
};

struct AlertServiceOptions {
  std::int64_t evaluate_interval_ms = 1000;
  // Delivery jobs: attempts and backoff (full jitter up to the cap, as for any job).
  std::int32_t max_attempts = 12;
  Backoff backoff{1000, 300'000, 2.0};
  std::int64_t lease_ms = 60'000;
  std::int64_t webhook_timeout_ms = 10'000;  // connect, and again write + read the response
  std::int64_t poll_wait_ms = 1000;          // the delivery worker's long-poll
  // Events whose enqueue the broker refused, kept to try again; past this the oldest is dropped
  // (and counted).
  std::size_t max_unenqueued = 10'000;
};

class AlertService {
 public:
  AlertService(Broker& broker, const Clock& clock, std::vector<alerts::AlertRule> rules,
               QueueSampleSource& source, AlertServiceOptions options = {});
  ~AlertService();  // calls Stop()
  AlertService(const AlertService&) = delete;
  AlertService& operator=(const AlertService&) = delete;

  // Rebuilds the instances from the stored delivery jobs, then starts both threads. Only once,
  // after Broker::Start(). With no rule it starts nothing (and GET /v1/alerts lists none).
  Status Start();
  // Stops both threads: an in-flight POST is interrupted and its job handed back to the broker
  // (Broker::Release, no attempt counted). Idempotent; call before Broker::Stop().
  void Stop();

  // The body of GET /v1/alerts (docs/api.md).
  std::string RenderJson() const;

 private:
  struct Delivery;
  void EvaluateLoop();
  void DeliverLoop();
  void EnqueuePending();
  Status Restore();
  // Waits up to `ms` for Stop(); false once stopping.
  bool SleepFor(std::int64_t ms);

  Broker& broker_;
  const Clock& clock_;
  QueueSampleSource& source_;
  const AlertServiceOptions options_;
  std::vector<alerts::AlertRule> rules_;  // the evaluator's copy is the same

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;             // GUARDED_BY(mu_)
  alerts::AlertEvaluator evaluator_;  // GUARDED_BY(mu_)
  // Delivery jobs per event (dedupe key), for GET /v1/alerts. Holds the keys of the instances'
  // last events only.
  std::map<std::string, std::vector<JobId>> jobs_of_event_;  // GUARDED_BY(mu_)
  struct Unenqueued {
    alerts::AlertEvent event;
    std::size_t rule = 0;
    std::size_t webhook = 0;
  };
  std::vector<Unenqueued> unenqueued_;  // evaluator thread only
  std::atomic<std::uint64_t> evaluations_{0};
  std::atomic<std::uint64_t> events_{0};
  std::atomic<std::uint64_t> enqueue_retries_{0};
  std::atomic<std::uint64_t> dropped_events_{0};
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> delivery_failures_{0};

  std::unique_ptr<Delivery> delivery_;  // the delivery thread's HTTP clients
  std::thread evaluator_thread_;
  std::thread delivery_thread_;
  bool started_ = false;
};

}  // namespace ym
