#include "core/flow/namespace_active.h"

#include <string>

namespace ym::flow {

void NamespaceActive::Started(std::uint32_t ns) {
  if (ns >= active_.size()) active_.resize(static_cast<std::size_t>(ns) + 1, 0);
  ++active_[ns];
}

Status NamespaceActive::Ended(std::uint32_t ns, std::optional<std::int64_t> cap,
                              std::vector<LaneRef>& woken) {
  if (Active(ns) == 0) {
    return Status(Code::kInvalidState,
                  "namespace " + std::to_string(ns) + " has no active job to end");
  }
  --active_[ns];
  if (!waits_.empty() && HasRoom(ns, cap)) Reopen(ns, woken);
  return Status::Ok();
}

void NamespaceActive::Wait(std::uint32_t ns, const LaneRef& lane) { waits_[ns].push_back(lane); }

void NamespaceActive::Reopen(std::uint32_t ns, std::vector<LaneRef>& woken) {
  auto it = waits_.find(ns);
  if (it == waits_.end()) return;
  woken.insert(woken.end(), it->second.begin(), it->second.end());
  waits_.erase(it);
}

std::size_t NamespaceActive::waiting_lanes() const {
  std::size_t n = 0;
  for (const auto& [ns, lanes] : waits_) n += lanes.size();
  return n;
}

}  // namespace ym::flow
