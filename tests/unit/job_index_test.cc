// Unit tests of JobIndex (core/job_index.h): lookup, ordered scans across sparse and dense pages,
// and memory that follows the live jobs rather than the id range.

#include "core/job_index.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "common/rng.h"

namespace ym {
namespace {

std::unique_ptr<LiveJob> Job(JobId id) {
  auto j = std::make_unique<LiveJob>();
  j->id = id;
  return j;
}

std::vector<JobId> ScanAll(const JobIndex& index, std::uint64_t budget) {
  std::vector<JobId> seen;
  JobId after = 0;
  for (int rounds = 0; rounds < 1'000'000; ++rounds) {
    after = index.Scan(after, budget, [&](LiveJob& j) {
      seen.push_back(j.id);
      return true;
    });
    if (after == 0) break;
  }
  return seen;
}

TEST(JobIndexTest, FindInsertEraseAgreeWithAMap) {
  JobIndex index;
  std::map<JobId, bool> model;
  Rng rng(7);
  // Clusters and scatter so pages go sparse -> dense -> sparse.
  for (int step = 0; step < 200'000; ++step) {
    const JobId id =
        1 + (rng.Uniform(2) == 0 ? rng.Uniform(3 * JobIndex::kPageSize) : rng.Uniform(1'000'000));
    if (rng.Uniform(3) != 0) {
      if (!model.count(id)) {
        index.Insert(Job(id));
        model[id] = true;
      }
    } else {
      index.Erase(id);
      model.erase(id);
    }
  }
  ASSERT_EQ(index.size(), model.size());
  for (JobId id = 1; id < 3 * JobIndex::kPageSize + 10; ++id) {
    LiveJob* j = index.Find(id);
    ASSERT_EQ(j != nullptr, model.count(id) == 1) << id;
    if (j) {
      EXPECT_EQ(j->id, id);
    }
  }
  EXPECT_GT(index.dense_pages(), 0u);  // the clustered range became dense
  std::vector<JobId> expected;
  for (const auto& [id, _] : model) expected.push_back(id);
  EXPECT_EQ(ScanAll(index, 1), expected);
  EXPECT_EQ(ScanAll(index, 97), expected);
  EXPECT_EQ(ScanAll(index, 1'000'000), expected);
  for (const auto& [id, _] : model) index.Erase(id);
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.pages(), 0u);
  EXPECT_EQ(index.dense_pages(), 0u);
}

TEST(JobIndexTest, ScanStopsWhereTheCallbackSays) {
  JobIndex index;
  for (JobId id : {5, 9, 4100, 9000}) index.Insert(Job(id));
  std::vector<JobId> seen;
  const JobId resume = index.Scan(5, 100, [&](LiveJob& j) {
    seen.push_back(j.id);
    return j.id < 4100;
  });
  EXPECT_EQ(seen, (std::vector<JobId>{9, 4100}));
  EXPECT_EQ(resume, 4100u);
}

// The regression this structure exists for: one long-lived job per 4096 ids pinned a 32 KiB page
// each. Now each costs a map node and a 16-byte entry.
TEST(JobIndexTest, ScatteredJobsCostPerJobNotPerIdRange) {
  JobIndex index;
  constexpr int kJobs = 1000;
  for (int i = 0; i < kJobs; ++i) index.Insert(Job(1 + JobId(i) * JobIndex::kPageSize));
  EXPECT_EQ(index.pages(), std::size_t(kJobs));
  EXPECT_EQ(index.dense_pages(), 0u);
  EXPECT_LE(index.MemoryBytes() / kJobs, 160u);  // was 32 KiB + a node per job

  // A full page goes dense and costs at most 64 bytes per job, and gives the array back once
  // it empties below kDenseMin.
  JobIndex dense;
  for (JobId id = 0; id < JobIndex::kPageSize; ++id) dense.Insert(Job(id));
  EXPECT_EQ(dense.dense_pages(), 1u);
  EXPECT_LE(dense.MemoryBytes(), JobIndex::kPageSize * 8 + 256);
  for (JobId id = 0; id < JobIndex::kPageSize - JobIndex::kDenseMin + 1; ++id) dense.Erase(id);
  EXPECT_EQ(dense.dense_pages(), 0u);
  EXPECT_EQ(dense.size(), JobIndex::kDenseMin - 1);
  EXPECT_LE(dense.MemoryBytes(), (JobIndex::kDenseMin - 1) * 16 + 256);
  for (JobId id = JobIndex::kPageSize - JobIndex::kDenseMin + 1; id < JobIndex::kPageSize; ++id) {
    ASSERT_NE(dense.Find(id), nullptr) << id;
  }
}

}  // namespace
}  // namespace ym
