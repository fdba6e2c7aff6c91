// CancelWatches: workers watching for cancels of the jobs they run (`POST /v1/cancels:watch`).
//
// A cancel of an active job only flags it (cancel_requested); the worker running it has to be
// told. A heartbeat reply tells it, but heartbeats of a 30 s lease come about 10 s apart. A
// worker process therefore keeps one watch open: it names its worker_id (the one its leases
// carry) and the ids it already knows to be cancelled, and is answered with the ids of every
// job leased to that worker whose cancel is requested, as soon as that set holds an id it does
// not know, or at its deadline, or at shutdown (each time with the set then). No polling: the
// Scheduler calls Requested() from Cancel, and Expire() from its timer tick.
//
// What is reported ("pending"): per worker name, the active jobs whose cancel was requested.
// An id enters with Requested() and leaves with Withdrawn() when the job stops being active
// under that worker (acked, failed, lease expired or released), so pending entries are bounded
// by the active jobs. The answer is the whole set, not a delta: a worker that missed an answer
// (connection lost) gets the same ids again, and two processes that share a worker_id each see
// the other's ids, ignore them, and pass them back as known, so neither loops.
//
// Bounded: at most `max_watches` watches at once (Add refuses more, kResourceExhausted). The
// deadline heap uses lazy deletion (a watch answered by a cancel leaves its entry behind) and is
// rebuilt once stale entries outnumber live ones, so it stays within a constant times the
// watches.
//
// Owner: the Scheduler, on the core thread only. Pure: no I/O, time passed in. Callbacks are
// called synchronously and must not call back into the Scheduler.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/types.h"

namespace ym {

class CancelWatches {
 public:
  // The ids of the worker's active jobs whose cancel is requested, ascending.
  using Callback = std::function<void(std::vector<JobId> cancel_requested)>;

  explicit CancelWatches(std::size_t max_watches) : max_watches_(max_watches) {}

  // A cancel was requested for `job`, active and leased to `worker`: answers the worker's
  // watches that do not know it yet, oldest first.
  void Requested(const std::string& worker, JobId job);
  // `job` is no longer active under `worker`: it is not reported any more.
  void Withdrawn(const std::string& worker, JobId job);
  // Registers a watch until `deadline_mono_ms`, answered at once (before Add returns) when
  // the worker's set already holds an id outside `known`. kResourceExhausted at the cap (the
  // callback is then not called).
  Status Add(const std::string& worker, std::vector<JobId> known, std::int64_t deadline_mono_ms,
             Callback callback);
  // Answers the watches whose deadline is at or before `now_mono_ms`.
  void Expire(std::int64_t now_mono_ms);
  // Answers every watch (shutdown).
  void Shutdown();

  // The ids reported to `worker` now, ascending.
  std::vector<JobId> Pending(const std::string& worker) const;
  bool empty() const { return watches_.empty(); }
  std::size_t size() const { return watches_.size(); }
  std::size_t pending_jobs() const { return pending_jobs_; }
  std::size_t deadline_entries() const { return deadlines_.size(); }
  // The earliest deadline still registered (stale heap entries skipped lazily: possibly
  // earlier than the true next one, never later); nullopt when none.
  std::optional<std::int64_t> NextDeadline() const;

 private:
  struct Watch {
    std::string worker;
    std::vector<JobId> known;  // sorted
    Callback callback;
  };
  struct Deadline {
    std::int64_t due_ms;
    std::uint64_t watch;
    bool operator>(const Deadline& o) const {
      return due_ms != o.due_ms ? due_ms > o.due_ms : watch > o.watch;
    }
  };
  using Heap = std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>>;

  // Removes the watch and calls it with the worker's set now.
  void Answer(std::uint64_t watch_id);
  void Unlink(const std::string& worker, std::uint64_t watch_id);
  void MaybeCompact();

  std::size_t max_watches_;
  std::uint64_t next_id_ = 1;
  std::size_t pending_jobs_ = 0;
  std::unordered_map<std::string, std::set<JobId>> pending_;  // worker -> cancel requested
  std::unordered_map<std::uint64_t, Watch> watches_;
  std::unordered_map<std::string, std::vector<std::uint64_t>> by_worker_;  // oldest first
  Heap deadlines_;
};

}  // namespace ym
