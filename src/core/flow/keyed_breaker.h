// KeyedBreaker: one CircuitBreaker (core/flow/breaker.h) per key, for a limit's `breaker`
// member, with memory bounded by the keys that matter now.
//
// A key's breaker is created at its first Admit. It is dropped again as soon as it is closed,
// holds no failure (none in a row, none in the ratio window) and no admitted job of it is still
// out: such a breaker answers every call exactly as a new one would, except that a ratio window
// forgets its successes (the next failure is then judged once min_samples outcomes have been
// seen again). So memory is O(keys with a job running + keys that failed since their last
// success or are open or half-open), however many keys pass through.
//
// Tickets. Admit returns a ticket naming the breaker *instance* it came from (a number never
// reused within this object) and the CircuitBreaker's permit. An outcome whose instance is not
// the key's current one (the key was dropped and created again, or Reset) is ignored, so a
// ticket can never be counted by a breaker that did not grant it. The count of tickets out per
// instance is what keeps a key from being dropped while a job of it may still report.
//
// Pure and single-threaded; times are ms passed in (the monotonic clock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "core/flow/breaker.h"

namespace ym::flow {

// How an admitted job ended, for its breaker.
enum class BreakerOutcome : std::uint8_t {
  kSuccess,    // acked
  kFailure,    // failed, lease expired, attempt timed out
  kAbandoned,  // ended without an outcome: its lease reply was lost, or it was cancelled
};

struct BreakerTicket {
  std::uint64_t instance = 0;
  BreakerPermit permit;
};

class KeyedBreaker {
 public:
  static Result<KeyedBreaker> Make(const BreakerConfig& config);

  // As CircuitBreaker::NextOpen for `key`: now when Admit would give a ticket, next_open_at
  // while open, kNever while the half-open trial is out. A key not held is closed.
  std::int64_t NextOpen(const std::string& key, std::int64_t now) const;
  // A ticket when a job of `key` may start now (counted as out until Report), else nullopt.
  std::optional<BreakerTicket> Admit(const std::string& key, std::int64_t now);
  // The end of a job admitted with `ticket`. Returns true when this ended the key's half-open
  // trial (a success closed it, a failure opened it again, an abandon freed the trial slot):
  // jobs waiting for that outcome may re-check. Stale tickets count nothing (false).
  bool Report(const std::string& key, const BreakerTicket& ticket, BreakerOutcome outcome,
              std::int64_t now);
  // An operator's reset of `key` (every key when null): closed, counters and interval growth
  // cleared, tickets out ignored. Returns how many keys were open or half-open.
  std::size_t Reset(const std::string* key);

  // Every key held, with its state.
  void ForEach(const std::function<void(const std::string&, const BreakerState&)>& fn) const;
  std::size_t size() const { return keys_.size(); }
  // Tickets out across all keys (for tests and the footprint).
  std::size_t tickets_out() const;
  const BreakerConfig& config() const { return config_; }

 private:
  struct Entry {
    CircuitBreaker breaker;
    std::uint64_t instance;
    std::uint64_t out = 0;  // tickets of this instance not reported yet
  };
  explicit KeyedBreaker(const BreakerConfig& config) : config_(config) {}
  // Drops the key when it is indistinguishable from a key never seen (see the header comment).
  void MaybeDrop(std::unordered_map<std::string, Entry>::iterator it);

  BreakerConfig config_;
  std::unordered_map<std::string, Entry> keys_;
  std::uint64_t next_instance_ = 1;
};

}  // namespace ym::flow
