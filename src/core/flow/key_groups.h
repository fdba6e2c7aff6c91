// KeyGroups: singleton and debounce, the per-key modes of a limit, decided at enqueue.
//
// A limit (core/flow/limit_set.h) may carry one of two *key modes* besides its bounds:
//
//   singleton: refuse | skip   While a live job (pending, scheduled, ready or active; not
//                              finished) of the same (limit, key) exists, a new job is refused
//                              (kSingletonConflict naming the holder) or skipped (answered with
//                              the holder, nothing created).
//   debounce: {delay_ms D, max_wait_ms M}
//                              Only the newest not-started job of a (limit, key) is kept: a new
//                              job replaces the one that waits (which the caller cancels, naming
//                              the new one) and runs at min(now + D, deadline), where the group's
//                              deadline is its first arrival + M. A job that has started
//                              (leased) has left its group; the next arrival opens a new group.
//
// For a job, the gates of its gate set whose limit has a key mode are its *key gates*. This
// class keeps, per (limit slot, key): the live jobs (singleton) or the waiting job and the
// group's deadline (debounce), plus, per job, the groups it is in. It decides an arrival
// (Decide, which changes nothing) and records it (Join); the scheduler tells it when a job
// starts (Started), ends (Ended) or comes back unstarted (Rejoin), and rebuilds it from the live
// jobs at recovery and after a limit change (BeginRebuild, Restore, EndRebuild).
//
// Producer times. A job's own run_at (or delay) is a not-before time P: an arrival runs at
//   max(P, min(now + D, deadline))   and the deadline becomes max(deadline, P),
// so a producer that asks for a later time moves its group's deadline with it. Hence the
// invariant every recovery relies on: **the waiting job's run_at is never later than its group's
// deadline.**
//
// Durability without a stored field. The deadline lives in memory only. After a restart (and
// after a limit change that rebuilt a group whose waiting job changed) a group's deadline is
// taken to be its waiting job's run_at, which by the invariant is never later than the true
// deadline: the max-wait bound still holds, at the price that the group can no longer be
// pushed past the time its waiting job was due (a newer arrival replaces it and inherits that
// time). It is exact when the max wait was what set the run_at.
//
// With several key gates the strictest wins: a refusal of any singleton gate before a skip of
// any, both before any debounce; a job in several debounce groups replaces the waiting job of
// each and runs at the earliest of the times they give.
//
// Pure: no clock (every call takes `now`, wall-clock ms), core thread only, owned by the
// Scheduler.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "core/job.h"

namespace ym::flow {

enum class SingletonMode : std::uint8_t { kOff, kRefuse, kSkip };

// "refuse", "skip" ("" for kOff).
std::string_view SingletonModeName(SingletonMode mode);
// kValidation naming field "singleton" for anything but "refuse" or "skip".
Result<SingletonMode> ParseSingletonMode(std::string_view text);

struct DebounceConfig {
  // 30 days, like the longest retry backoff: long enough for any debounce, and far from any
  // overflow when added to a time.
  static constexpr std::int64_t kMaxMs = 30LL * 24 * 3600 * 1000;
  std::int64_t delay_ms = 0;                // 0..kMaxMs (0: replace a queued job, no delay)
  std::optional<std::int64_t> max_wait_ms;  // delay_ms..kMaxMs; nullopt: no cap

  // kValidation naming "debounce.delay_ms" or "debounce.max_wait_ms" and the range.
  Status Validate() const;
  bool operator==(const DebounceConfig&) const = default;
};

// One gate of a job whose limit has a key mode.
struct KeyGate {
  std::uint32_t limit = 0;  // the limit's slot
  std::string key;
  SingletonMode singleton = SingletonMode::kOff;
  std::optional<DebounceConfig> debounce;
};

struct KeyDecision {
  enum class Verdict : std::uint8_t { kAdmit, kRefuse, kSkip };
  Verdict verdict = Verdict::kAdmit;
  // kRefuse / kSkip: the oldest live job of the deciding group, and that gate's position.
  JobId holder = 0;
  std::size_t gate = 0;
  // kAdmit: the waiting jobs the new one replaces (ascending, distinct), when it may run (never
  // before its own run_at), and each debounce gate's deadline after the arrival (by position;
  // unused for other gates).
  std::vector<JobId> superseded;
  std::int64_t run_at_ms = 0;
  std::vector<std::int64_t> deadlines;
};

// The message of a refusal starts with "job <holder> " so that the API can name the holder in
// a member of its own (SingletonHolder reads it back).
Status SingletonConflict(JobId holder, std::string_view holder_state, std::string_view limit,
                         std::string_view key);
std::optional<JobId> SingletonHolder(const Status& status);

// The reason a replaced job is cancelled with ("superseded_by:<id>"), and its inverse.
std::string SupersededReason(JobId by);
std::optional<JobId> SupersededBy(std::string_view reason);

class KeyGroups {
 public:
  static constexpr std::int64_t kNoDeadline = INT64_MAX;

  // Decides the arrival of a job with these key gates at `now`, whose own not-before time is
  // `own_run_at_ms` (now when the producer gave none). Changes nothing.
  KeyDecision Decide(const std::vector<KeyGate>& gates, std::int64_t now,
                     std::int64_t own_run_at_ms) const;
  // Records an admitted arrival: `id` joins every singleton group of its gates as live and
  // waits in every debounce group with the decision's deadline. The superseded jobs must have
  // Ended before.
  void Join(const std::vector<KeyGate>& gates, JobId id, const KeyDecision& d);
  // The job started (was leased): it leaves every debounce group it waits in (it stays live in
  // its singleton groups).
  void Started(JobId id);
  // The job ended (terminal): it leaves every group.
  void Ended(JobId id);
  // The job is not started again (a lease whose reply was lost came back): if one of its
  // debounce groups has a waiting job, that newer job supersedes it (returned; the caller
  // cancels it, which Ends it); otherwise it waits in its groups again, due at `now`.
  std::optional<JobId> Rejoin(const std::vector<KeyGate>& gates, JobId id, std::int64_t now);

  // Rebuild (recovery, limit changes): BeginRebuild forgets every group but remembers each
  // waiting job's deadline; Restore then takes every live job in ascending id order (its gates
  // as they are now); EndRebuild drops what was remembered. A job that is `not_started`
  // (pending, scheduled or ready with no attempt in its run) waits in its debounce groups (the
  // newest wins), with the deadline remembered for the same (limit, key, job), else its run_at.
  // Restore returns the older jobs it displaced from waiting (only after a limit was added over
  // several not-started jobs of a key).
  void BeginRebuild();
  std::vector<JobId> Restore(const std::vector<KeyGate>& gates, JobId id, bool not_started,
                             std::int64_t run_at_ms);
  void EndRebuild() { kept_.clear(); }

  // True when `id` waits in a debounce group (for blocked_reason "debounced").
  bool IsWaiting(JobId id) const;
  // The waiting job and deadline of a group, for tests and the API.
  std::optional<std::pair<JobId, std::int64_t>> WaitingIn(std::uint32_t limit,
                                                          const std::string& key) const;
  // The live jobs of a singleton group, ascending.
  std::vector<JobId> LiveIn(std::uint32_t limit, const std::string& key) const;

  bool empty() const { return jobs_.empty(); }
  std::size_t groups() const { return groups_.size(); }
  std::size_t jobs() const { return jobs_.size(); }

 private:
  using GroupKey = std::pair<std::uint32_t, std::string>;
  struct Group {
    std::set<JobId> live;  // singleton
    JobId waiting = 0;     // debounce (0: none)
    std::int64_t deadline = 0;
  };
  Group& At(const KeyGate& g);
  void Link(JobId id, const GroupKey& key);
  void Unlink(JobId id, const GroupKey& key);
  void DropIfEmpty(std::map<GroupKey, Group>::iterator it);

  std::map<GroupKey, Group> groups_;
  std::unordered_map<JobId, std::vector<GroupKey>> jobs_;  // the groups each job is in
  std::map<GroupKey, std::pair<JobId, std::int64_t>> kept_;
};

}  // namespace ym::flow
