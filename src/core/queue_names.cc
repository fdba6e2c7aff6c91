#include "core/queue_names.h"

namespace ym {

QueueNames::iterator QueueNames::find(std::string_view name) {
  auto it = index_.find(name);
  return it == index_.end() ? by_name_.end() : it->second;
}

QueueNames::const_iterator QueueNames::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? by_name_.end() : const_iterator(it->second);
}

std::pair<QueueNames::iterator, bool> QueueNames::emplace(const std::string& name,
                                                          std::uint32_t slot) {
  auto [it, added] = by_name_.emplace(name, slot);
  if (added) index_.emplace(std::string_view(it->first), it);
  return {it, added};
}

std::size_t QueueNames::erase(std::string_view name) {
  auto it = index_.find(name);
  if (it == index_.end()) return 0;
  const iterator node = it->second;
  index_.erase(it);  // before the node whose key its view points into
  by_name_.erase(node);
  return 1;
}

}  // namespace ym
