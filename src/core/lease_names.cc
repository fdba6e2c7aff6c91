#include "core/lease_names.h"

namespace ym {

void LeaseNames::KeyOf(const std::vector<std::string>& names, std::string& out) {
  out.clear();
  for (const std::string& n : names) {
    const auto len = static_cast<std::uint32_t>(n.size());
    out.append(reinterpret_cast<const char*>(&len), sizeof(len));
    out.append(n);
  }
}

const LeaseNames::Resolved& LeaseNames::Resolve(const std::vector<std::string>& names,
                                                std::uint64_t epoch, const Lookup& lookup) {
  KeyOf(names, key_);
  auto it = lists_.find(key_);
  if (it == lists_.end()) {
    if (lists_.size() >= kMaxLists) lists_.clear();
    it = lists_.try_emplace(key_).first;
  } else if (it->second.epoch == epoch) {
    return it->second;
  }
  Resolved& r = it->second;
  ++resolutions_;
  r.epoch = epoch;
  r.slots.clear();
  for (const std::string& n : names) {
    if (std::optional<std::uint32_t> slot = lookup(n)) r.slots.push_back(*slot);
  }
  r.slots_key.assign(reinterpret_cast<const char*>(r.slots.data()),
                     r.slots.size() * sizeof(r.slots[0]));
  return r;
}

}  // namespace ym
