// ConcurrencyGate: at most `cap` holders at once, per key (cap 1: a mutex per key).
//
// The scheduler admits a job when it leases it and releases it when the lease ends (ack, fail,
// expiry, release, cancel: every path through LeaveState), so the count is the number of active
// leases of the key. Invariants, checked by the tests after every step:
//   * 0 <= count(key) <= cap for every key at every moment (Admit refuses at the cap);
//   * a key is held in memory only while its count is > 0: memory is O(keys with a holder),
//     never O(keys ever seen);
//   * a Release with no matching Admit is an error value (kInvalidState), never an underflow
//     that would let the next Admit exceed the cap.
// Lowering the cap below a key's current count refuses Admits until enough releases bring it
// below the new cap; nothing already admitted is revoked.
//
// Unlike a rate, a cap does not open by the clock, only by a Release, so NextOpen is `now` when
// an Admit would succeed and kNever otherwise: the scheduler wakes the key's lane on Release,
// not from its timer heap.
//
// Pure and single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "core/flow/sat_math.h"

namespace ym::flow {

struct ConcurrencyConfig {
  static constexpr std::int64_t kMaxCap = 1'000'000;
  std::int64_t cap = 1;  // 1..kMaxCap; 1 is a mutex

  // kValidation naming the field and its range, else OK.
  Status Validate() const;
};

template <typename Key, typename Hash = std::hash<Key>>
class KeyedConcurrencyGate {
 public:
  // The config must Validate(); Make returns its error otherwise.
  static Result<KeyedConcurrencyGate> Make(const ConcurrencyConfig& config) {
    YM_RETURN_IF_ERROR(config.Validate());
    return KeyedConcurrencyGate(config.cap);
  }

  // Takes a slot for `key` when it holds fewer than `cap`; false (and no change) at the cap.
  bool Admit(const Key& key) {
    auto it = counts_.find(key);
    if (it == counts_.end()) {
      counts_.emplace(key, 1);  // cap >= 1, so a key with no holder always has room
      return true;
    }
    if (it->second >= cap_) return false;
    ++it->second;
    return true;
  }

  // Counts one more holder of `key` even at or past the cap: for holders that exist already
  // (leases recovered after a restart, a recount after the limits changed), never for new ones.
  void Hold(const Key& key) { ++counts_[key]; }

  // Gives back one slot of `key`; kInvalidState when the key holds none (a double release or a
  // release of something never admitted: a bug in the caller, reported, state unchanged).
  Status Release(const Key& key) {
    auto it = counts_.find(key);
    if (it == counts_.end()) {
      return InvalidState("concurrency gate: release of a key that holds no slot");
    }
    if (--it->second == 0) counts_.erase(it);
    return Status::Ok();
  }

  // `now` when Admit(key) would succeed, else kNever: only a Release opens a full key.
  std::int64_t NextOpen(const Key& key, std::int64_t now) const {
    return Count(key) < cap_ ? now : kNever;
  }

  // Changes the cap (kValidation if the config is bad, cap unchanged); keys above a lowered cap
  // keep their holders and admit again once releases bring them below it.
  Status SetCap(const ConcurrencyConfig& config) {
    YM_RETURN_IF_ERROR(config.Validate());
    cap_ = config.cap;
    return Status::Ok();
  }

  std::int64_t Count(const Key& key) const {
    auto it = counts_.find(key);
    return it == counts_.end() ? 0 : it->second;
  }
  std::int64_t cap() const { return cap_; }
  // Keys with at least one holder (the memory held).
  std::size_t size() const { return counts_.size(); }
  // Calls fn(key, count) for every key with a holder (unordered).
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& [key, count] : counts_) fn(key, count);
  }

 private:
  explicit KeyedConcurrencyGate(std::int64_t cap) : cap_(cap) {}

  std::int64_t cap_;
  std::unordered_map<Key, std::int64_t, Hash> counts_;  // no entry: count 0
};

// One cap for everything the gate covers (a queue's or a kind's total active jobs).
class ConcurrencyGate {
 public:
  static Result<ConcurrencyGate> Make(const ConcurrencyConfig& config);

  bool Admit() {
    if (count_ >= cap_) return false;
    ++count_;
    return true;
  }
  // kInvalidState when nothing is held (state unchanged).
  Status Release();
  std::int64_t NextOpen(std::int64_t now) const { return count_ < cap_ ? now : kNever; }
  Status SetCap(const ConcurrencyConfig& config);

  std::int64_t count() const { return count_; }
  std::int64_t cap() const { return cap_; }

 private:
  explicit ConcurrencyGate(std::int64_t cap) : cap_(cap) {}

  std::int64_t cap_;
  std::int64_t count_ = 0;
};

}  // namespace ym::flow
