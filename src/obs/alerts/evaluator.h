// AlertEvaluator: decides when alert rules fire and resolve, from periodic per-queue samples.
//
// What: each Evaluate() takes one sample of every queue (QueueSample: what the broker's gauges
// and per-queue counters say at that moment) and moves each (rule, queue) instance through
//
//        condition holds                held for `for`                  condition stops holding
//   inactive ─────────────> pending ─────────────────────> firing ──────────────────────────>
//   inactive
//      ^                       │        emits "firing"                    emits "resolved"
//      └───────────────────────┘
//        stops holding before `for`: no event
//
// With `for` 0 an instance goes from inactive to firing in one evaluation. An episode (from the
// time the condition began to hold, `started_at`) emits exactly one firing and, when it ends, one
// resolved event; while it keeps holding nothing more is emitted, so one episode never fires
// twice. Events carry a dedupe key that names the rule, the queue, the episode and the state;
// it is the same for every copy of that event (delivery retries, a duplicate after a restart).
//
// Values: lag_seconds, oldest_ready_age: the age of the oldest ready job in seconds (0 with no
// ready job). failure_ratio: failed / (succeeded + failed) over the window, judged only once
// at least `min_count` attempts ended in it (below that it does not hold). dead_growth: jobs
// that went dead in the window. no_pollers: seconds since a lease request last named the queue
// (a long-poll waiting on it counts as polling now; a queue never polled since this evaluator
// first sampled it counts from that first sample); it holds only while the queue has ready jobs.
//
// Windows: the counters in a sample are cumulative from 0 when core started holding the queue,
// and may restart from 0 (core frees an idle queue, the server restarts): a decrease is taken
// as a restart, as Prometheus' increase() does. The counts of a queue's first sample are taken
// as having happened at that sample.
// The history kept per queue is thinned to one point per max(1 s, longest window / 256), so a
// window covers between `window` and `window` plus that step, and memory per queue is bounded.
//
// Instances: a rule on one queue has exactly one. A rule on every queue gets one per queue when
// it first leaves inactive (never for the reserved "_ym." queues, kReservedQueuePrefix); an
// inactive one is dropped unless it has a last event to show. At most Options::max_instances exist;
// past it new ones are not created (dropped_instances()).
//
// Pure and single-threaded: no I/O; time comes from the injected Clock, durations (`for`,
// windows) on its monotonic line and what is shown (started_at, since) on its wall line.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "obs/alerts/rule.h"

namespace ym::alerts {

struct QueueSample {
  std::string queue;
  std::uint64_t ready = 0;
  std::int64_t oldest_ready_age_ms = 0;
  std::uint32_t waiting_workers = 0;  // long-polls waiting on the queue now
  // Cumulative counts (see "Windows" above).
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;  // failed attempts: fail reports, lease expiries, timeouts
  std::uint64_t dead = 0;
  std::int64_t last_poll_ms = 0;  // wall clock; 0: not polled since the counts started
};

enum class AlertState { kInactive, kPending, kFiring };
std::string_view AlertStateName(AlertState s);

struct AlertEvent {
  std::string rule;
  std::string queue;
  bool firing = true;  // false: resolved
  double value = 0;
  double threshold = 0;
  std::int64_t started_at_ms = 0;  // wall: when the condition began to hold (the episode)
  std::int64_t ends_at_ms = 0;     // resolved: when it stopped holding; 0 while firing
  std::int64_t at_ms = 0;          // wall: when the event was decided

  // "RULE/QUEUE/STARTED_AT/firing" (or resolved). Names cannot hold '/', so it is unambiguous.
  std::string DedupeKey() const;
};

struct AlertStatus {
  std::string rule;
  std::string queue;
  AlertState state = AlertState::kInactive;
  std::int64_t since_ms = 0;    // wall: when it entered `state` (0: never left inactive)
  std::optional<double> value;  // as last evaluated (none before the first evaluation)
  std::optional<AlertEvent> last_event;
};

class AlertEvaluator {
 public:
  struct Options {
    std::size_t max_instances = 10'000;
  };
  AlertEvaluator(std::vector<AlertRule> rules, const Clock& clock, Options options);
  AlertEvaluator(std::vector<AlertRule> rules, const Clock& clock)
      : AlertEvaluator(std::move(rules), clock, Options{}) {}

  // Evaluates every rule against `samples` (one per queue; a queue absent from them has no
  // ready job and nothing new counted). Returns the events decided, in rule order, then queue.
  std::vector<AlertEvent> Evaluate(const std::vector<QueueSample>& samples);

  // Restores the last event of an instance recorded before a restart (the delivery jobs hold
  // them). A firing event makes the instance firing in that episode: no second firing event is
  // emitted for it, and it resolves under the same started_at. A resolved one is only shown as
  // the last event. Ignored when no configured rule has that name or the rule does not cover
  // the queue. Call before the first Evaluate(); a later event of the same instance wins over
  // an earlier one (by at_ms).
  void Restore(const AlertEvent& last);

  // Every instance (rules on one queue always show theirs), in rule order, then queue.
  std::vector<AlertStatus> Statuses() const;
  // The instances a rule on every queue would have held past max_instances.
  std::uint64_t dropped_instances() const { return dropped_instances_; }
  const std::vector<AlertRule>& rules() const { return rules_; }

 private:
  struct Point {
    std::int64_t mono = 0;
    std::uint64_t succeeded = 0, failed = 0, dead = 0;  // restart-adjusted cumulative counts
  };
  struct QueueTrack {
    std::int64_t first_seen_wall = 0;
    std::int64_t last_seen_mono = 0;
    QueueSample last;           // the last sample (counts as sent)
    Point current;              // adjusted counts now
    std::deque<Point> history;  // thinned, oldest first; only for windowed rules
  };
  struct Instance {
    AlertState state = AlertState::kInactive;
    std::int64_t since_wall = 0;
    std::int64_t since_mono = 0;
    std::int64_t started_at = 0;  // the episode (wall)
    std::optional<double> value;
    std::optional<AlertEvent> last_event;
  };

  void Track(const QueueSample& s, std::int64_t mono, std::int64_t wall);
  // The value of rule `r`'s measure for `queue`, and whether the condition holds.
  std::pair<double, bool> Measure(const AlertRule& r, const std::string& queue,
                                  const QueueSample* sample, std::int64_t mono,
                                  std::int64_t wall) const;
  Point WindowBase(const QueueTrack& t, std::int64_t window_ms, std::int64_t mono) const;
  void Step(std::size_t ri, const std::string& queue, Instance& inst, double value, bool holds,
            std::int64_t mono, std::int64_t wall, std::vector<AlertEvent>& out);

  std::vector<AlertRule> rules_;
  const Clock& clock_;
  Options options_;
  std::int64_t longest_window_ms_ = 0;
  std::int64_t history_step_ms_ = 1000;
  bool any_windowed_ = false;
  std::map<std::string, QueueTrack> queues_;
  std::map<std::pair<std::size_t, std::string>, Instance> instances_;  // (rule index, queue)
  std::uint64_t dropped_instances_ = 0;
};

}  // namespace ym::alerts
