// EndWaits: clients waiting for jobs to end (`GET /v1/jobs/{id}?wait_ms=N`).
//
// A wait names one live job and a deadline on the monotonic clock. It is answered exactly once:
// when the job reaches a terminal state (with the job's view at that moment), or when its
// deadline passes, or at shutdown (with nothing: the caller answers the job's current state).
// No polling: the Scheduler calls Ended() from the one place every terminal transition goes
// through, and Expire() from its timer tick.
//
// Bounded: at most `max_waits` waits at once (Add refuses more, kResourceExhausted). The
// deadline heap uses lazy deletion (a wait answered by its job's end leaves its heap entry
// behind) and is rebuilt once stale entries outnumber the live ones, so it stays within a
// constant times the live waits.
//
// Owner: the Scheduler, on the core thread only. Pure: no I/O, time passed in. Callbacks are
// called synchronously and must not call back into the Scheduler.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/types.h"

namespace ym {

class EndWaits {
 public:
  // `ended` is the job's view when it ended; nullopt when the wait ran out or was shut down.
  using Callback = std::function<void(std::optional<JobView> ended)>;

  explicit EndWaits(std::size_t max_waits) : max_waits_(max_waits) {}

  // Registers a wait on `job` until `deadline_mono_ms`. kResourceExhausted at the cap.
  Status Add(JobId job, std::int64_t deadline_mono_ms, Callback callback);
  // `job` ended: answers every wait on it, oldest first. Cheap when nobody waits on it.
  void Ended(JobId job, const JobView& view);
  // Answers the waits whose deadline is at or before `now_mono_ms`.
  void Expire(std::int64_t now_mono_ms);
  // Answers every wait with nothing (shutdown).
  void Shutdown();

  bool empty() const { return waits_.empty(); }
  std::size_t size() const { return waits_.size(); }
  std::size_t deadline_entries() const { return deadlines_.size(); }
  // The earliest deadline still registered (stale heap entries skipped lazily: possibly earlier
  // than the true next one, never later); nullopt when none.
  std::optional<std::int64_t> NextDeadline() const;

 private:
  struct Wait {
    JobId job = 0;
    Callback callback;
  };
  struct Deadline {
    std::int64_t due_ms;
    std::uint64_t wait;
    bool operator>(const Deadline& o) const {
      return due_ms != o.due_ms ? due_ms > o.due_ms : wait > o.wait;
    }
  };
  using Heap = std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>>;

  void Answer(std::uint64_t wait_id, std::optional<JobView> ended);
  void MaybeCompact();

  std::size_t max_waits_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, Wait> waits_;
  std::unordered_map<JobId, std::vector<std::uint64_t>> by_job_;  // wait ids, oldest first
  Heap deadlines_;
};

}  // namespace ym
