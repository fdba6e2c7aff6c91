// RetentionWork: core's picture of the finished jobs the store keeps, and the purges it decides.
//
// Owned by the Scheduler, core thread only; pure (no I/O, time passed in). For every queue that
// holds finished rows, per terminal state, it knows how many rows there are and a lower bound of
// when the oldest of them finished. From that it decides which queues are due for purging:
//
//   over the cap:   count > Retention::MaxKept(state)                   (cap 0: none)
//   past the window: oldest_ms <= now - Retention::WindowMs(state)
//
// and hands the store PurgeFinished mutations bounded in rows, the oldest-finished rows first.
// The store executes them through its (state, queue, finished_at_ms) index and reports one
// PurgeOutcome each, with the exact count left and the oldest finish left; that outcome is the
// only way an entry leaves "in flight" and it resynchronises the entry, so the picture never
// drifts for long (a replay of a finished job only makes a count too high, which costs one purge
// that deletes nothing and corrects it).
//
//   finished job kept --OnKept--> entry (count+1) --over cap?--> queued
//   periodic Scan ------------------------------------due?-----> queued
//   Plan: queued --PurgeFinished{limit}--> in flight --OnOutcome--> still due? queued : idle
//
// Pinned entries: the scheduler counts a kept job on every ack of a queue that keeps its
// finished jobs; finding the queue's entry by name each time is a string hash and a few cache
// misses with many queues. A live queue pins its entry once (Pin: a handle, stable while
// pinned) and counts through the handle; a pinned entry is never forgotten, even with no rows,
// until its last Unpin. Pinned or not, an entry decides and purges the same way.
//
// Counting rows kept while a purge is in flight: the store's count in the outcome includes the
// rows committed before the purge in batch order, i.e. the finishes appended before Plan handed
// it out, so the entry adds back those kept since (kept_total - kept_at_issue).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/queue_config.h"
#include "store/batch.h"

namespace ym {

class RetentionWork {
 public:
  // The retention of a queue, by name (configured, or the server's defaults).
  using Policy = std::function<const Retention&(const std::string& queue)>;

  // Recovery: the store holds `count` finished rows of `state` in `queue`, the oldest finished
  // at `oldest_ms`.
  void Load(const std::string& queue, JobState state, std::uint64_t count, std::int64_t oldest_ms);

  // A job of `queue` finished in `state` at `now_ms`, and the open batch keeps its row. A queue
  // that goes over its cap is queued at once (the window is checked by Scan).
  void OnKept(const std::string& queue, JobState state, std::int64_t now_ms, const Retention& r);

  // The entry of `queue`, created if needed, pinned: it stays until as many Unpins, and the
  // handle stays valid until then. Pins of one queue add up.
  struct Tracked;
  using Handle = std::pair<const std::string, Tracked>*;
  Handle Pin(const std::string& queue);
  void Unpin(Handle h);
  // OnKept for the queue of a pinned handle (no lookup).
  void OnKept(Handle h, JobState state, std::int64_t now_ms, const Retention& r);

  // Queues every entry that is due now. O(entries tracked); the periodic sweep runs it.
  void Scan(std::int64_t now_ms, const Policy& policy);
  // The same for one queue (its configuration changed).
  void Recheck(const std::string& queue, std::int64_t now_ms, const Policy& policy);

  // Appends to `out` purges of queued entries, oldest queued first, for at most `max_rows` rows
  // (an entry counts for the rows it may delete: min(its count, the rows left in the budget)) and
  // at most `max_purges` mutations. Returns the number of purges appended. An entry handed out is
  // in flight until its outcome arrives.
  std::size_t Plan(std::int64_t now_ms, const Policy& policy, std::uint64_t max_rows,
                   std::size_t max_purges, std::vector<Mutation>& out);

  // The store's report of a committed purge.
  void OnOutcome(const PurgeOutcome& outcome, std::int64_t now_ms, const Policy& policy);

  // Whether some entry is queued, i.e. Plan has something to hand out.
  bool has_due() const { return !queued_.empty(); }
  // Queues tracked (those holding finished rows as far as core knows).
  std::size_t queues() const { return entries_.size(); }
  // The count core believes `queue` holds in `state` (0 when untracked). For tests and gauges.
  std::uint64_t Count(const std::string& queue, JobState state) const;

 private:
  struct Entry {
    std::uint64_t count = 0;
    std::int64_t oldest_ms = kNone;  // lower bound of the oldest finish; kNone with no rows
    std::uint64_t kept_total = 0;    // OnKept calls, ever (see "Counting rows" above)
    std::uint64_t kept_at_issue = 0;
    std::int64_t oldest_kept_in_flight = kNone;
    bool queued = false;
    bool in_flight = false;
  };
  using PerState = std::array<Entry, 3>;
  static constexpr std::int64_t kNone = INT64_MAX;

 public:
  struct Tracked {
    PerState per;
    std::uint32_t pins = 0;  // Pin handles out: never erased while > 0
  };

 private:
  static std::size_t Slot(JobState s) { return static_cast<std::size_t>(s) - 3; }
  static bool Due(const Entry& e, const Retention& r, JobState s, std::int64_t now_ms);
  void Enqueue(const std::string& queue, JobState s, Entry& e);
  // Forgets a queue none of whose entries holds rows or is queued or in flight.
  void MaybeErase(std::unordered_map<std::string, Tracked>::iterator it);
  void Kept(const std::string& queue, Entry& e, JobState state, std::int64_t now_ms,
            const Retention& r);

  // Node-based: a handle (a pointer to the element) survives rehashing.
  std::unordered_map<std::string, Tracked> entries_;
  std::deque<std::pair<std::string, JobState>> queued_;  // each entry at most once (Entry::queued)
};

}  // namespace ym
