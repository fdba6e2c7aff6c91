// QueueNames: queue name -> queue slot, ordered for paging and hashed for lookups.
//
// The scheduler resolves a queue name on every enqueue and for every queue a lease names (up
// to 64 per lease), and pages the queues by name for GET /v1/queues. An ordered map alone makes
// each lookup O(log queues) string comparisons, a dozen cache misses with 10,000 queues; so the
// names live in an ordered map (the pages) and a hash index over the same nodes answers point
// lookups in O(1). The index holds views of the map's keys and the map's iterators, both stable
// while the entry exists (std::map never moves its nodes).
//
// The interface is the subset of std::map the scheduler uses, with the same meaning, so the
// two are interchangeable at the call sites. Owned by the Scheduler; core thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ym {

class QueueNames {
 public:
  using Map = std::map<std::string, std::uint32_t, std::less<>>;
  using iterator = Map::iterator;
  using const_iterator = Map::const_iterator;

  QueueNames() = default;
  // Views in the index point into this object's own nodes: neither copied nor moved.
  QueueNames(const QueueNames&) = delete;
  QueueNames& operator=(const QueueNames&) = delete;

  // The entry of `name`, or end(). O(1) expected.
  iterator find(std::string_view name);
  const_iterator find(std::string_view name) const;
  // Adds `name` -> `slot` unless present (then nothing changes). As std::map::emplace.
  std::pair<iterator, bool> emplace(const std::string& name, std::uint32_t slot);
  // Removes `name`; returns how many entries were removed (0 or 1).
  std::size_t erase(std::string_view name);
  // The first entry whose name sorts after `name` (byte order). O(log n).
  const_iterator upper_bound(std::string_view name) const { return by_name_.upper_bound(name); }

  iterator begin() { return by_name_.begin(); }
  iterator end() { return by_name_.end(); }
  const_iterator begin() const { return by_name_.begin(); }
  const_iterator end() const { return by_name_.end(); }
  std::size_t size() const { return by_name_.size(); }
  bool empty() const { return by_name_.empty(); }

 private:
  Map by_name_;
  std::unordered_map<std::string_view, iterator> index_;
};

}  // namespace ym
