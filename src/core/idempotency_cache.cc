#include "core/idempotency_cache.h"

#include <algorithm>
#include <limits>

namespace ym {

IdempotencyCache::IdempotencyCache(std::size_t capacity)
    : capacity_(std::max<std::size_t>(capacity, 1)) {}

std::string IdempotencyCache::KeyOf(const std::string& ns, const std::string& key) {
  std::string k;
  k.reserve(ns.size() + 1 + key.size());
  k += ns;
  k += '\0';
  k += key;
  return k;
}

const IdempotencyCache::Entry* IdempotencyCache::Find(const std::string& key, std::int64_t now_ms) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  if (it->second->second.expires_at_ms <= now_ms) {
    lru_.erase(it->second);
    map_.erase(it);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->second;
}

void IdempotencyCache::Put(const std::string& key, const Entry& entry, std::int64_t now_ms) {
  auto it = map_.find(key);
  if (it != map_.end()) {
    it->second->second = entry;
    lru_.splice(lru_.begin(), lru_, it->second);
  } else {
    lru_.emplace_front(key, entry);
    map_.emplace(key, lru_.begin());
  }
  Evict(now_ms);
}

void IdempotencyCache::SetFinal(const std::string& key, JobId job, JobState state) {
  auto it = map_.find(key);
  if (it == map_.end() || it->second->second.job != job) return;
  it->second->second.finished = true;
  it->second->second.state = state;
}

void IdempotencyCache::Erase(const std::string& key, std::uint64_t seq) {
  Entry tomb;
  tomb.expires_at_ms = std::numeric_limits<std::int64_t>::max();
  tomb.written_seq = seq;
  tomb.erased = true;
  auto it = map_.find(key);
  if (it != map_.end()) {
    it->second->second = tomb;
    lru_.splice(lru_.begin(), lru_, it->second);
  } else {
    lru_.emplace_front(key, tomb);
    map_.emplace(key, lru_.begin());
  }
  tombstones_.emplace_back(key, seq);
}

void IdempotencyCache::MarkIncompleteUntil(std::int64_t max_expires_ms) {
  complete_after_ms_ = std::max(complete_after_ms_, max_expires_ms);
}

void IdempotencyCache::SetEvictableUpTo(std::uint64_t seq, std::int64_t now_ms) {
  evictable_seq_ = seq;
  // Tombstones whose delete every store read now sees go first (one replaced by a Put since is
  // no longer a tombstone and stays).
  while (!tombstones_.empty() && tombstones_.front().second <= seq) {
    auto it = map_.find(tombstones_.front().first);
    if (it != map_.end() && it->second->second.erased &&
        it->second->second.written_seq == tombstones_.front().second) {
      lru_.erase(it->second);
      map_.erase(it);
    }
    tombstones_.pop_front();
  }
  Evict(now_ms);
}

void IdempotencyCache::Evict(std::int64_t now_ms) {
  // The least recently used entry is the oldest write in practice; if it is still pinned, the
  // cache stays over capacity for the moment (by at most the keys written while one lookup is
  // in flight) rather than forget a key a lookup may have missed.
  while (map_.size() > capacity_) {
    auto& [key, e] = lru_.back();
    if (e.written_seq > evictable_seq_) return;
    if (e.expires_at_ms > now_ms && !e.erased)
      complete_after_ms_ = std::max(complete_after_ms_, e.expires_at_ms);
    map_.erase(key);
    lru_.pop_back();
  }
}

}  // namespace ym
