// LimitSet: the configured limits, the gate set each job is subject to, and the live counts.
//
// A limit is a named object (LimitSpec): which jobs it applies to (`match`: queue, kind,
// namespace, each optional; all absent = every job), what it counts by (`key`: nothing, the
// job's concurrency_key, kind, namespace, queue, or a JSON object path into the payload) and its
// bounds (today `concurrency`, the most active jobs per key; `rate` and `quota` are meant to join
// it as further optional members). A job whose payload lacks the path (or holds something other
// than a string or an integer there) is counted under the empty key.
//
// For a job, the set of (limit, key) pairs it is subject to is its *gate set*. Gate sets are
// interned with reference counts so that equal sets share one id: the scheduler keys its lanes
// by (namespace, gate set id), so all ready jobs of one capped key sit in lanes that leave the
// rotation together, and admission asks only the gates of the lane's set. Set id 0 (kNoGates) is
// the empty set: with no limits configured every job has it and nothing here is called.
//
// Counting: each limit owns a KeyedConcurrencyGate (core/flow/concurrency_gate.h) keyed by the
// gate key. Admit(set) takes a slot of every gate of the set or of none; Release(set) gives them
// back and reports the lanes that waited on a gate that is now below its cap (Wait registers
// them), so the scheduler puts them back into the rotation: nothing polls, no blocked job is
// scanned.
//
// Owned by the Scheduler; core thread only; pure (no clock is needed for a cap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/flow/concurrency_gate.h"
#include "core/flow/key_groups.h"

namespace ym::flow {

enum class LimitKeyKind : std::uint8_t {
  kNone,            // one counter for every matched job
  kConcurrencyKey,  // the job's concurrency_key (empty when it has none)
  kKind,
  kNamespace,
  kQueue,
  kPayload,  // payload.<field>[.<field>...]
};

struct LimitSpec {
  static constexpr std::size_t kMaxPathDepth = 16;

  std::string name;  // [A-Za-z0-9_.:-], 1..128 characters (IsValidName)
  std::optional<std::string> match_queue;
  std::optional<std::string> match_kind;
  std::optional<std::string> match_namespace;
  LimitKeyKind key = LimitKeyKind::kNone;
  std::vector<std::string> payload_path;  // kPayload: the fields, outermost first
  // The bounds. At least one must be set; today only concurrency exists.
  std::optional<std::int64_t> concurrency;  // 1..ConcurrencyConfig::kMaxCap
  // Key modes, decided at enqueue (core/flow/key_groups.h); at most one of the two. Either
  // alone is enough to make a limit (no bound needed).
  SingletonMode singleton = SingletonMode::kOff;
  std::optional<DebounceConfig> debounce;

  // kValidation naming the field and its allowed values, else OK.
  Status Validate() const;
  // "concurrency_key", "kind", "namespace", "queue", "payload.a.b"; empty for kNone.
  std::string KeyText() const;
  // Parses KeyText's form into `key`/`payload_path` (kValidation naming field "key").
  Status SetKey(std::string_view text);

  // The spec as a JSON object without its name, {"match":{...},"key":"...","concurrency":N}
  // (members absent when unset): what the store keeps and what the API shows.
  std::string ToJson() const;
  // Parses ToJson's form (the API's request body too) strictly: unknown members, wrong types
  // and out-of-range values are kValidation naming the field; then Validate().
  static Result<LimitSpec> FromJson(std::string_view name, std::string_view json);

  bool operator==(const LimitSpec&) const = default;
};

// A limit as the API shows it: its configuration and its live counts.
struct LimitInfo {
  LimitSpec spec;
  bool created = false;  // PutLimit: it did not exist before
  // The keys with the most active jobs (at most kTopKeys), largest first, and how many keys
  // have an active job.
  static constexpr std::size_t kTopKeys = 100;
  std::vector<std::pair<std::string, std::int64_t>> active;
  std::size_t active_keys = 0;
};

// A page of GET /v1/limits.
struct LimitPage {
  std::vector<LimitInfo> items;
  std::string next_after;  // resume after this name; empty when the listing is complete
};

// The fields of a job that limits look at.
struct LimitSubject {
  std::string_view queue;
  std::string_view kind;
  std::string_view ns;
  std::string_view concurrency_key;
  std::string_view payload;  // JSON text
};

// A lane as the scheduler names it when it waits on a gate (opaque here).
struct LaneRef {
  std::uint32_t queue;
  std::uint32_t ns;
  std::uint32_t set;
};

class LimitSet {
 public:
  using SetId = std::uint32_t;
  static constexpr SetId kNoGates = 0;

  struct Gate {
    std::uint32_t limit;  // slot of the limit
    std::string key;
  };

  LimitSet();

  // No limit configured: every job has the empty set.
  bool empty() const { return by_name_.empty(); }
  std::size_t size() const { return by_name_.size(); }

  // Creates or replaces the limit `spec.name` (kValidation when the spec is bad: nothing
  // changes). `*created` tells which. Gate sets already handed out keep naming the old
  // configuration until the caller rebinds every job (BeginRecount, Acquire, Hold).
  Status Put(const LimitSpec& spec, bool* created);
  // False when no such limit. As for Put, the caller rebinds the jobs afterwards.
  bool Delete(const std::string& name);
  const LimitSpec* Find(const std::string& name) const;
  // The limit in slot `slot` (a Gate's `limit`); it must exist.
  const LimitSpec& SpecAt(std::uint32_t slot) const { return limits_[slot]->spec; }
  // Limits with a key mode (singleton or debounce): when 0, no job has a key gate.
  std::size_t keyed_modes() const { return keyed_modes_; }
  // Limits whose name sorts after `after`, in name order, at most `limit`.
  std::vector<const LimitSpec*> Page(const std::string& after, std::size_t limit, bool* more) const;

  // The gate set of a job with these fields, with one more reference. kNoGates when no limit
  // matches. O(limits), plus one payload parse when a payload-keyed limit matches. Only limits
  // with a dispatch bound (concurrency) are gates: a limit with only a key mode does not split
  // lanes.
  SetId Acquire(const LimitSubject& subject);
  // The key gates of a job with these fields: the (limit, key) of every matching limit with a
  // key mode, with that mode (core/flow/key_groups.h). Empty when keyed_modes() is 0.
  std::vector<KeyGate> KeyGates(const LimitSubject& subject) const;
  void Ref(SetId set);
  void Unref(SetId set);
  const std::vector<Gate>& Gates(SetId set) const { return sets_[set].gates; }
  std::size_t live_sets() const { return set_ids_.size(); }

  // Takes a slot of every gate of `set`, or of none: then returns the position (in Gates(set))
  // of the first gate that refused.
  std::optional<std::size_t> Admit(SetId set);
  // Counts a holder of every gate of `set` even past a cap (recovery and recount: the jobs are
  // active already; a lowered cap revokes nothing).
  void Hold(SetId set);
  // Gives back one slot of every gate of `set`; appends to `woken` the lanes that waited on a
  // gate that is now below its cap (each is forgotten here: it registers again if refused).
  // kInvalidState if a gate held no slot (a bug in the caller; the other gates are released).
  Status Release(SetId set, std::vector<LaneRef>& woken);
  // Registers `lane` as waiting on gate `pos` of `set` (which just refused it).
  void Wait(SetId set, std::size_t pos, const LaneRef& lane);
  // True when some gate of `set` is at or over its cap.
  bool Capped(SetId set) const;

  // Forgets every count and waiting lane (a limit changed): the caller then Holds the set of
  // every active job and re-enters every lane with ready jobs into the rotation.
  void BeginRecount();

  // Active count of `key` under limit `name` (0 when none).
  std::int64_t Count(const std::string& name, const std::string& key) const;
  // The keys of limit `name` with the most active jobs, at most `n`, largest first (ties by
  // key); `*keys` (when given) receives the number of keys with an active job. O(keys).
  std::vector<std::pair<std::string, std::int64_t>> TopCounts(const std::string& name,
                                                              std::size_t n,
                                                              std::size_t* keys) const;
  // Registrations of waiting lanes, for the footprint.
  std::size_t waiting_lanes() const;

 private:
  struct Limit {
    LimitSpec spec;
    std::optional<KeyedConcurrencyGate<std::string>> gate;          // when spec.concurrency
    std::unordered_map<std::string, std::vector<LaneRef>> waiting;  // by gate key
  };
  struct SetRec {
    std::vector<Gate> gates;
    std::uint64_t refs = 0;
    std::string encoded;  // its key in set_ids_
  };
  // A bound enforced at dispatch (a gate): today concurrency.
  static bool HasDispatchBound(const LimitSpec& spec);
  static bool Matches(const LimitSpec& spec, const LimitSubject& s);
  static std::string KeyOf(const LimitSpec& spec, const LimitSubject& s);

  std::vector<std::optional<Limit>> limits_;  // by slot; freed slots are empty and reused
  std::vector<std::uint32_t> free_limits_;
  std::map<std::string, std::uint32_t, std::less<>> by_name_;
  std::vector<SetRec> sets_;  // sets_[0] is the empty set
  std::vector<SetId> free_sets_;
  std::unordered_map<std::string, SetId> set_ids_;
  std::size_t keyed_modes_ = 0;
};

}  // namespace ym::flow
