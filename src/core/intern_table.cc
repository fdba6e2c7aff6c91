#include "core/intern_table.h"

#include <cstdlib>

namespace ym {

InternTable::InternTable() { slots_.emplace_back(); }

std::uint32_t InternTable::Acquire(const std::string& name) {
  if (name.empty()) return 0;
  auto it = ids_.find(name);
  if (it != ids_.end()) {
    ++slots_[it->second].refs;
    return it->second;
  }
  std::uint32_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  slots_[id].name = name;
  slots_[id].refs = 1;
  ids_.emplace(name, id);
  return id;
}

void InternTable::Ref(std::uint32_t id) {
  if (id == 0) return;
  // A reference to a freed id is a broken invariant in the caller: its name may already belong
  // to someone else.
  if (slots_[id].refs == 0) std::abort();
  ++slots_[id].refs;
}

void InternTable::Release(std::uint32_t id) {
  if (id == 0) return;
  Slot& s = slots_[id];
  if (s.refs == 0) std::abort();  // released more often than acquired
  if (--s.refs > 0) return;
  ids_.erase(s.name);
  std::string().swap(s.name);
  free_.push_back(id);
}

std::optional<std::uint32_t> InternTable::Find(const std::string& name) const {
  if (name.empty()) return 0u;
  auto it = ids_.find(name);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ym
