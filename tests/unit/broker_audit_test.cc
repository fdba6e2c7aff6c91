// Audit entries through the Broker (server/audit_note.h): an audited action's entry commits in
// the same batch as the action's own mutations, only when the action succeeds, and never for an
// unaudited call; Broker::RecordAudit appends one on its own, answered once durable.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "server/broker.h"
#include "store/memory_store.h"

namespace ym {
namespace {

using namespace std::chrono_literals;

// Forwards to a MemoryStore and keeps, for each successful commit, whether it held an audit
// entry and which jobs it updated.
class RecordingStore final : public Store {
 public:
  struct Seen {
    int audit = 0;
    std::uint32_t counted = 0;  // Batch::audit_entries
    std::vector<std::pair<JobId, JobState>> updates;
  };
  Status Commit(const Batch& b) override {
    Status s = inner_.Commit(b);
    if (!s.ok()) return s;
    Seen seen;
    seen.counted = b.audit_entries;
    for (const Mutation& m : b.mutations) {
      if (std::holds_alternative<AppendAudit>(m)) ++seen.audit;
      if (const auto* u = std::get_if<UpdateJob>(&m))
        seen.updates.emplace_back(u->job.id, u->job.state);
    }
    std::lock_guard lk(mu_);
    seen_.push_back(std::move(seen));
    return s;
  }
  std::vector<Seen> seen() {
    std::lock_guard lk(mu_);
    return seen_;
  }
  std::vector<PurgeOutcome> TakePurgeOutcomes() override { return inner_.TakePurgeOutcomes(); }
  Status Recover(std::int64_t now_ms, RecoveryVisitor& v) override {
    return inner_.Recover(now_ms, v);
  }
  Result<std::optional<JobRecord>> GetJob(JobId id) override { return inner_.GetJob(id); }
  Result<std::optional<IdempotencyKeyRecord>> GetIdempotencyKey(const std::string& ns,
                                                                const std::string& key,
                                                                std::int64_t now_ms) override {
    return inner_.GetIdempotencyKey(ns, key, now_ms);
  }
  Result<std::vector<IdempotencyKeyRecord>> NamespaceKeys(const std::string& ns,
                                                          const std::string& after_key,
                                                          JobId max_job_id,
                                                          std::uint32_t limit) override {
    return inner_.NamespaceKeys(ns, after_key, max_job_id, limit);
  }

  Result<std::vector<JobRecord>> ListJobs(const StoreListQuery& q) override {
    return inner_.ListJobs(q);
  }
  Result<FinishedPage> SearchFinished(const FinishedSearch& q) override {
    return inner_.SearchFinished(q);
  }
  Result<std::vector<FinishedCount>> CountFinished(const FinishedCountQuery& q) override {
    return inner_.CountFinished(q);
  }
  Status Backup(const std::string& path) override { return inner_.Backup(path); }
  StoreStats Stats() override { return inner_.Stats(); }
  Result<std::vector<audit::Entry>> ReadAudit(std::uint64_t after, std::uint32_t limit) override {
    return inner_.ReadAudit(after, limit);
  }
  audit::Head AuditHead() override { return inner_.AuditHead(); }

 private:
  MemoryStore inner_;
  std::mutex mu_;
  std::vector<Seen> seen_;  // GUARDED_BY(mu_)
};

template <typename T>
T Await(std::future<T>& f) {
  EXPECT_EQ(f.wait_for(30s), std::future_status::ready) << "no answer within 30 s";
  return f.get();
}

AuditNote Note(const std::string& action, const std::string& target) {
  AuditNote n;
  n.enabled = true;
  n.actor = "ops";
  n.remote = "10.0.0.1";
  n.request_id = "req-1";
  n.action = action;
  n.target = target;
  return n;
}

class BrokerAuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BrokerOptions o;
    o.seed = 7;
    o.on_audit_committed = [this](const audit::Head& h) {
      std::lock_guard lk(mu_);
      heads_.push_back(h.seq);
    };
    broker_ = std::make_unique<Broker>(store_, clock_, o);
    ASSERT_TRUE(broker_->Start().ok());
  }
  void TearDown() override { broker_->Stop(); }

  JobId Enqueue() {
    EnqueueSpec s;
    s.queue = "q";
    s.kind = "k";
    s.payload = R"({"secret":"x"})";
    std::promise<std::vector<Result<EnqueueOutcome>>> p;
    auto f = p.get_future();
    broker_->Enqueue({s}, [&](auto r) { p.set_value(std::move(r)); });
    auto r = Await(f);
    EXPECT_TRUE(r[0].ok());
    return r[0].ok() ? r[0]->id : 0;
  }
  Result<JobView> Cancel(JobId id, AuditNote note) {
    std::promise<Result<JobView>> p;
    auto f = p.get_future();
    broker_->Cancel(
        id, [&](Result<JobView> r) { p.set_value(std::move(r)); }, std::move(note));
    return Await(f);
  }
  std::vector<audit::Entry> Entries() {
    std::promise<Result<std::vector<audit::Entry>>> p;
    auto f = p.get_future();
    broker_->ReadAudit(0, 100, [&](auto r) { p.set_value(std::move(r)); });
    auto r = Await(f);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : std::vector<audit::Entry>{};
  }

  RecordingStore store_;
  SystemClock clock_;
  std::unique_ptr<Broker> broker_;
  std::mutex mu_;
  std::vector<std::uint64_t> heads_;  // GUARDED_BY(mu_)
};

TEST_F(BrokerAuditTest, AnAuditedCancelCommitsItsEntryWithTheCancel) {
  const JobId id = Enqueue();
  ASSERT_TRUE(Cancel(id, Note("job.cancel", "job " + FormatJobId(id))).ok());
  int batches_with_entry = 0;
  for (const auto& s : store_.seen()) {
    if (s.audit == 0) {
      EXPECT_EQ(s.counted, 0u);  // the enqueue's batch: nothing for the writer to look at
      continue;
    }
    ++batches_with_entry;
    EXPECT_EQ(s.counted, 1u);
    ASSERT_EQ(s.updates.size(), 1u);
    EXPECT_EQ(s.updates[0].first, id);
    EXPECT_EQ(s.updates[0].second, JobState::kCancelled);
  }
  EXPECT_EQ(batches_with_entry, 1);
  auto got = Entries();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].actor, "ops");
  EXPECT_EQ(got[0].action, "job.cancel");
  EXPECT_EQ(got[0].remote, "10.0.0.1");
  EXPECT_EQ(got[0].request_id, "req-1");
  EXPECT_GT(got[0].at_ms, 0);
  EXPECT_EQ(broker_->AuditHead().seq, 1u);
  std::lock_guard lk(mu_);
  EXPECT_EQ(heads_, std::vector<std::uint64_t>{1});
}

TEST_F(BrokerAuditTest, RefusedOrUnauditedActionsRecordNothing) {
  EXPECT_FALSE(Cancel(999'999, Note("job.cancel", "job x")).ok());  // not found
  const JobId id = Enqueue();
  ASSERT_TRUE(Cancel(id, AuditNote{}).ok());  // no note: an internal call
  EXPECT_TRUE(Entries().empty());
  for (const auto& s : store_.seen()) EXPECT_EQ(s.audit, 0);
  std::lock_guard lk(mu_);
  EXPECT_TRUE(heads_.empty());
}

TEST_F(BrokerAuditTest, RecordAuditAnswersOnceDurable) {
  for (std::uint64_t want : {1u, 2u}) {
    std::promise<Result<std::uint64_t>> p;
    auto f = p.get_future();
    AuditNote n = Note("token.create", "token ci");
    n.enabled = false;  // RecordAudit records whatever the flag says
    broker_->RecordAudit(n, [&](auto r) { p.set_value(std::move(r)); });
    auto r = Await(f);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, want);
  }
  auto got = Entries();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].action, "token.create");
  EXPECT_TRUE(audit::Verify(got).ok());
}

}  // namespace
}  // namespace ym
