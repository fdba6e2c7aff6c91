// Namespace wipe: erasing a tenant's data (POST /v1/namespaces/{ns}:wipe; docs/security.md,
// "Tenant data"). This file holds the pure part: the request and its checks, the outcome, and
// the order of the phases. The scheduler erases (Scheduler::EraseLive, BulkDeleteStored,
// EraseIdempotencyKey, EraseSchedules) and the broker drives the steps (Broker::WipeNamespace).
//
// What one request erases, in this order, until `limit` items are erased (each phase's writes
// durable before the next step):
//
//   phase      what                                                 how
//   live       the namespace's live jobs (scheduled, ready, active) removed from every structure of
//              with id <= up_to_id, after after_id                  core; row and key deleted
//   finished   its finished jobs (succeeded, dead, cancelled)       the bulk delete path
//              with id <= up_to_id
//   keys       its idempotency keys naming a job <= up_to_id        read, then deleted per key
//   schedules  the schedules whose job template is of the namespace deleted with their history
//
// The mark. The first request takes up_to_id = the newest job id at that moment (the reply
// says it); the client passes it back, with after_id, on the next requests, so a wipe ends even
// while producers keep enqueueing into the namespace: what they create later is not erased (a
// new wipe erases it). A request is re-runnable: each phase erases what is there now, so a
// request retried after a lost reply, a crash or a restart erases what is left and counts only
// what it erased itself.
//
// Pure: no I/O, no clock; callable from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "core/job.h"

namespace ym {

// Largest and default `limit` of one request (items erased: jobs, keys and schedules together).
inline constexpr std::uint32_t kMaxWipeLimit = 10'000;
inline constexpr std::uint32_t kDefaultWipeLimit = 1'000;

struct WipeRequest {
  std::string ns;
  // The mark (0: the newest job id now) and the live phase's cursor.
  JobId up_to_id = 0;
  JobId after_id = 0;
  std::uint32_t limit = kDefaultWipeLimit;
};

// kValidation naming the field: `confirm` must repeat the namespace (a wipe cannot be sent to
// the wrong namespace by a typo in one place), a limit of 1..kMaxWipeLimit, an after_id not past
// up_to_id, and an after_id only with the up_to_id it belongs to.
Status CheckWipeRequest(const WipeRequest& request, const std::string& confirm);

struct WipeOutcome {
  JobId up_to_id = 0;  // the mark this request used
  JobId after_id = 0;  // the live phase's cursor to pass back (up_to_id once it is complete)
  std::uint64_t live_jobs = 0;
  std::uint64_t finished_jobs = 0;
  std::uint64_t idempotency_keys = 0;
  std::uint64_t schedules = 0;
  // Finished jobs left alone because they changed while being erased (replayed meanwhile, say);
  // a later request erases them if they are still of the namespace and at most up_to_id.
  std::uint64_t skipped = 0;
  bool done = false;  // every phase found nothing more to erase

  std::uint64_t erased() const { return live_jobs + finished_jobs + idempotency_keys + schedules; }
};

}  // namespace ym
