#include "core/read_guard.h"

#include <algorithm>

namespace ym {

ReadGuard::Ticket ReadGuard::Open(std::uint64_t durable_seq) {
  Ticket t;
  t.id = next_ticket_++;
  t.durable_seq = durable_seq;
  t.since = next_pos_;
  open_.emplace(t.id, t.since);
  open_durable_.insert(durable_seq);
  durable_of_.emplace(t.id, durable_seq);
  return t;
}

void ReadGuard::Close(const Ticket& ticket) {
  if (open_.erase(ticket.id) == 0) return;
  auto d = durable_of_.find(ticket.id);
  if (d != durable_of_.end()) {
    open_durable_.erase(open_durable_.find(d->second));
    durable_of_.erase(d);
  }
  Trim();
  TrimDeleted();
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

void ReadGuard::OnDeleted(JobId id, std::uint64_t batch_seq) {
  deleted_log_.emplace_back(batch_seq, id);
  deleted_[id] = batch_seq;
  if (deleted_log_.size() > max_remembered_) {
    // Forgetting it is safe only if no read can tell: every read older than its batch is stale.
    const auto [old_seq, old_id] = deleted_log_.front();
    deleted_log_.pop_front();
    auto it = deleted_.find(old_id);
    if (it != deleted_.end() && it->second == old_seq) deleted_.erase(it);
    OnPurge(old_seq);
  }
  TrimDeleted();
}

void ReadGuard::OnDurable(std::uint64_t seq) {
  durable_seq_ = std::max(durable_seq_, seq);
  TrimDeleted();
}

void ReadGuard::TrimDeleted() {
  // A delete in batch S can be missed only by a read whose durable seq is below S: one open now,
  // or one opened before S is durable.
  std::uint64_t covered = durable_seq_;
  if (!open_durable_.empty()) covered = std::min(covered, *open_durable_.begin());
  while (!deleted_log_.empty() && deleted_log_.front().first <= covered) {
    const auto [seq, id] = deleted_log_.front();
    deleted_log_.pop_front();
    auto it = deleted_.find(id);
    if (it != deleted_.end() && it->second == seq) deleted_.erase(it);
  }
}

bool ReadGuard::MaybeStale(const Ticket& ticket, JobId id) const {
  // A purge in a batch the read may not have seen may have removed the row (or will, before
  // anything decided now reaches the disk).
  if (last_purge_seq_ > ticket.durable_seq) return true;
  // Likewise a delete of this one row.
  if (auto d = deleted_.find(id); d != deleted_.end() && d->second > ticket.durable_seq) {
    return true;
  }
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
