#include "core/read_guard.h"

#include <algorithm>

namespace ym {

ReadGuard::Ticket ReadGuard::Open(std::uint64_t durable_seq) {
  Ticket t;
  t.id = next_ticket_++;
  t.durable_seq = durable_seq;
  t.since = next_pos_;
  open_.emplace(t.id, t.since);
  return t;
}

void ReadGuard::Close(const Ticket& ticket) {
  if (open_.erase(ticket.id) == 0) return;
  Trim();
}

void ReadGuard::OnEvicted(JobId id) {
  // Nobody can need it: every read opened later starts after this position.
  if (open_.empty()) return;
  const std::uint64_t pos = next_pos_++;
  log_.emplace_back(pos, id);
  latest_[id] = pos;
  if (log_.size() > max_remembered_) {
    const auto [old_pos, old_id] = log_.front();
    log_.pop_front();
    auto it = latest_.find(old_id);
    if (it != latest_.end() && it->second == old_pos) latest_.erase(it);
    // Reads that began before this entry can no longer be told apart from stale ones.
    forgotten_below_ = old_pos + 1;
  }
}

void ReadGuard::OnPurge(std::uint64_t batch_seq) {
  last_purge_seq_ = std::max(last_purge_seq_, batch_seq);
}

bool ReadGuard::MaybeStale(const Ticket& ticket, JobId id) const {
  // A purge in a batch the read may not have seen may have removed the row (or will, before
  // anything decided now reaches the disk).
  if (last_purge_seq_ > ticket.durable_seq) return true;
  if (ticket.since < forgotten_below_) return true;
  auto it = latest_.find(id);
  return it != latest_.end() && it->second >= ticket.since;
}

void ReadGuard::Trim() {
  const std::uint64_t keep_from = open_.empty() ? next_pos_ : open_.begin()->second;
  while (!log_.empty() && log_.front().first < keep_from) {
    const auto [pos, id] = log_.front();
    log_.pop_front();
    auto it = latest_.find(id);
    if (it != latest_.end() && it->second == pos) latest_.erase(it);
  }
}

}  // namespace ym
