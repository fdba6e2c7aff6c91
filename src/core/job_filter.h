// JobFilter: which jobs a search (GET /v1/jobs) or a bulk operation applies to.
//
// One pure value shared by every reader of it: the HTTP layer parses it, core matches its live
// jobs against it (Matches(LiveJob, ...)), the store turns it into an indexed query and the
// broker matches stored records (Matches(JobRecord)). Every field is optional and they combine
// with AND; an empty filter matches every job.
//
// Times are epoch milliseconds, as everywhere in the API. Ranges are half-open:
// `*_after_ms` is inclusive (>=), `*_before_ms` exclusive (<), so consecutive windows
// [a, b), [b, c) never share a job. A finished-at bound only matches terminal jobs (a live job
// has not finished).
//
// Pure: no I/O, no clock; callable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/job.h"
#include "core/live_job.h"

namespace ym {

// Longest tag a filter (and an enqueue) accepts, in bytes.
inline constexpr std::size_t kMaxFilterTagBytes = 128;

struct JobFilter {
  std::string ns;     // namespace; empty: any
  std::string queue;  // empty: any
  std::string kind;   // empty: any
  // Any of these states; empty: every state. Kept sorted and without duplicates (Normalize).
  std::vector<JobState> states;
  std::string tag;                                 // jobs carrying this tag; empty: any
  std::optional<std::int64_t> created_after_ms;    // created_at_ms >= this
  std::optional<std::int64_t> created_before_ms;   // created_at_ms < this
  std::optional<std::int64_t> finished_after_ms;   // finished_at_ms >= this (terminal jobs only)
  std::optional<std::int64_t> finished_before_ms;  // finished_at_ms < this (terminal jobs only)

  bool operator==(const JobFilter&) const = default;

  // Sorts `states` and drops duplicates (so equal filters compare and scope equal).
  void Normalize();

  // kInvalidRequest naming the offending parameter (by its query-string name: "namespace",
  // "queue", "kind", "state", "tag", "created_after", ...): an invalid name, an empty or
  // over-long tag, a negative time.
  Status Validate() const;

  // True when nothing is filtered.
  bool empty() const;

  bool MatchesState(JobState s) const;
  // Whether any live (non-terminal) job, resp. any terminal job, can match: false when the
  // states exclude them, or (for live jobs) when a finished-at bound is given.
  bool MayMatchLive() const;
  bool MayMatchFinished() const;
  // The states a terminal job may be in to match (subset of succeeded, dead, cancelled, in
  // order); empty when MayMatchFinished() is false.
  std::vector<JobState> FinishedStates() const;

  // A stored or rendered record. `finished_at_ms` is read only for terminal records.
  bool Matches(const JobRecord& job) const;
  // The fields a match looks at, for callers holding a job in another form.
  bool MatchesFields(std::string_view ns, std::string_view queue, std::string_view kind,
                     JobState state, std::int64_t created_at_ms, std::int64_t finished_at_ms,
                     const std::vector<std::string>& tags) const;

  // Core's interned ids of the names this filter gives (see Scheduler::ResolveFilter): a name
  // the filter gives but core does not know matches no live job, which the resolver reports by
  // returning nothing instead of a LiveNames.
  struct LiveNames {
    std::optional<std::uint32_t> queue;  // index into core's queues
    std::optional<std::uint32_t> ns;
    std::optional<std::uint32_t> kind;
  };
  // A live job in core's compact form. A terminal job still in core (ending, its batch not yet
  // durable) finished at its updated_at_ms.
  bool Matches(const LiveJob& job, const LiveNames& names) const;

  // A canonical text naming every field (used in cursor scopes: a cursor from one filter is
  // refused by another). Equal filters after Normalize() give equal scopes; any difference in
  // any field gives a different scope.
  std::string Scope() const;
};

}  // namespace ym
