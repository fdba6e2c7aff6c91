// Saturating int64 arithmetic for the flow-control gates.
//
// The gates add configured spans (an emission interval, a burst tolerance, an open interval) to
// times the caller passes in. Every valid config keeps those spans far below 2^62 ms, but the
// caller's `now` is an arbitrary int64 (tests pass extremes), so a plain `now + span` could
// overflow, which is undefined behaviour. Saturating at the int64 limits is the right answer
// for times: "later than anything representable" stays later than every real `now`.
#pragma once

#include <cstdint>
#include <limits>

namespace ym::flow {

// "Never opens by the clock": what NextOpen returns when only an event (a Release, a trial's
// outcome) can open the gate.
inline constexpr std::int64_t kNever = std::numeric_limits<std::int64_t>::max();

inline std::int64_t SatAdd(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return r;
}

inline std::int64_t SatSub(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) {
    return b < 0 ? std::numeric_limits<std::int64_t>::max()
                 : std::numeric_limits<std::int64_t>::min();
  }
  return r;
}

}  // namespace ym::flow
