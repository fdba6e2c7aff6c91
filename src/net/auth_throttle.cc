#include "net/auth_throttle.h"

namespace ym::net {

std::int64_t AuthThrottle::BlockedForMs(std::string_view address, std::int64_t now_ms) {
  auto it = entries_.find(std::string(address));
  if (it == entries_.end()) return 0;
  Entry& e = it->second;
  if (e.blocked_until == 0) return 0;
  if (now_ms >= e.blocked_until) {
    // Cooled down: start afresh.
    lru_.erase(e.lru);
    entries_.erase(it);
    return 0;
  }
  // A blocked address that keeps trying stays the most recently touched, so a flood from other
  // addresses does not evict it first.
  lru_.splice(lru_.begin(), lru_, e.lru);
  return e.blocked_until - now_ms;
}

AuthThrottle::Entry& AuthThrottle::Touch(std::string_view address) {
  std::string key(address);
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return it->second;
  }
  if (options_.max_addresses > 0 && entries_.size() >= options_.max_addresses) {
    entries_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  Entry& e = entries_[key];
  e.lru = lru_.begin();
  return e;
}

bool AuthThrottle::RecordFailure(std::string_view address, std::int64_t now_ms) {
  if (options_.max_failures == 0) return false;
  Entry& e = Touch(address);
  if (e.blocked_until != 0) {
    if (now_ms < e.blocked_until) return false;  // already blocked
    e.blocked_until = 0;
    e.failures = 0;
  }
  if (e.failures == 0 || now_ms - e.window_start >= options_.window_ms) {
    e.window_start = now_ms;
    e.failures = 0;
  }
  ++e.failures;
  if (e.failures >= options_.max_failures) {
    e.blocked_until = now_ms + options_.block_ms;
    return true;
  }
  return false;
}

}  // namespace ym::net
