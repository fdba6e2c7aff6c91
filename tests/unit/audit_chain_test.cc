// The audit chain (store/audit_chain.h): encoding, sealing, checkpoints and the verifier's
// first-problem reports for each kind of tampering.
#include "store/audit_chain.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace ym::audit {
namespace {

std::vector<Entry> Chain(int n) {
  std::vector<Entry> out;
  Head head;
  for (int i = 0; i < n; ++i) {
    Entry e;
    e.at_ms = 1'700'000'000'000 + i;
    e.actor = i % 2 == 0 ? "ops-alice" : "anonymous";
    e.action = "job.cancel";
    e.target = "job " + std::to_string(100 + i);
    e.remote = "127.0.0.1";
    e.request_id = "req-" + std::to_string(i);
    e.detail = "{}";
    head = Seal(e, head);
    out.push_back(std::move(e));
  }
  return out;
}

Checkpoint At(const std::vector<Entry>& chain, std::size_t n) {
  Checkpoint cp;
  cp.seq = chain[n - 1].seq;
  cp.hash = chain[n - 1].hash;
  cp.at_ms = 42;
  return cp;
}

TEST(AuditChainTest, SealNumbersAndLinksEntries) {
  auto chain = Chain(3);
  EXPECT_EQ(chain[0].seq, 1u);
  EXPECT_EQ(chain[0].prev_hash, Hash{});
  EXPECT_EQ(chain[1].prev_hash, chain[0].hash);
  EXPECT_EQ(chain[2].seq, 3u);
  EXPECT_NE(chain[1].hash, chain[2].hash);
  EXPECT_TRUE(Verify(chain).ok());
  EXPECT_TRUE(Verify({}).ok());
}

TEST(AuditChainTest, EncodingIsUnambiguous) {
  // Moving a byte from one field to the next must change the encoding (length prefixes).
  Entry a, b;
  a.actor = "ab";
  a.action = "c";
  b.actor = "a";
  b.action = "bc";
  EXPECT_NE(Encode(a), Encode(b));
  EXPECT_NE(ComputeHash(Hash{}, a), ComputeHash(Hash{}, b));
  Entry c = a;
  c.seq = 7;
  EXPECT_NE(Encode(a), Encode(c));
  // Known-answer: the hash is SHA-256, fixed for a fixed entry (format stability).
  Entry k;
  k.seq = 1;
  k.at_ms = 0;
  EXPECT_EQ(ToHex(ComputeHash(Hash{}, k)).size(), 64u);
  EXPECT_EQ(ComputeHash(Hash{}, k), ComputeHash(Hash{}, k));
}

TEST(AuditChainTest, HexRoundTrip) {
  auto chain = Chain(1);
  auto back = HashFromHex(ToHex(chain[0].hash));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, chain[0].hash);
  EXPECT_FALSE(HashFromHex("abc").has_value());
  EXPECT_FALSE(HashFromHex(std::string(64, 'g')).has_value());
}

TEST(AuditChainTest, ModifiedFieldIsReportedAtThatEntry) {
  for (int field = 0; field < 7; ++field) {
    auto chain = Chain(5);
    Entry& e = chain[2];
    switch (field) {
      case 0:
        e.actor = "mallory";
        break;
      case 1:
        e.action = "job.replay";
        break;
      case 2:
        e.target = "job 1";
        break;
      case 3:
        e.remote = "10.0.0.9";
        break;
      case 4:
        e.request_id = "x";
        break;
      case 5:
        e.detail = R"({"n":1})";
        break;
      case 6:
        e.at_ms += 1;
        break;
    }
    Finding f = Verify(chain);
    EXPECT_EQ(f.problem, Problem::kModified) << field;
    EXPECT_EQ(f.seq, 3u) << field;
    EXPECT_EQ(f.message.rfind("entry 3: modified", 0), 0u) << f.message;
  }
}

TEST(AuditChainTest, RecomputedHashIsFoundAtTheRewrittenEntry) {
  auto chain = Chain(5);
  chain[1].actor = "mallory";
  chain[1].hash = ComputeHash(chain[1].prev_hash, chain[1]);  // rehash this row only
  Finding f = Verify(chain);
  EXPECT_EQ(f.problem, Problem::kModified);
  EXPECT_EQ(f.seq, 2u);
}

TEST(AuditChainTest, DeletedRowIsAGap) {
  auto chain = Chain(5);
  chain.erase(chain.begin() + 2);
  Finding f = Verify(chain);
  EXPECT_EQ(f.problem, Problem::kDeleted);
  EXPECT_EQ(f.seq, 3u);
  EXPECT_EQ(f.message.rfind("entry 3: deleted", 0), 0u) << f.message;
  // The first entry too.
  auto head_gone = Chain(3);
  head_gone.erase(head_gone.begin());
  EXPECT_EQ(Verify(head_gone).problem, Problem::kDeleted);
  EXPECT_EQ(Verify(head_gone).seq, 1u);
}

TEST(AuditChainTest, DeletedRowWithRenumberedSuccessorsIsADeletion) {
  auto chain = Chain(5);
  chain.erase(chain.begin() + 2);
  for (std::size_t i = 2; i < chain.size(); ++i) chain[i].seq -= 1;
  Finding f = Verify(chain);
  EXPECT_EQ(f.problem, Problem::kDeleted);
  EXPECT_EQ(f.seq, 3u);
}

TEST(AuditChainTest, SwappedSeqIsReordered) {
  auto chain = Chain(5);
  std::swap(chain[1].seq, chain[2].seq);
  std::swap(chain[1], chain[2]);  // read back in seq order
  Finding f = Verify(chain);
  EXPECT_EQ(f.problem, Problem::kReordered);
  EXPECT_EQ(f.seq, 2u);
  EXPECT_NE(f.message.find("written as 3"), std::string::npos) << f.message;
  // Listed out of order (a server answering pages in the wrong order).
  auto listed = Chain(4);
  std::swap(listed[1], listed[2]);
  EXPECT_EQ(Verify(listed).problem, Problem::kDeleted);  // seq 3 where 2 was due
}

TEST(AuditChainTest, AHugeSeqDoesNotMakeTheVerifierSearchForever) {
  auto chain = Chain(3);
  chain[2].seq = UINT64_MAX - 1;  // a gap: reported at once
  EXPECT_EQ(Verify(chain).problem, Problem::kDeleted);
  auto modified = Chain(3);
  modified[1].actor = "x";
  modified[2].seq = UINT64_MAX - 1;
  Finding f = Verify(modified);
  EXPECT_EQ(f.problem, Problem::kModified);
  EXPECT_EQ(f.seq, 2u);
}

TEST(AuditChainTest, CheckpointFindsATruncatedTail) {
  auto chain = Chain(6);
  Checkpoint cp = At(chain, 6);
  VerifyOptions o;
  o.checkpoint = cp;
  EXPECT_TRUE(Verify(chain, o).ok());
  chain.resize(4);
  EXPECT_TRUE(Verify(chain).ok());  // undetectable without a checkpoint
  Finding f = Verify(chain, o);
  EXPECT_EQ(f.problem, Problem::kTruncated);
  EXPECT_EQ(f.seq, 5u);
  EXPECT_EQ(f.message.rfind("entry 5: truncated", 0), 0u) << f.message;
}

TEST(AuditChainTest, CheckpointFindsARewrittenChain) {
  auto chain = Chain(4);
  VerifyOptions o;
  o.checkpoint = At(chain, 3);
  // Rewrite everything consistently from entry 2 on: the chain alone looks intact.
  Head head{chain[0].seq, chain[0].hash};
  for (std::size_t i = 1; i < chain.size(); ++i) {
    chain[i].actor = "mallory";
    head = Seal(chain[i], head);
  }
  EXPECT_TRUE(Verify(chain).ok());
  Finding f = Verify(chain, o);
  EXPECT_EQ(f.problem, Problem::kRewritten);
  EXPECT_EQ(f.seq, 3u);
}

TEST(AuditChainTest, SignedCheckpoints) {
  auto chain = Chain(3);
  Checkpoint cp = At(chain, 3);
  cp.mac = SignCheckpoint(cp, "k3y");
  EXPECT_EQ(cp.mac.size(), 64u);
  EXPECT_TRUE(CheckpointMacValid(cp, "k3y"));
  EXPECT_FALSE(CheckpointMacValid(cp, "other"));
  VerifyOptions o;
  o.checkpoint = cp;
  o.key = "k3y";
  EXPECT_TRUE(Verify(chain, o).ok());
  o.key = "other";
  EXPECT_EQ(Verify(chain, o).problem, Problem::kCheckpoint);
  // A forged checkpoint (seq moved back to hide a truncation) fails its MAC.
  Checkpoint forged = cp;
  forged.seq = 2;
  forged.hash = chain[1].hash;
  o.checkpoint = forged;
  o.key = "k3y";
  EXPECT_EQ(Verify(chain, o).problem, Problem::kCheckpoint);
  // Unsigned with a key required.
  Checkpoint bare = At(chain, 3);
  o.checkpoint = bare;
  EXPECT_EQ(Verify(chain, o).problem, Problem::kCheckpoint);
}

TEST(AuditChainTest, CheckpointJsonRoundTrip) {
  auto chain = Chain(2);
  Checkpoint cp = At(chain, 2);
  cp.mac = SignCheckpoint(cp, "k");
  std::string err;
  auto back = CheckpointFromJson(CheckpointToJson(cp), &err);
  ASSERT_TRUE(back.has_value()) << err;
  EXPECT_EQ(back->seq, cp.seq);
  EXPECT_EQ(back->hash, cp.hash);
  EXPECT_EQ(back->at_ms, cp.at_ms);
  EXPECT_EQ(back->mac, cp.mac);
  EXPECT_FALSE(CheckpointFromJson("{\"seq\":1}", &err).has_value());
  EXPECT_NE(err.find("needs"), std::string::npos);
  EXPECT_FALSE(CheckpointFromJson("[]", &err).has_value());
  EXPECT_FALSE(CheckpointFromJson(R"({"seq":1,"hash":"zz","at_ms":1})", &err).has_value());
}

}  // namespace
}  // namespace ym::audit
