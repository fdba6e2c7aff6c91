// LeaseNames: the queue slots a lease request's list of names resolves to, cached per list.
//
// A fleet of workers asks for the same list of queues lease after lease (up to 64 names each).
// Resolving every name on every lease is a hash lookup per name, each a few cache misses once
// there are many queues. This cache keeps, per distinct list, the slots its names resolved to,
// and the byte key of that slot list (the scheduler's key for the list's fair-share state).
//
// Validity: the scheduler bumps an epoch whenever the name -> slot mapping changes (a queue
// created or freed: its slot may be reused for another name). An entry resolved under another
// epoch is resolved again, so a cached answer always equals a fresh resolution. Names that do
// not resolve are left out, in the order of the request, exactly as a fresh resolution does.
//
// Bounded: past kMaxLists distinct lists the cache starts over (a miss costs one resolution).
// Pure; owned by the Scheduler; core thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace ym {

class LeaseNames {
 public:
  static constexpr std::size_t kMaxLists = 1024;
  // The slot of a queue name, nullopt when no such queue exists.
  using Lookup = std::function<std::optional<std::uint32_t>(const std::string&)>;

  struct Resolved {
    std::vector<std::uint32_t> slots;  // the names that resolved, in request order
    std::string slots_key;             // the bytes of `slots`: a key for the list
    std::uint64_t epoch = 0;
  };

  // The slots `names` resolve to under `epoch` (from the cache when resolved under the same
  // epoch, else through `lookup`). The reference is valid until the next call.
  const Resolved& Resolve(const std::vector<std::string>& names, std::uint64_t epoch,
                          const Lookup& lookup);

  std::size_t size() const { return lists_.size(); }
  // Resolutions done through `lookup` (cache misses), for tests.
  std::uint64_t resolutions() const { return resolutions_; }

 private:
  // The request's names, each preceded by its length: distinct lists have distinct keys.
  static void KeyOf(const std::vector<std::string>& names, std::string& out);

  std::unordered_map<std::string, Resolved> lists_;
  std::string key_;  // scratch
  std::uint64_t resolutions_ = 0;
};

}  // namespace ym
