#include "core/flow/namespace_retention.h"

#include <algorithm>

namespace ym::flow {

std::int64_t EffectiveWindowMs(std::int64_t queue_window_ms,
                               std::optional<std::int64_t> namespace_window_ms) {
  return namespace_window_ms ? std::min(queue_window_ms, *namespace_window_ms) : queue_window_ms;
}

void NamespaceRetention::Configure(const std::string& ns, const NamespaceRetentionSpec& spec) {
  auto it = windows_.find(ns);
  if (spec.empty()) {
    if (it == windows_.end()) return;
    it->second.spec = spec;
    const auto& p = it->second.passes;
    if (std::none_of(p.begin(), p.end(), [](const Pass& x) { return x.active; })) {
      windows_.erase(it);
    }
    return;
  }
  if (it == windows_.end()) it = windows_.emplace(ns, Entry{}).first;
  it->second.spec = spec;
}

void NamespaceRetention::Scan(std::int64_t now_ms) {
  for (auto& [ns, e] : windows_) {
    for (std::size_t slot = 0; slot < e.passes.size(); ++slot) {
      const auto window = e.spec.WindowMs(StateOf(slot));
      Pass& p = e.passes[slot];
      if (!window || p.active) continue;
      p.active = true;
      p.in_flight = false;
      p.after = 0;
      // Saturating: a window longer than the clock's past never cuts anything.
      p.cutoff_ms = now_ms >= INT64_MIN + *window ? now_ms - *window : INT64_MIN;
      queued_.emplace_back(ns, StateOf(slot));
    }
  }
}

std::size_t NamespaceRetention::Plan(std::uint64_t examine, std::size_t max_purges,
                                     std::vector<Mutation>& out) {
  std::size_t n = 0;
  while (n < max_purges && !queued_.empty()) {
    auto [ns, state] = std::move(queued_.front());
    queued_.pop_front();
    auto it = windows_.find(ns);
    if (it == windows_.end()) continue;
    Pass& p = it->second.passes[Slot(state)];
    if (!p.active || p.in_flight) continue;
    p.in_flight = true;
    PurgeFinished purge;
    purge.ns = ns;
    purge.state = state;
    purge.before_ms = p.cutoff_ms;
    purge.after_id = p.after;
    purge.limit = std::max<std::uint64_t>(examine, 1);
    out.push_back(std::move(purge));
    ++n;
  }
  return n;
}

void NamespaceRetention::OnOutcome(const PurgeOutcome& o) {
  if (o.ns.empty() || !IsTerminal(o.state)) return;
  auto it = windows_.find(o.ns);
  if (it == windows_.end()) return;
  deleted_ += o.deleted;
  Pass& p = it->second.passes[Slot(o.state)];
  if (!p.in_flight) return;
  p.in_flight = false;
  if (o.resume_after != 0 && o.resume_after > p.after) {
    p.after = o.resume_after;
    queued_.emplace_back(o.ns, o.state);
    return;
  }
  p.active = false;
  p.after = 0;
  const auto& passes = it->second.passes;
  if (it->second.spec.empty() &&
      std::none_of(passes.begin(), passes.end(), [](const Pass& x) { return x.active; })) {
    windows_.erase(it);
  }
}

bool NamespaceRetention::InPass(const std::string& ns, JobState s) const {
  auto it = windows_.find(ns);
  return it != windows_.end() && IsTerminal(s) && it->second.passes[Slot(s)].active;
}

}  // namespace ym::flow
