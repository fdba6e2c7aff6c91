#include "core/retention_work.h"

#include <algorithm>

namespace ym {

bool RetentionWork::Due(const Entry& e, const Retention& r, JobState s, std::int64_t now_ms) {
  if (e.count == 0) return false;
  const std::int64_t cap = r.MaxKept(s);
  if (cap > 0 && e.count > static_cast<std::uint64_t>(cap)) return true;
  return e.oldest_ms != kNone && e.oldest_ms <= now_ms - r.WindowMs(s);
}

void RetentionWork::Enqueue(const std::string& queue, JobState s, Entry& e) {
  if (e.queued || e.in_flight) return;
  e.queued = true;
  queued_.emplace_back(queue, s);
}

void RetentionWork::MaybeErase(std::unordered_map<std::string, Tracked>::iterator it) {
  if (it->second.pins > 0) return;
  for (const Entry& e : it->second.per) {
    if (e.count != 0 || e.queued || e.in_flight) return;
  }
  entries_.erase(it);
}

void RetentionWork::Load(const std::string& queue, JobState state, std::uint64_t count,
                         std::int64_t oldest_ms) {
  if (!IsTerminal(state) || count == 0) return;
  Entry& e = entries_[queue].per[Slot(state)];
  e.count = count;
  e.oldest_ms = oldest_ms;
}

void RetentionWork::OnKept(const std::string& queue, JobState state, std::int64_t now_ms,
                           const Retention& r) {
  if (!IsTerminal(state)) return;
  Kept(queue, entries_[queue].per[Slot(state)], state, now_ms, r);
}

RetentionWork::Handle RetentionWork::Pin(const std::string& queue) {
  auto it = entries_.try_emplace(queue).first;
  ++it->second.pins;
  return &*it;
}

void RetentionWork::Unpin(Handle h) {
  if (--h->second.pins > 0) return;
  MaybeErase(entries_.find(h->first));
}

void RetentionWork::OnKept(Handle h, JobState state, std::int64_t now_ms, const Retention& r) {
  if (!IsTerminal(state)) return;
  Kept(h->first, h->second.per[Slot(state)], state, now_ms, r);
}

void RetentionWork::Kept(const std::string& queue, Entry& e, JobState state, std::int64_t now_ms,
                         const Retention& r) {
  ++e.count;
  ++e.kept_total;
  e.oldest_ms = std::min(e.oldest_ms, now_ms);
  if (e.in_flight) e.oldest_kept_in_flight = std::min(e.oldest_kept_in_flight, now_ms);
  const std::int64_t cap = r.MaxKept(state);
  if (cap > 0 && e.count > static_cast<std::uint64_t>(cap)) Enqueue(queue, state, e);
}

void RetentionWork::Scan(std::int64_t now_ms, const Policy& policy) {
  for (auto& [queue, tracked] : entries_) {
    PerState& per = tracked.per;
    const Retention& r = policy(queue);
    for (std::size_t i = 0; i < per.size(); ++i) {
      const auto s = static_cast<JobState>(i + 3);
      if (Due(per[i], r, s, now_ms)) Enqueue(queue, s, per[i]);
    }
  }
}

void RetentionWork::Recheck(const std::string& queue, std::int64_t now_ms, const Policy& policy) {
  auto it = entries_.find(queue);
  if (it == entries_.end()) return;
  const Retention& r = policy(queue);
  for (std::size_t i = 0; i < it->second.per.size(); ++i) {
    const auto s = static_cast<JobState>(i + 3);
    if (Due(it->second.per[i], r, s, now_ms)) Enqueue(queue, s, it->second.per[i]);
  }
}

std::size_t RetentionWork::Plan(std::int64_t now_ms, const Policy& policy, std::uint64_t max_rows,
                                std::size_t max_purges, std::vector<Mutation>& out) {
  std::uint64_t rows = 0;
  std::size_t purges = 0;
  while (!queued_.empty() && rows < max_rows && purges < max_purges) {
    auto [queue, s] = std::move(queued_.front());
    queued_.pop_front();
    auto it = entries_.find(queue);
    if (it == entries_.end()) continue;  // cannot happen: a queued entry is never erased
    Entry& e = it->second.per[Slot(s)];
    e.queued = false;
    const Retention& r = policy(queue);
    if (!Due(e, r, s, now_ms)) {  // its configuration changed since it was queued
      MaybeErase(it);
      continue;
    }
    const std::uint64_t limit = max_rows - rows;
    const std::int64_t cap = r.MaxKept(s);
    e.in_flight = true;
    e.kept_at_issue = e.kept_total;
    e.oldest_kept_in_flight = kNone;
    out.emplace_back(PurgeFinished{queue, s, now_ms - r.WindowMs(s),
                                   cap > 0 ? static_cast<std::uint64_t>(cap) : 0, limit});
    rows += std::min(limit, std::max<std::uint64_t>(e.count, 1));
    ++purges;
  }
  return purges;
}

void RetentionWork::OnOutcome(const PurgeOutcome& o, std::int64_t now_ms, const Policy& policy) {
  if (!IsTerminal(o.state)) return;
  auto it = entries_.find(o.queue);
  if (it == entries_.end()) return;
  Entry& e = it->second.per[Slot(o.state)];
  if (!e.in_flight) return;  // not ours (a stale report): the next outcome resynchronises
  e.in_flight = false;
  e.count = o.remaining + (e.kept_total - e.kept_at_issue);
  e.oldest_ms = std::min(o.remaining > 0 ? o.oldest_ms : kNone, e.oldest_kept_in_flight);
  e.oldest_kept_in_flight = kNone;
  if (Due(e, policy(o.queue), o.state, now_ms)) {
    Enqueue(o.queue, o.state, e);
  } else {
    MaybeErase(it);
  }
}

std::uint64_t RetentionWork::Count(const std::string& queue, JobState state) const {
  auto it = entries_.find(queue);
  return it == entries_.end() || !IsTerminal(state) ? 0 : it->second.per[Slot(state)].count;
}

}  // namespace ym
