// LimitSet: the configured limits, the gate set each job is subject to, and the live counts.
//
// A limit is a named object (LimitSpec): which jobs it applies to (`match`: queue, kind,
// namespace, each optional; all absent = every job), what it counts by (`key`: nothing, the
// job's concurrency_key, kind, namespace, queue, or a JSON object path into the payload) and its
// bounds, each optional but at least one: `concurrency` (the most active jobs per key), `rate`
// (starts per second/minute/hour/day with a burst, GCRA, core/flow/gcra.h) and `quota` (starts
// per calendar day/week/month in a time zone, core/flow/calendar_quota.h). A job whose payload
// lacks the path (or holds something other than a string or an integer there) is counted under
// the empty key. A limit may also carry `breaker` (a circuit breaker per key,
// core/flow/keyed_breaker.h: a key whose jobs keep failing stops starting jobs for an open
// interval, then lets one trial through). And it may carry one *key mode*, `singleton` or
// `debounce`, decided at enqueue by core/flow/key_groups.h (KeyGates lists a job's); a key mode is
// not a gate, and a limit with only a key mode needs no bound.
//
// For a job, the set of (limit, key) pairs it is subject to is its *gate set*. Gate sets are
// interned with reference counts so that equal sets share one id: the scheduler keys its lanes
// by (namespace, gate set id), so all ready jobs of one capped key sit in lanes that leave the
// rotation together, and admission asks only the gates of the lane's set. Set id 0 (kNoGates) is
// the empty set: with no limits configured every job has it and nothing here is called.
//
// Counting: each limit owns a KeyedConcurrencyGate (core/flow/concurrency_gate.h), a
// KeyedGcra and a CalendarQuota, each keyed by the gate key, as its members ask. Admit(set)
// passes every gate of the set or none: it first asks each (a cap below its count, a rate
// conforming now, a quota with room in its window) and only then counts the start in all of
// them, so a refusal changes nothing. A refusal says which gate and why, and when it may open:
// a cap opens only at a Release, which reports the lanes that waited on it (Wait registers
// them), so the scheduler puts them back into the rotation: nothing polls, no blocked job is
// scanned; a rate or a quota opens at a time, which the scheduler keeps in a timer; an open
// breaker opens at a time too (its next_open_at), and a half-open one whose trial is out at the
// trial's outcome (ReportBreakers reports the lanes that waited for it, WaitForTrial registers
// them). Breaker tickets (one per breaker gate admitted) are handed to the caller, which keeps
// them with the active job and reports them with its outcome when the job ends.
//
// Clocks: a rate is a duration, so it is fed the monotonic clock (`mono`); a quota is about
// dates, so it takes the wall clock (`wall`). Quota counts are durable: every admission that
// counts toward a quota reports it (QuotaUse) for the scheduler to write with the lease, and
// recovery restores them (RestoreQuota). Rates are not stored: a rate restarted without its
// state starts as if every key had just used its whole burst (Gcra::Saturated), which keeps
// the rate's window bound across the restart at the cost of at most one burst.
//
// Owned by the Scheduler; core thread only; pure (times are passed in).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/flow/calendar_quota.h"
#include "core/flow/concurrency_gate.h"
#include "core/flow/gcra.h"
#include "core/flow/key_groups.h"
#include "core/flow/keyed_breaker.h"

namespace ym::flow {

enum class LimitKeyKind : std::uint8_t {
  kNone,            // one counter for every matched job
  kConcurrencyKey,  // the job's concurrency_key (empty when it has none)
  kKind,
  kNamespace,
  kQueue,
  kPayload,  // payload.<field>[.<field>...]
};

// A calendar quota member: at most `count` starts per key in each `period` window, windows in
// the IANA zone `time_zone`.
struct LimitQuota {
  std::int64_t count = 1;  // 1..CalendarQuotaConfig::kMaxLimit
  CalendarPeriod period = CalendarPeriod::kDay;
  std::string time_zone = "UTC";
  bool operator==(const LimitQuota&) const = default;
};

struct LimitSpec {
  static constexpr std::size_t kMaxPathDepth = 16;

  std::string name;  // [A-Za-z0-9_.:-], 1..128 characters (IsValidName)
  std::optional<std::string> match_queue;
  std::optional<std::string> match_kind;
  std::optional<std::string> match_namespace;
  LimitKeyKind key = LimitKeyKind::kNone;
  std::vector<std::string> payload_path;  // kPayload: the fields, outermost first
  // The bounds. At least one must be set.
  std::optional<std::int64_t> concurrency;  // 1..ConcurrencyConfig::kMaxCap
  // count per period_ms with a burst. The burst must be at least count / period_ms rounded up:
  // the clock counts whole ms, so a smaller one could never reach the rate. Absent in the JSON,
  // the burst is that least value.
  std::optional<GcraConfig> rate;
  std::optional<LimitQuota> quota;
  // A circuit breaker per key. In the JSON every member is optional (BreakerConfig's defaults,
  // except: min_samples defaults to the window, open_max_ms to max(300000, open_base_ms)).
  std::optional<BreakerConfig> breaker;
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

  // The spec as a JSON object without its name, {"match":{...},"key":"...","concurrency":N,
  // "rate":{"count":N,"per":"second","burst":B},"quota":{"count":N,"per":"day","time_zone":Z},
  // "breaker":{"consecutive_failures":N,"window":W,"min_samples":M,"failure_percent":P,
  // "open_base_ms":B,"open_max_ms":X}}
  // (members absent when unset; "period_ms":N for a rate period that has no name): what the
  // store keeps and what the API shows.
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
  // With a quota: the current window (wall clock; both 0 before the first start counted) and
  // the keys with the most starts in it, as `active`.
  CalendarWindow quota_window;
  std::vector<std::pair<std::string, std::int64_t>> quota_used;
  std::size_t quota_keys = 0;
  // With a breaker: the keys with state (at most kTopKeys: open and half-open keys first, then
  // closed keys with failures recorded, each group by key; a closed key held only because a job
  // of it runs is not listed), how many there are, and how many are open or half-open. Times in
  // `breakers` are on the monotonic clock here; the scheduler converts opened_at_ms and
  // next_open_at_ms to the wall clock for the API.
  std::vector<std::pair<std::string, BreakerState>> breakers;
  std::size_t breaker_keys = 0;
  std::size_t breaker_tripped = 0;
  // ResetBreaker: the keys that were open or half-open.
  std::size_t reset_tripped = 0;
};

// "second", "minute", "hour" or "day" for those periods in ms; nullopt for others.
std::optional<std::string_view> RatePeriodName(std::int64_t period_ms);

// Why a gate refused a start.
enum class Block : std::uint8_t {
  kConcurrency,  // a cap at its count: opens at a Release
  kRate,         // opens at `until` on the monotonic clock
  kQuota,        // opens at `until` on the wall clock (the end of the window)
  // A breaker open (opens at `until`, its next_open_at on the monotonic clock) or half-open
  // with its trial out (`until` is kNever: opens at the trial's outcome).
  kCircuit,
};
// "concurrency_capped", "rate_limited", "quota_exhausted", "circuit_open": the blocked_reason
// of the API.
std::string_view BlockReason(Block why);

struct Refusal {
  std::size_t pos = 0;  // the gate, in Gates(set)
  Block why = Block::kConcurrency;
  // kRate: mono ms; kQuota: wall ms; kCircuit: mono ms, or kNever; kConcurrency: unused.
  std::int64_t until = 0;
};

// A start counted toward a quota, for the store: the key's count in the window starting at
// `window_start_ms` is now `used`. `new_window`: the first one written for this limit in that
// window, so stored counters of earlier windows can go.
struct QuotaUse {
  std::string limit;
  std::string key;
  std::int64_t window_start_ms = 0;
  std::int64_t used = 0;
  bool new_window = false;
};

// A breaker ticket held by an active job: which limit's breaker (its slot and the serial of the
// breaker there, so that a replaced or deleted limit's ticket counts nowhere), the key, and the
// ticket. Reported with the job's outcome by ReportBreakers.
struct BreakerHold {
  std::uint32_t limit = 0;
  std::uint64_t serial = 0;
  std::string key;
  BreakerTicket ticket;
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

  // How a rate starts in Put: as a key never seen (a new limit), or saturated at `mono_now`
  // (Gcra::Saturated: recovery, where the state before the restart is unknown).
  enum class RateStart : std::uint8_t { kFresh, kSaturated };
  // Creates or replaces the limit `spec.name` (kValidation when the spec is bad: nothing
  // changes). `*created` tells which. Gate sets already handed out keep naming the old
  // configuration until the caller rebinds every job (BeginRecount, Acquire, Hold).
  // Replacing keeps the state of an unchanged rate (a changed one starts saturated at
  // `mono_now`) and the quota counts while the period and time zone stay (a new count applies to
  // them, CalendarQuota::SetLimit); a quota with another period or zone starts empty.
  Status Put(const LimitSpec& spec, std::int64_t mono_now, bool* created,
             RateStart rate_start = RateStart::kFresh);
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

  // Counts a start in every gate of `set` (a slot of each cap, an admit of each rate, one of
  // each quota, a ticket of each breaker), or in none: then returns the first gate that refuses
  // and why. Starts counted toward quotas are appended to `*uses` (for the store), breaker
  // tickets to `*holds` (the caller reports them with the job's outcome, ReportBreakers). A
  // caller that passes no `holds` gives any breaker ticket back at once as abandoned.
  std::optional<Refusal> Admit(SetId set, std::int64_t mono, std::int64_t wall,
                               std::vector<QuotaUse>* uses,
                               std::vector<BreakerHold>* holds = nullptr);
  // The end of a job admitted with `holds` (mono: the monotonic clock). Appends to `woken` the
  // lanes that waited for a half-open trial that this ended (each forgotten here).
  void ReportBreakers(const std::vector<BreakerHold>& holds, BreakerOutcome outcome,
                      std::int64_t mono, std::vector<LaneRef>& woken);
  void ReportBreaker(const BreakerHold& hold, BreakerOutcome outcome, std::int64_t mono,
                     std::vector<LaneRef>& woken);
  // An operator's reset of the breaker of limit `name`, for `key` (every key when null):
  // closed, counters and interval growth cleared, tickets out ignored. Appends to `woken` the
  // lanes that waited for a trial of a reset key; `*tripped` gets how many keys were open or
  // half-open. kNotFound (no such limit), kValidation (the limit has no breaker).
  Status ResetBreaker(const std::string& name, const std::string* key, std::vector<LaneRef>& woken,
                      std::size_t* tripped);
  // Registers `lane` as waiting for the half-open trial of the breaker of gate `pos` of `set`
  // (which just refused it with until == kNever).
  void WaitForTrial(SetId set, std::size_t pos, const LaneRef& lane);
  // What Admit would refuse now, changing nothing (for reads).
  std::optional<Refusal> Blocked(SetId set, std::int64_t mono, std::int64_t wall) const;
  // Recovery: a stored quota count of limit `name` (ignored when the limit has no quota).
  void RestoreQuota(const std::string& name, const std::string& key, std::int64_t window_start_ms,
                    std::int64_t used, std::int64_t wall_now);
  // Counts a holder of every gate of `set` even past a cap (recovery and recount: the jobs are
  // active already; a lowered cap revokes nothing).
  void Hold(SetId set);
  // Gives back one slot of every gate of `set`; appends to `woken` the lanes that waited on a
  // gate that is now below its cap (each is forgotten here: it registers again if refused).
  // kInvalidState if a gate held no slot (a bug in the caller; the other gates are released).
  Status Release(SetId set, std::vector<LaneRef>& woken);
  // Registers `lane` as waiting on the cap of gate `pos` of `set` (which just refused it).
  void Wait(SetId set, std::size_t pos, const LaneRef& lane);

  // Forgets every active count and waiting lane (a limit changed): the caller then Holds the
  // set of every active job and re-enters every lane with ready jobs into the rotation. Rates
  // and quotas count starts, not active jobs: they are kept.
  void BeginRecount();

  // Active count of `key` under limit `name` (0 when none).
  std::int64_t Count(const std::string& name, const std::string& key) const;
  // The keys of limit `name` with the most active jobs, at most `n`, largest first (ties by
  // key); `*keys` (when given) receives the number of keys with an active job. O(keys).
  std::vector<std::pair<std::string, std::int64_t>> TopCounts(const std::string& name,
                                                              std::size_t n,
                                                              std::size_t* keys) const;
  // The quota window of limit `name` and its keys with the most starts, as TopCounts.
  CalendarWindow QuotaTop(const std::string& name, std::size_t n,
                          std::vector<std::pair<std::string, std::int64_t>>* top,
                          std::size_t* keys) const;
  // The breaker keys of limit `name`, as LimitInfo::breakers (mono times); `*keys` gets the
  // number of keys with state, `*tripped` the open or half-open ones. O(keys).
  std::vector<std::pair<std::string, BreakerState>> BreakerTop(const std::string& name,
                                                               std::size_t n, std::size_t* keys,
                                                               std::size_t* tripped) const;
  // Registrations of waiting lanes, for the footprint.
  std::size_t waiting_lanes() const;
  // Keys holding breaker state, and breaker tickets out, across all limits (footprint).
  std::size_t breaker_keys() const;
  std::size_t breaker_tickets_out() const;
  // Keys holding rate state, and quota counters, across all limits (footprint).
  std::size_t rate_keys() const;
  std::size_t quota_keys() const;

 private:
  struct Limit {
    LimitSpec spec;
    std::optional<KeyedConcurrencyGate<std::string>> gate;          // when spec.concurrency
    std::unordered_map<std::string, std::vector<LaneRef>> waiting;  // by gate key
    std::optional<KeyedGcra<std::string>> rate;                     // when spec.rate
    std::optional<CalendarQuota> quota;                             // when spec.quota
    std::int64_t quota_window_written = std::numeric_limits<std::int64_t>::min();
    std::optional<KeyedBreaker> breaker;  // when spec.breaker
    std::uint64_t breaker_serial = 0;     // of `breaker`, unique in this LimitSet
    // Lanes waiting for the half-open trial of a key, by gate key.
    std::unordered_map<std::string, std::vector<LaneRef>> trial_waiting;
  };
  static Result<Limit> Build(const LimitSpec& spec);
  // The first gate of `set` that refuses at (mono, wall). Quotas are asked with `peek` (no
  // window roll) from const reads.
  std::optional<Refusal> Check(SetId set, std::int64_t mono, std::int64_t wall) const;
  struct SetRec {
    std::vector<Gate> gates;
    std::uint64_t refs = 0;
    std::string encoded;  // its key in set_ids_
  };
  // A bound enforced at dispatch (a gate): concurrency, rate, quota, breaker.
  static bool HasDispatchBound(const LimitSpec& spec);
  static bool Matches(const LimitSpec& spec, const LimitSubject& s);
  static std::string KeyOf(const LimitSpec& spec, const LimitSubject& s);

  std::vector<std::optional<Limit>> limits_;  // by slot; freed slots are empty and reused
  std::vector<std::uint32_t> free_limits_;
  std::map<std::string, std::uint32_t, std::less<>> by_name_;
  std::vector<SetRec> sets_;  // sets_[0] is the empty set
  std::vector<SetId> free_sets_;
  std::unordered_map<std::string, SetId> set_ids_;
  // Acquire's scratch (reused, so that finding an existing set allocates nothing).
  std::vector<Gate> scratch_gates_;
  std::string scratch_encoded_;
  std::uint64_t next_breaker_serial_ = 1;
  std::size_t keyed_modes_ = 0;
};

}  // namespace ym::flow
