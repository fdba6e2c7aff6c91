// Bulk operations: cancel, replay or delete every job a JobFilter selects (POST /v1/jobs:cancel,
// :replay, :delete), one bounded page per request, resumed with a cursor.
//
// This file holds the pure part: which states each action applies to, how a request's filter is
// narrowed to them (and refused when nothing could ever match), and the request and outcome
// values. The scheduler decides each job (Scheduler::CancelMatching, BulkReplayStored,
// BulkDeleteStored) and the broker drives the pages (Broker::Bulk).
//
//   action   applies to (the filter's states are narrowed to these)   the decision, per job
//   cancel   scheduled, ready, active                                  as POST /v1/jobs/{id}:cancel
//   replay   dead, cancelled                                           as POST /v1/jobs/{id}:replay
//   delete   succeeded, dead, cancelled (never a live job)             the row goes, its
//                                                                      idempotency key stays
//
// Every job is decided on the core thread against its state at that moment, so a request that
// is retried (the same cursor, after a lost reply) skips what the first one did and counts only
// what it does itself.
//
// Pure: no I/O, no clock; callable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/job.h"
#include "core/job_filter.h"

namespace ym {

enum class BulkAction : std::uint8_t { kCancel, kReplay, kDelete };

// "cancel", "replay", "delete".
std::string_view BulkActionName(BulkAction action);
// The past tense the reply counts in: "cancelled", "replayed", "deleted".
std::string_view BulkDoneName(BulkAction action);

// The states `action` applies to, ascending.
std::vector<JobState> BulkStates(BulkAction action);
bool BulkAppliesTo(BulkAction action, JobState state);

// Narrows `filter`'s states to those `action` applies to (every one of them when the filter
// names none). kValidation naming the field when no job could match: a state the action does
// not apply to (`cancel` with `state: succeeded`), or a finished-at bound on a cancel (live jobs
// have not finished). The result is Normalize()d.
Result<JobFilter> NarrowBulkFilter(BulkAction action, JobFilter filter);

// Largest and default `limit` of one request, and how many jobs one request may examine (live
// jobs scanned in core, or stored candidates) before it answers with a cursor.
inline constexpr std::uint32_t kMaxBulkLimit = 10'000;
inline constexpr std::uint32_t kDefaultBulkLimit = 1'000;
inline constexpr std::uint32_t kBulkExamineBudget = 50'000;

struct BulkRequest {
  BulkAction action = BulkAction::kCancel;
  JobFilter filter;  // already narrowed (NarrowBulkFilter)
  JobId after_id = 0;
  std::uint32_t limit = kDefaultBulkLimit;
  bool dry_run = false;  // count the matches, change nothing
  // Only jobs with id <= max_id (0: no bound); a namespace wipe's mark (core/namespace_wipe.h).
  JobId max_id = 0;
  // A wipe's delete: its batches overwrite what they delete (Batch::erase).
  bool erase = false;
};

struct BulkOutcome {
  // Jobs the filter selected, in a state the action applies to when they were examined.
  std::uint64_t matched = 0;
  // Of those, the ones this request cancelled (an active job: flagged), replayed or deleted.
  std::uint64_t applied = 0;
  // Cancel only: active jobs whose cancel this request requested (counted in `applied` too).
  std::uint64_t cancel_requested = 0;
  // Matched, but not acted on: the job's state at the decision did not allow it (already
  // cancelled, replayed or deleted, e.g. by an earlier try of the same request; changed
  // meanwhile; a cancel already requested). matched == applied + skipped unless dry_run.
  std::uint64_t skipped = 0;
  // Resume after this id (the next request's cursor; 0 resumes from the start); nullopt when
  // nothing more can match.
  std::optional<JobId> next_after_id;
};

}  // namespace ym
