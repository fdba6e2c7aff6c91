// Namespace wipe (core/namespace_wipe.h): the request's checks, and the scheduler's part. Every
// live job of the namespace leaves every structure core keeps (its lane or timer, its gates, its
// worker's cancel watch, its end waits, the namespace's counts) with its row and key deleted in
// the batch and nothing kept; the idempotency cache's tombstone keeps a store lookup in flight
// from reviving an erased key; another namespace is untouched. ManualClock and a seeded Rng.

#include "core/namespace_wipe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/rng.h"
#include "core/cron/schedule_book.h"
#include "core/idempotency_cache.h"
#include "core/scheduler.h"
#include "core/types.h"
#include "net/codec_schedules.h"
#include "store/batch.h"

namespace ym {
namespace {

constexpr std::int64_t kStart = 1'700'000'000'000;

TEST(WipeRequest, ConfirmMustRepeatTheNamespace) {
  WipeRequest r;
  r.ns = "acme";
  EXPECT_TRUE(CheckWipeRequest(r, "acme").ok());
  const Status wrong = CheckWipeRequest(r, "acme2");
  EXPECT_EQ(wrong.code(), Code::kValidation);
  EXPECT_NE(wrong.message().find("confirm"), std::string::npos);
  EXPECT_EQ(CheckWipeRequest(r, "").code(), Code::kValidation);
}

TEST(WipeRequest, LimitAndCursorBounds) {
  WipeRequest r;
  r.ns = "n";
  r.limit = 0;
  EXPECT_EQ(CheckWipeRequest(r, "n").code(), Code::kValidation);
  r.limit = kMaxWipeLimit + 1;
  EXPECT_EQ(CheckWipeRequest(r, "n").code(), Code::kValidation);
  r.limit = kMaxWipeLimit;
  EXPECT_TRUE(CheckWipeRequest(r, "n").ok());
  r.after_id = 5;  // a live cursor without its mark
  EXPECT_EQ(CheckWipeRequest(r, "n").code(), Code::kValidation);
  r.up_to_id = 4;  // past the mark
  EXPECT_EQ(CheckWipeRequest(r, "n").code(), Code::kValidation);
  r.up_to_id = 5;
  EXPECT_TRUE(CheckWipeRequest(r, "n").ok());
}

TEST(WipeIdempotencyCache, ATombstoneAnswersUntilItsBatchIsEvictableAndLosesNothing) {
  IdempotencyCache cache(2);
  const std::string k = IdempotencyCache::KeyOf("a", "k");
  IdempotencyCache::Entry e;
  e.job = 7;
  e.expires_at_ms = 1'000'000;
  cache.Put(k, e, 0);
  cache.Erase(k, /*seq=*/3);
  const IdempotencyCache::Entry* found = cache.Find(k, 10);
  ASSERT_NE(found, nullptr);
  EXPECT_TRUE(found->erased);
  // SetFinal of the erased job changes nothing.
  cache.SetFinal(k, 7, JobState::kSucceeded);
  EXPECT_TRUE(cache.Find(k, 10)->erased);
  cache.SetEvictableUpTo(2, 10);
  EXPECT_NE(cache.Find(k, 10), nullptr);  // its batch is not yet seen by every read
  cache.SetEvictableUpTo(3, 10);
  EXPECT_EQ(cache.Find(k, 10), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_TRUE(cache.Complete(10));
  // A tombstone pushed out by the LRU bound does not make misses need the store (its key is
  // absent from the store: nothing is lost), unlike a key's entry.
  cache.SetEvictableUpTo(8, 10);
  cache.Erase(IdempotencyCache::KeyOf("a", "x"), 5);
  cache.Put(IdempotencyCache::KeyOf("a", "z"), e, 10);
  cache.Put(IdempotencyCache::KeyOf("a", "w"), e, 10);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.Find(IdempotencyCache::KeyOf("a", "x"), 10), nullptr);
  EXPECT_TRUE(cache.Complete(10));
  // A Put after the erase (a new job took the key) is not dropped with the tombstone's batch.
  cache.Erase(k, 11);
  e.job = 8;
  cache.Put(k, e, 10);
  cache.SetEvictableUpTo(11, 10);
  ASSERT_NE(cache.Find(k, 10), nullptr);
  EXPECT_EQ(cache.Find(k, 10)->job, 8u);
  EXPECT_FALSE(cache.Find(k, 10)->erased);
}

class NamespaceWipeTest : public ::testing::Test {
 protected:
  NamespaceWipeTest() : clock_(kStart), rng_(11) {
    sched_ = std::make_unique<Scheduler>(clock_, rng_, SchedulerOptions{});
  }

  Batch Commit() {
    Batch b = sched_->SealBatch();
    sched_->OnCommitted(b.seq);
    return b;
  }

  static EnqueueSpec Spec(const std::string& ns, const std::string& key = "") {
    EnqueueSpec s;
    s.ns = ns;
    s.queue = "q";
    s.kind = "k";
    s.payload = "{}";
    s.idempotency_key = key;
    return s;
  }

  JobId Enqueue(EnqueueSpec s, bool commit = true) {
    auto r = sched_->Enqueue(std::move(s));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (commit) Commit();
    return r.ok() ? r->id : 0;
  }

  std::vector<LeasedJob> Lease(std::uint32_t max, const std::string& worker = "w") {
    LeaseRequest req;
    req.queues = {"q"};
    req.max = max;
    req.worker_id = worker;
    auto got = sched_->Lease(req);
    Commit();
    return got;
  }

  // Erases namespace `ns` up to the newest job, in one call.
  std::uint64_t EraseAll(const std::string& ns) {
    std::uint64_t erased = 0, examined = 0;
    EXPECT_EQ(sched_->EraseLive(ns, sched_->last_issued_id(), 0, 1000, 100'000, &erased, &examined),
              0u);
    return erased;
  }

  ManualClock clock_;
  Rng rng_;
  std::unique_ptr<Scheduler> sched_;
};

TEST_F(NamespaceWipeTest, EveryLiveStateLeavesCoreAndOnlyDeletesAreWritten) {
  const JobId running = Enqueue(Spec("a", "key-1"));
  EnqueueSpec later = Spec("a");
  later.delay_ms = 3'600'000;
  const JobId scheduled = Enqueue(later);
  std::vector<LeasedJob> leased = Lease(1);  // the oldest: `running`
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_EQ(leased[0].id, running);
  const std::uint64_t token = leased[0].lease.token;
  const JobId ready = Enqueue(Spec("a"));
  const JobId other = Enqueue(Spec("b"));
  const JobId pending = Enqueue(Spec("a"), /*commit=*/false);  // its insert is in the open batch

  std::vector<std::vector<JobId>> told;
  ASSERT_TRUE(sched_
                  ->AddCancelWatch("w", {}, clock_.MonoMs() + 60'000,
                                   [&](std::vector<JobId> ids) { told.push_back(std::move(ids)); })
                  .ok());
  std::vector<std::optional<JobView>> ended;
  ASSERT_TRUE(sched_
                  ->AddEndWait(ready, clock_.MonoMs() + 60'000,
                               [&](std::optional<JobView> v) { ended.push_back(std::move(v)); })
                  .ok());

  EXPECT_EQ(EraseAll("a"), 4u);
  // The worker running the active one was told to stop, as of a cancel.
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0], std::vector<JobId>{running});
  // The end wait is answered: cancelled, with the reason.
  ASSERT_EQ(ended.size(), 1u);
  ASSERT_TRUE(ended[0].has_value());
  EXPECT_EQ(ended[0]->job.state, JobState::kCancelled);
  EXPECT_EQ(ended[0]->job.dead_reason, "namespace wiped");

  const Batch b = Commit();
  std::vector<JobId> deleted;
  bool key_deleted = false;
  for (const Mutation& m : b.mutations) {
    if (const auto* d = std::get_if<DeleteJob>(&m)) deleted.push_back(d->id);
    if (const auto* k = std::get_if<DeleteIdempotencyKey>(&m)) {
      key_deleted = k->ns == "a" && k->key == "key-1" && k->job_id == running;
    }
    // Nothing of an erased job is kept: no final row, no finished key.
    if (const auto* u = std::get_if<UpdateJob>(&m)) ADD_FAILURE() << "update of " << u->job.id;
    EXPECT_FALSE(std::holds_alternative<FinishIdempotencyKey>(m));
  }
  std::sort(deleted.begin(), deleted.end());
  EXPECT_EQ(deleted, (std::vector<JobId>{running, scheduled, ready, pending}));
  EXPECT_TRUE(key_deleted);

  for (JobId id : {running, scheduled, ready, pending}) EXPECT_FALSE(sched_->Get(id).has_value());
  EXPECT_EQ(sched_->LiveJobsIn("a"), 0u);
  EXPECT_EQ(sched_->LiveJobsIn("b"), 1u);
  EXPECT_EQ(sched_->live_jobs(), 1u);
  EXPECT_EQ(sched_->active_jobs(), 0u);
  // Its worker's lease is gone: heartbeat and ack answer stale.
  EXPECT_EQ(sched_->Heartbeat(running, token, 30'000).status().code(), Code::kStaleLease);
  EXPECT_EQ(sched_->Ack(running, token, "{}").status().code(), Code::kStaleLease);
  EXPECT_TRUE(sched_->CancelsRequested("w").empty());
  // Nothing of `a` is left in the structures; b's job is the one to lease.
  const SchedulerFootprint f = sched_->Footprint();
  EXPECT_EQ(f.scheduled_jobs, 0u);
  EXPECT_EQ(f.ready_jobs, 1u);
  EXPECT_EQ(f.cancels_pending, 0u);
  leased = Lease(10);
  ASSERT_EQ(leased.size(), 1u);
  EXPECT_EQ(leased[0].id, other);
}

TEST_F(NamespaceWipeTest, TheErasedKeyIsFreeEvenWhenALookupReadItBeforeItsDelete) {
  const JobId first = Enqueue(Spec("a", "order-9"));
  EXPECT_EQ(EraseAll("a"), 1u);
  // A lookup that read the row before the delete was durable says it exists: the tombstone
  // wins, and the enqueue creates a new job.
  IdempotencyLookup stale;
  stale.ticket = sched_->BeginIdempotencyLookup();
  stale.job_id = first;
  stale.expires_at_ms = clock_.NowMs() + 3'600'000;
  auto r = sched_->Enqueue(Spec("a", "order-9"), &stale);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->duplicate);
  EXPECT_NE(r->id, first);
  Commit();
  // The key now names the new job: a duplicate answers it.
  auto dup = sched_->Enqueue(Spec("a", "order-9"));
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->id, r->id);
}

TEST_F(NamespaceWipeTest, AnActiveJobsGateIsReleasedForTheOtherNamespace) {
  flow::LimitSpec spec;
  spec.name = "one";
  spec.concurrency = 1;
  ASSERT_TRUE(sched_->PutLimit(spec).ok());
  Commit();
  const JobId a = Enqueue(Spec("a"));
  const JobId b = Enqueue(Spec("b"));
  std::vector<LeasedJob> got = Lease(10);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].id, a);
  EXPECT_TRUE(Lease(10).empty());  // the cap holds b back
  EXPECT_EQ(EraseAll("a"), 1u);
  Commit();
  got = Lease(10);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, b);
}

TEST_F(NamespaceWipeTest, PagesResumeAtTheCursorAndStopAtTheMark) {
  std::vector<JobId> a;
  for (int i = 0; i < 5; ++i) {
    a.push_back(Enqueue(Spec("a")));
    Enqueue(Spec("b"));
  }
  const JobId mark = sched_->last_issued_id();
  const JobId after_mark = Enqueue(Spec("a"));  // created after the wipe began: not erased
  std::uint64_t erased = 0, examined = 0;
  JobId cursor = sched_->EraseLive("a", mark, 0, 2, 100'000, &erased, &examined);
  EXPECT_EQ(erased, 2u);
  EXPECT_EQ(cursor, a[1]);
  cursor = sched_->EraseLive("a", mark, cursor, 2, 100'000, &erased, &examined);
  EXPECT_EQ(erased, 4u);
  EXPECT_EQ(cursor, a[3]);
  cursor = sched_->EraseLive("a", mark, cursor, 2, 100'000, &erased, &examined);
  EXPECT_EQ(erased, 5u);
  EXPECT_EQ(cursor, 0u);
  Commit();
  EXPECT_TRUE(sched_->Get(after_mark).has_value());
  EXPECT_EQ(sched_->LiveJobsIn("a"), 1u);
  EXPECT_EQ(sched_->LiveJobsIn("b"), 5u);
  // A small examine budget (index slots) stops early with a cursor, before the job it did not
  // reach.
  erased = examined = 0;
  cursor = sched_->EraseLive("a", sched_->last_issued_id(), 0, 100, 3, &erased, &examined);
  EXPECT_LE(examined, 3u);
  EXPECT_EQ(erased, 0u);
  EXPECT_NE(cursor, 0u);
  EXPECT_LT(cursor, after_mark);
  // An unknown namespace has nothing to erase.
  EXPECT_EQ(sched_->EraseLive("zz", mark, 0, 100, 100, &erased, &examined), 0u);
}

TEST_F(NamespaceWipeTest, SchedulesOfTheNamespaceGoOthersStay) {
  auto create = [&](const std::string& id, const std::string& ns) {
    auto spec = net::ParseScheduleCreate(R"({"id":")" + id +
                                             R"(","cron":"0 * * * *","job":{"namespace":")" + ns +
                                             R"(","queue":"q","kind":"k"}})",
                                         net::CodecLimits{});
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    auto r = sched_->CreateSchedule(std::move(spec->spec), false);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  };
  create("a1", "a");
  create("b1", "b");
  create("a2", "a");
  Commit();
  EXPECT_EQ(sched_->EraseSchedules("a"), 2u);
  const Batch b = Commit();
  std::vector<std::string> gone;
  for (const Mutation& m : b.mutations) {
    if (const auto* d = std::get_if<DeleteSchedule>(&m)) gone.push_back(d->id);
  }
  EXPECT_EQ(gone, (std::vector<std::string>{"a1", "a2"}));
  EXPECT_FALSE(sched_->GetSchedule("a1", 0).has_value());
  EXPECT_TRUE(sched_->GetSchedule("b1", 0).has_value());
  EXPECT_EQ(sched_->EraseSchedules("a"), 0u);
}

}  // namespace
}  // namespace ym
