// IdempotencyCache: the bounded in-memory part of the idempotency keys; the store holds them
// all (table idempotency_keys, indexed by key and by expiry).
//
// A key maps to the job it created and, once that job finished, its final state (kept with the
// key so a duplicate of a purged job answers what the job really became). The cache is an LRU of
// at most `capacity` entries, with two exceptions that keep the answer exact:
//
//   * Pinned entries. A key whose job's batch is not yet durable is invisible to a store read,
//     so its entry must not be evicted before that batch commits. More generally, an entry
//     written in batch S is kept until every store lookup still in flight was started after S
//     was durable (Evictable(S) below): a lookup that started earlier may have missed it, and
//     the cache is what tells the core that the key now exists.
//   * Completeness. While no unexpired entry was ever evicted, a miss means the key does not
//     exist (the store holds nothing the cache lacks) and no store read is needed. After an
//     eviction, misses need a store lookup until every evicted entry has expired
//     (`complete_after_ms`).
//
// Owner: the Scheduler, on the core thread only. Pure: no I/O, time passed in.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <string>
#include <unordered_map>

#include "core/job.h"

namespace ym {

class IdempotencyCache {
 public:
  struct Entry {
    JobId job = 0;
    std::int64_t expires_at_ms = 0;
    bool finished = false;  // `state` is the job's final state
    JobState state = JobState::kReady;
    std::uint64_t written_seq = 0;  // batch that wrote the key (0: read from the store)
    // A tombstone (Erase): the key was deleted; the key is free, whatever a store read says.
    bool erased = false;
  };

  // The cache key of idempotency key `key` of namespace `ns`.
  static std::string KeyOf(const std::string& ns, const std::string& key);

  explicit IdempotencyCache(std::size_t capacity);

  // The unexpired entry for `key`, marked most recently used; nullptr on a miss (an expired
  // entry is dropped).
  const Entry* Find(const std::string& key, std::int64_t now_ms);
  // Inserts or replaces, as most recently used, then evicts down to capacity.
  void Put(const std::string& key, const Entry& entry, std::int64_t now_ms);
  // Records the final state of `job` if `key` is cached and still points at it.
  void SetFinal(const std::string& key, JobId job, JobState state);
  // The key was deleted in batch `seq` (a namespace wipe). Until that batch is evictable (below),
  // Find answers a tombstone (`erased`): a store lookup in flight may have read the row before
  // its delete, and the tombstone is what tells the core that the key is free. Then it goes;
  // a tombstone is never counted as a lost key (it does not make the cache incomplete).
  void Erase(const std::string& key, std::uint64_t seq);

  // True when a miss proves the key is absent from the store too.
  bool Complete(std::int64_t now_ms) const { return now_ms >= complete_after_ms_; }
  // Recovery loaded only the newest keys; the others expire at or before `max_expires_ms`.
  void MarkIncompleteUntil(std::int64_t max_expires_ms);

  // Batches up to `seq` are durable and no lookup started before then is in flight: entries
  // written up to `seq` may be evicted.
  void SetEvictableUpTo(std::uint64_t seq, std::int64_t now_ms);

  std::size_t size() const { return map_.size(); }
  std::size_t capacity() const { return capacity_; }

 private:
  using Lru = std::list<std::pair<std::string, Entry>>;  // front: most recently used
  void Evict(std::int64_t now_ms);

  std::size_t capacity_;
  Lru lru_;
  std::unordered_map<std::string, Lru::iterator> map_;
  std::uint64_t evictable_seq_ = 0;
  std::deque<std::pair<std::string, std::uint64_t>> tombstones_;  // key, seq; in seq order
  std::int64_t complete_after_ms_ = 0;
};

}  // namespace ym
