// AuthThrottle: slows down guessing (docs/security.md, "Failure rate limiting"). Pure: no I/O,
// no clock of its own (every call takes the monotonic time), not thread-safe (the HTTP server
// holds it under a mutex).
//
// Per client address: failures are counted in a fixed window of `window_ms` that starts with
// the first failure; the `max_failures`-th failure within it blocks the address for `block_ms`.
// While blocked every request from it is answered 429 with Retry-After before its token is
// looked at, so a correct guess made while blocked is not recognised. Other addresses are not
// affected. Memory is bounded: at most `max_addresses` addresses are tracked; past that the one
// touched least recently (a failure, or a request while blocked) is forgotten (an attacker with
// that many addresses can make the throttle forget an address; each of them is still throttled on
// its own).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ym::net {

struct AuthThrottleOptions {
  std::uint32_t max_failures = 10;  // 0: never block
  std::int64_t window_ms = 60'000;
  std::int64_t block_ms = 60'000;
  std::size_t max_addresses = 10'000;
};

class AuthThrottle {
 public:
  explicit AuthThrottle(AuthThrottleOptions options) : options_(options) {}

  // ms until `address` may try again (> 0), or 0 when it is not blocked.
  std::int64_t BlockedForMs(std::string_view address, std::int64_t now_ms);
  // Counts a failure; returns true when this failure blocked the address.
  bool RecordFailure(std::string_view address, std::int64_t now_ms);

  std::size_t tracked() const { return entries_.size(); }
  const AuthThrottleOptions& options() const { return options_; }

 private:
  struct Entry {
    std::int64_t window_start = 0;
    std::uint32_t failures = 0;
    std::int64_t blocked_until = 0;  // 0: not blocked
    std::list<std::string>::iterator lru;
  };
  Entry& Touch(std::string_view address);

  AuthThrottleOptions options_;
  std::list<std::string> lru_;  // most recently touched first
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace ym::net
