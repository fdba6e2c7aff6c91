#include "sdk/runtime_policy.h"

#include <algorithm>
#include <cmath>
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
  return std::max(Millis(50), HeartbeatDelay(lease, fraction) / 2);
}

void AutoPrefetch::RecordHandler(std::chrono::nanoseconds run_time) {
  const double s = std::chrono::duration<double>(run_time).count();
  handler_s_ = samples_ == 0 ? s : handler_s_ + kHandlerWeight * (s - handler_s_);
  if (samples_ < kMinSamples) ++samples_;
}

void AutoPrefetch::RecordRoundTrip(std::chrono::nanoseconds round_trip) {
  const double s = std::chrono::duration<double>(round_trip).count();
  round_trip_s_ += kRoundTripWeight * (s - round_trip_s_);
}

int AutoPrefetch::Target(int concurrency) const {
  if (samples_ < kMinSamples || concurrency < 1) return 0;
  const int cap = std::max(0, std::min(kMaxPerSlot * concurrency, 1000 - concurrency));
  const double d = std::max(handler_s_, 1e-6);
  // Rounded to the nearest: ceil would keep one job queued behind even the longest handlers.
  const double want = std::floor(static_cast<double>(concurrency) * 2.0 * round_trip_s_ / d + 0.5);
  // Compared as doubles first: a tiny d makes `want` far larger than any int.
  return want >= cap ? cap : static_cast<int>(want);
}

int LeaseWant(int concurrency, int capacity, int running, int queued) {
  const int free = capacity - running - queued;
  if (free <= 0) return 0;
  if (running < concurrency && queued == 0) return free;
  return free >= std::max(1, (capacity + 1) / 2) ? free : 0;
}

bool LeaseRefusalIsFinal(int http_status) {
  return http_status >= 400 && http_status < 500 && http_status != 408 && http_status != 429;
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
    case Code::kStoreUnavailable:
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
