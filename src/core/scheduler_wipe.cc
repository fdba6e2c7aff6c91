// The Scheduler's part of a namespace wipe (core/namespace_wipe.h; docs/security.md, "Tenant
// data"): erasing live jobs from every structure core keeps, idempotency keys from the cache,
// and the namespace's schedules. The Broker drives the steps (server/broker.cc, WipeStep); the
// finished rows go by the bulk delete path (BulkDeleteStored).

#include <string>
#include <vector>

#include "core/live_job.h"
#include "core/scheduler.h"

namespace ym {

JobId Scheduler::EraseLive(const std::string& ns, JobId up_to, JobId after,
                           std::uint32_t max_erased, std::uint64_t budget, std::uint64_t* erased,
                           std::uint64_t* examined) {
  const std::optional<std::uint32_t> nsid = ns_.Find(ns);
  // No live job of the namespace in core (its name is interned while one is), or none at most
  // up_to after the cursor.
  if (!nsid || ns_live_.size() <= *nsid || ns_live_[*nsid] == 0 || after >= up_to ||
      max_erased == 0) {
    return 0;
  }
  // Collected first, erased after the scan: an erase changes the index under the scan.
  std::vector<JobId> found;
  bool past = false;  // met an id above up_to: nothing further is in range
  JobId resume = index_.Scan(after, budget, [&](LiveJob& j) {
    ++*examined;
    if (j.id > up_to) {
      past = true;
      return false;
    }
    // An ending job is no longer live: its row is finished by the time the caller deletes the
    // finished rows.
    if (j.ns == *nsid && !j.evicting) found.push_back(j.id);
    return found.size() < max_erased;
  });
  if (past) resume = 0;
  const std::int64_t now = clock_.NowMs();
  for (JobId id : found) {
    LiveJob* job = index_.Find(id);
    if (job == nullptr || job->evicting) continue;
    if (job->state == JobState::kActive && !job->cancel_requested) {
      // Its worker hears of it as of a cancel, through its watch, and stops working on it; the
      // id leaves the watch's pending set again when the job stops being active (LeaveState).
      job->cancel_requested = true;
      cancel_watches_.Requested(workers_.Name(job->worker), job->id);
    }
    LeaveState(*job);  // a pending job was never counted: a no-op then
    job->updated_at_ms = now;
    Finish(*job, JobState::kCancelled, "namespace wiped", "", /*erase=*/true);
    ++*erased;
  }
  if (!found.empty()) MarkErasing();
  // Gates, namespace caps and singleton keys the erased jobs held may let others start.
  WakeLanes();
  return resume;
}

void Scheduler::EraseIdempotencyKey(const std::string& ns, const std::string& key, JobId job) {
  const std::string cache_key = IdempotencyCache::KeyOf(ns, key);
  const IdempotencyCache::Entry* e = idempotency_.Find(cache_key, clock_.NowMs());
  // A cached key that names another job is newer than the one read: it stays (the store's
  // delete is conditional on the job too).
  if (e == nullptr || e->erased || e->job == job) idempotency_.Erase(cache_key, next_batch_seq_);
  open_.mutations.push_back(DeleteIdempotencyKey{ns, key, job});
  MarkErasing();
}

std::uint64_t Scheduler::EraseSchedules(const std::string& ns) {
  std::vector<std::string> ids;
  std::string after;
  bool more = true;
  while (more) {
    const std::vector<const cron::Schedule*> page = schedules_.Page(after, 1024, &more);
    if (page.empty()) break;
    for (const cron::Schedule* s : page) {
      if (s->spec.job.ns == ns) ids.push_back(s->spec.id);
    }
    after = page.back()->spec.id;
  }
  for (const std::string& id : ids) (void)DeleteSchedule(id);
  if (!ids.empty()) MarkErasing();  // a schedule's template holds a payload
  return ids.size();
}

}  // namespace ym
