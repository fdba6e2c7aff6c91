// Pure policies of the worker runtime (src/sdk/worker.cc): reconnect backoff, heartbeat timing,
// automatic prefetch, when to lease, ack flushing and how a reply is classified. The rules are
// the ones docs/workers.md states for every runtime (the Python SDK's _policy.py mirrors them). No
// I/O and no clock reads: callers pass times in, so unit tests (tests/unit/sdk_policy_test.cc) pin
// every rule.
//
// Threads: plain values; a ReconnectBackoff belongs to the one thread that retries.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

#include "common/status.h"
#include "yardmaster/status.h"

namespace ym::sdk {

using Millis = std::chrono::milliseconds;

// Exponential backoff with "equal jitter": attempt n waits a random time in [d/2, d] where
// d = min(max, min * 2^n). Half of the delay is fixed so that a restarting server is not
// hammered by workers that drew tiny delays, and the random half spreads a fleet's reconnects.
class ReconnectBackoff {
 public:
  ReconnectBackoff(Millis min, Millis max, std::uint64_t seed);
  // The delay before the next attempt; each call doubles the ceiling up to max.
  Millis Next();
  // After a success: the next failure waits about `min` again.
  void Reset() { attempt_ = 0; }
  int attempt() const { return attempt_; }

 private:
  Millis min_, max_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

// The lease length the runtime plans heartbeats for. `requested` is WorkerOptions::lease; when
// unset the server chose each job's lease_ms, which we only see as `expires_at`, so the
// remaining time by our clock is the estimate (never below the API's 100 ms minimum).
Millis EffectiveLease(std::optional<Millis> requested, std::int64_t expires_at_ms,
                      std::int64_t now_ms);

// When to heartbeat after a lease (or a successful heartbeat) of length `lease`: after
// `fraction` of it, clamped to 0.05..0.9, and at least 50 ms so a tiny lease cannot spin.
Millis HeartbeatDelay(Millis lease, double fraction);

// After a heartbeat that got no reply, try again sooner than a full interval, but not before
// 50 ms: the lease is still running out.
Millis HeartbeatRetryDelay(Millis lease, double fraction);

// Automatic prefetch (docs/workers.md, "Leasing"): how many leased jobs to keep queued ahead of
// free slots so that a slot never waits for a lease round trip, and no more. With `d` the
// handlers' average run time and `r` the lease round trip, round(concurrency * 2r / d) queued
// jobs last about two round trips: long jobs get none (fairness between workers is kept), tiny
// ones get many (throughput is not bound by round trips).
class AutoPrefetch {
 public:
  static constexpr double kHandlerWeight = 0.1;    // EWMA weight of a new handler run time
  static constexpr double kRoundTripWeight = 0.2;  // EWMA weight of a new round trip
  static constexpr double kInitialRoundTripS = 0.001;
  static constexpr int kMinSamples = 8;   // no prefetch before this many handler runs
  static constexpr int kMaxPerSlot = 32;  // cap: 32 * concurrency (and 1000 in all)

  void RecordHandler(std::chrono::nanoseconds run_time);
  // Only for lease requests answered with as many jobs as asked: those did not long-poll.
  void RecordRoundTrip(std::chrono::nanoseconds round_trip);
  // Jobs to keep queued for `concurrency` slots (0..min(32c, 1000 - c)).
  int Target(int concurrency) const;

  int samples() const { return samples_; }
  double handler_s() const { return handler_s_; }
  double round_trip_s() const { return round_trip_s_; }

 private:
  int samples_ = 0;
  double handler_s_ = 0;
  double round_trip_s_ = kInitialRoundTripS;
};

// How many jobs the leaser should ask for now (0: keep waiting). capacity = concurrency +
// prefetch target. A request goes out as soon as a slot is idle with nothing queued for it, and
// otherwise only when at least half of the capacity is free, so that fast handlers make few
// large requests rather than many one-job ones.
int LeaseWant(int concurrency, int capacity, int running, int queued);

// Whether a lease request refused with this HTTP status will keep being refused: any 4xx but
// 408 (timeout) and 429 (backpressure). Such a worker stops instead of retrying forever.
bool LeaseRefusalIsFinal(int http_status);

// Whether pending outcomes should be sent now: a full batch, or the oldest pending one has
// waited `interval`.
bool ShouldFlushAcks(std::size_t pending, int batch_size,
                     std::chrono::steady_clock::time_point oldest,
                     std::chrono::steady_clock::time_point now, Millis interval);

// What the runtime does with one item's reply (ack, fail or heartbeat).
enum class ItemVerdict {
  kDone,       // applied
  kLeaseLost,  // 409 stale_lease / invalid_state, 404: someone else owns the job now; drop it
  kRetry,      // the server was unreachable or busy: send the same item again later
  kRejected,   // the server refused the item itself (e.g. a result over the size limit)
};
ItemVerdict ClassifyItem(const ym::Status& status);

// Converts an internal Status to the public one.
yardmaster::Status ToPublic(const ym::Status& status, int http_status);

}  // namespace ym::sdk
