#include "core/flow/keyed_breaker.h"

#include <utility>

namespace ym::flow {

Result<KeyedBreaker> KeyedBreaker::Make(const BreakerConfig& config) {
  YM_RETURN_IF_ERROR(config.Validate());
  return KeyedBreaker(config);
}

std::int64_t KeyedBreaker::NextOpen(const std::string& key, std::int64_t now) const {
  auto it = keys_.find(key);
  return it == keys_.end() ? now : it->second.breaker.NextOpen(now);
}

std::optional<BreakerTicket> KeyedBreaker::Admit(const std::string& key, std::int64_t now) {
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    // The config was validated by Make, so this cannot fail.
    it = keys_.emplace(key, Entry{std::move(*CircuitBreaker::Make(config_)), next_instance_++})
             .first;
  }
  std::optional<BreakerPermit> p = it->second.breaker.Admit(now);
  if (!p) {
    MaybeDrop(it);  // only a new entry could be droppable here, and a new entry admits
    return std::nullopt;
  }
  ++it->second.out;
  return BreakerTicket{it->second.instance, *p};
}

bool KeyedBreaker::Report(const std::string& key, const BreakerTicket& ticket,
                          BreakerOutcome outcome, std::int64_t now) {
  auto it = keys_.find(key);
  if (it == keys_.end() || it->second.instance != ticket.instance) return false;
  Entry& e = it->second;
  if (e.out > 0) --e.out;
  const bool was_half_open = e.breaker.State().phase == BreakerPhase::kHalfOpen;
  bool counted = false;
  switch (outcome) {
    case BreakerOutcome::kSuccess:
      counted = e.breaker.OnSuccess(ticket.permit, now);
      break;
    case BreakerOutcome::kFailure:
      counted = e.breaker.OnFailure(ticket.permit, now);
      break;
    case BreakerOutcome::kAbandoned:
      counted = e.breaker.OnAbandoned(ticket.permit);
      break;
  }
  // In half-open, the only permit of the current epoch is the trial's (breaker.h): a counted
  // outcome there is the trial's.
  const bool trial_ended = counted && was_half_open;
  MaybeDrop(it);
  return trial_ended;
}

std::size_t KeyedBreaker::Reset(const std::string* key) {
  std::size_t tripped = 0;
  auto reset = [&](std::unordered_map<std::string, Entry>::iterator it) {
    if (it->second.breaker.State().phase != BreakerPhase::kClosed) ++tripped;
    // A new instance: tickets out before the reset are stale, so none of them can count in the
    // fresh closed period (nor keep the key from being dropped).
    it->second.breaker.Reset();
    it->second.instance = next_instance_++;
    it->second.out = 0;
    MaybeDrop(it);
  };
  if (key != nullptr) {
    auto it = keys_.find(*key);
    if (it != keys_.end()) reset(it);
    return tripped;
  }
  for (auto it = keys_.begin(); it != keys_.end();) {
    auto next = std::next(it);
    reset(it);
    it = next;
  }
  return tripped;
}

void KeyedBreaker::MaybeDrop(std::unordered_map<std::string, Entry>::iterator it) {
  const Entry& e = it->second;
  if (e.out > 0) return;
  const BreakerState s = e.breaker.State();
  if (s.phase == BreakerPhase::kClosed && s.consecutive_failures == 0 && s.window_failures == 0) {
    keys_.erase(it);
  }
}

void KeyedBreaker::ForEach(
    const std::function<void(const std::string&, const BreakerState&)>& fn) const {
  for (const auto& [key, e] : keys_) fn(key, e.breaker.State());
}

std::size_t KeyedBreaker::tickets_out() const {
  std::size_t n = 0;
  for (const auto& [key, e] : keys_) n += e.out;
  return n;
}

}  // namespace ym::flow
