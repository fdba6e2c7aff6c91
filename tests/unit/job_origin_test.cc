// core/job_origin.h: the packed origin of a live job.
#include "core/job_origin.h"

#include <gtest/gtest.h>

#include <string>

namespace ym {
namespace {

constexpr char kTp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(JobOriginTest, EmptyHoldsNothing) {
  JobOrigin o("", TraceContext{});
  EXPECT_TRUE(o.empty());
  EXPECT_EQ(o.HeapBytes(), 0u);
  EXPECT_EQ(o.request_id(), "");
  EXPECT_TRUE(o.trace().empty());
  EXPECT_TRUE(JobOrigin().empty());
}

TEST(JobOriginTest, KeepsEachPartWhateverIsMissing) {
  const std::string rid = "9f3c0a7be01d4c55-1a";
  struct Case {
    std::string rid, tp, ts;
  };
  for (const Case& c : {Case{rid, "", ""}, Case{"", kTp, ""}, Case{"", kTp, "rojo=1"},
                        Case{rid, kTp, "rojo=1,congo=2"}, Case{std::string(300, 'r'), kTp, ""}}) {
    JobOrigin o(c.rid, TraceContext{c.tp, c.ts});
    EXPECT_FALSE(o.empty());
    EXPECT_EQ(o.request_id(), c.rid);
    EXPECT_EQ(o.traceparent(), c.tp);
    EXPECT_EQ(o.tracestate(), c.ts);
    EXPECT_EQ(o.trace(), (TraceContext{c.tp, c.ts}));
    // One block: the 6-byte header and the bytes, nothing else.
    EXPECT_EQ(o.HeapBytes(), 6 + c.rid.size() + c.tp.size() + c.ts.size());
  }
}

TEST(JobOriginTest, MovesWithoutCopying) {
  JobOrigin a("req", TraceContext{kTp, ""});
  const char* before = a.request_id().data();
  JobOrigin b = std::move(a);
  EXPECT_EQ(b.request_id().data(), before);
  EXPECT_EQ(b.traceparent(), kTp);
}

TEST(JobOriginTest, CutsAPartPastTheHeaderBound) {
  const std::string huge(JobOrigin::kMaxPart + 10, 'x');
  JobOrigin o(huge, TraceContext{});
  EXPECT_EQ(o.request_id().size(), JobOrigin::kMaxPart);
}

}  // namespace
}  // namespace ym
