#include "sdk/runtime_policy.h"

#include <algorithm>
#include <string>

namespace ym::sdk {

ReconnectBackoff::ReconnectBackoff(Millis min, Millis max, std::uint64_t seed)
    : min_(std::max(min, Millis(1))), max_(std::max(max, std::max(min, Millis(1)))), rng_(seed) {}

Millis ReconnectBackoff::Next() {
  // 2^20 * min is far past any sensible max; capping the exponent keeps the shift defined.
  const int shift = std::min(attempt_, 20);
  const std::int64_t ceiling =
      std::min<std::int64_t>(max_.count(), min_.count() * (std::int64_t{1} << shift));
  ++attempt_;
  std::uniform_int_distribution<std::int64_t> dist(ceiling / 2, ceiling);
  return Millis(std::max<std::int64_t>(1, dist(rng_)));
}

Millis EffectiveLease(std::optional<Millis> requested, std::int64_t expires_at_ms,
                      std::int64_t now_ms) {
  if (requested) return *requested;
  return Millis(std::max<std::int64_t>(100, expires_at_ms - now_ms));
}

Millis HeartbeatDelay(Millis lease, double fraction) {
  fraction = std::clamp(fraction, 0.05, 0.9);
  const auto d = static_cast<std::int64_t>(static_cast<double>(lease.count()) * fraction);
  return Millis(std::max<std::int64_t>(50, d));
}

Millis HeartbeatRetryDelay(Millis lease, double fraction) {
  return std::max(Millis(50), std::min(Millis(1000), HeartbeatDelay(lease, fraction) / 2));
}

bool ShouldFlushAcks(std::size_t pending, int batch_size,
                     std::chrono::steady_clock::time_point oldest,
                     std::chrono::steady_clock::time_point now, Millis interval) {
  if (pending == 0) return false;
  if (pending >= static_cast<std::size_t>(std::max(1, batch_size))) return true;
  return now - oldest >= interval;
}

ItemVerdict ClassifyItem(const ym::Status& status) {
  switch (status.code()) {
    case Code::kOk:
      return ItemVerdict::kDone;
    case Code::kStaleLease:
    case Code::kInvalidState:
    case Code::kNotFound:
      return ItemVerdict::kLeaseLost;
    case Code::kUnavailable:
    case Code::kIoError:
    case Code::kResourceExhausted:
    case Code::kInternal:
      // `internal` covers a reply cut short or a 500 while the server restarts; the item is
      // safe to send again because a stale token is refused rather than applied twice.
      return ItemVerdict::kRetry;
    default:
      return ItemVerdict::kRejected;
  }
}

yardmaster::Status ToPublic(const ym::Status& status, int http_status) {
  if (status.ok()) return yardmaster::Status::Ok();
  return yardmaster::Status(std::string(CodeName(status.code())), status.message(), http_status);
}

}  // namespace ym::sdk
