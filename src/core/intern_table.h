// InternTable: names <-> small integer ids, with reference counts so names that are no longer
// used are forgotten.
//
// Core keeps namespaces, kinds and worker ids as 32-bit ids in every live job. Without counts a
// name seen once (a typo, a worker that ran one job a month ago) would stay in memory forever;
// with them a name lives exactly as long as something refers to it, and its id is reused.
// Id 0 is the empty name: never counted, never freed, so zero-initialised fields are harmless.
//
// Owner: the Scheduler, on the core thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace ym {

class InternTable {
 public:
  InternTable();

  // The id of `name` with one more reference (0 for the empty name, not counted).
  std::uint32_t Acquire(const std::string& name);
  // One more reference to a live id (no-op for 0).
  void Ref(std::uint32_t id);
  // One reference less; the name is forgotten and its id reused once none is left. No-op for 0.
  void Release(std::uint32_t id);

  // The name of a live id ("" for 0).
  const std::string& Name(std::uint32_t id) const { return slots_[id].name; }
  std::uint32_t Refs(std::uint32_t id) const { return slots_[id].refs; }
  // The id of a known name, without taking a reference.
  std::optional<std::uint32_t> Find(const std::string& name) const;

  // Names alive now (without the empty name) and slots ever allocated (live + free).
  std::size_t size() const { return ids_.size(); }
  std::size_t slots() const { return slots_.size(); }

 private:
  struct Slot {
    std::string name;
    std::uint32_t refs = 0;
  };
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::unordered_map<std::string, std::uint32_t> ids_;
};

}  // namespace ym
