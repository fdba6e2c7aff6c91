#include "store/audit_chain.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdint>

#include "common/json.h"

namespace ym::audit {

namespace {

// Versioned, so a future encoding can never collide with this one.
constexpr std::string_view kEntryTag = "ym-audit-entry-v1";

void PutU64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

void PutText(std::string& out, std::string_view s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  out.append(s);
}

Hash Sha256(std::string_view a, std::string_view b) {
  Hash out{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  // These only fail on allocation failure inside OpenSSL; a zero hash then never verifies.
  if (ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
      EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
      EVP_DigestUpdate(ctx, b.data(), b.size()) == 1) {
    EVP_DigestFinal_ex(ctx, out.data(), &len);
  }
  EVP_MD_CTX_free(ctx);
  return out;
}

std::string HexOf(const unsigned char* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    s.push_back(kDigits[p[i] >> 4]);
    s.push_back(kDigits[p[i] & 0xf]);
  }
  return s;
}

std::string Hex(const Hash& h) { return HexOf(h.data(), h.size()); }

Finding Found(Problem p, std::uint64_t seq, const std::string& why) {
  Finding f;
  f.problem = p;
  f.seq = seq;
  f.message =
      "entry " + std::to_string(seq) + ": " + std::string(ProblemName(p)) + " (" + why + ")";
  return f;
}

}  // namespace

std::string Encode(const Entry& e) {
  std::string out;
  out.reserve(kEntryTag.size() + 16 + 24 + e.actor.size() + e.action.size() + e.target.size() +
              e.remote.size() + e.request_id.size() + e.detail.size());
  out.append(kEntryTag);
  PutU64(out, e.seq);
  PutU64(out, static_cast<std::uint64_t>(e.at_ms));
  PutText(out, e.actor);
  PutText(out, e.action);
  PutText(out, e.target);
  PutText(out, e.remote);
  PutText(out, e.request_id);
  PutText(out, e.detail);
  return out;
}

Hash ComputeHash(const Hash& prev, const Entry& e) {
  const std::string enc = Encode(e);
  return Sha256(std::string_view(reinterpret_cast<const char*>(prev.data()), prev.size()), enc);
}

Head Seal(Entry& e, const Head& head) {
  e.seq = head.seq + 1;
  e.prev_hash = head.hash;
  e.hash = ComputeHash(e.prev_hash, e);
  return Head{e.seq, e.hash};
}

std::string ToHex(const Hash& h) { return Hex(h); }

std::optional<Hash> HashFromHex(std::string_view hex) {
  if (hex.size() != 2 * kHashBytes) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Hash h{};
  for (std::size_t i = 0; i < kHashBytes; ++i) {
    const int hi = nibble(hex[2 * i]);
    const int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    h[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return h;
}

std::string CheckpointMessage(const Checkpoint& cp) {
  return "ym-audit-checkpoint-v1\n" + std::to_string(cp.seq) + "\n" + Hex(cp.hash) + "\n" +
         std::to_string(cp.at_ms);
}

std::string SignCheckpoint(const Checkpoint& cp, std::string_view key) {
  const std::string msg = CheckpointMessage(cp);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len) == nullptr) {
    return "";
  }
  return HexOf(mac, len);
}

bool CheckpointMacValid(const Checkpoint& cp, std::string_view key) {
  const std::string want = SignCheckpoint(cp, key);
  if (want.empty() || want.size() != cp.mac.size()) return false;
  return CRYPTO_memcmp(want.data(), cp.mac.data(), want.size()) == 0;
}

std::string CheckpointToJson(const Checkpoint& cp) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("seq");
  w.Uint64(cp.seq);
  w.Key("hash");
  w.String(Hex(cp.hash));
  w.Key("at_ms");
  w.Int64(cp.at_ms);
  if (!cp.mac.empty()) {
    w.Key("mac");
    w.String(cp.mac);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::optional<Checkpoint> CheckpointFromJson(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<Checkpoint> {
    if (error != nullptr) *error = std::move(why);
    return std::nullopt;
  };
  auto doc = json::Document::Parse(text);
  if (!doc.ok()) return fail("checkpoint is not JSON: " + doc.status().message());
  const json::Value root = doc->root();
  if (!root.IsObject()) return fail("checkpoint must be a JSON object");
  Checkpoint cp;
  bool have_seq = false, have_hash = false, have_at = false;
  for (const auto& m : root) {
    const std::string_view name = m.name.GetString();
    if (name == "seq") {
      auto v = m.value.AsUint64();
      if (!v) return fail("checkpoint seq must be a non-negative integer");
      cp.seq = *v;
      have_seq = true;
    } else if (name == "hash") {
      auto h = m.value.IsString() ? HashFromHex(m.value.GetString()) : std::nullopt;
      if (!h) return fail("checkpoint hash must be 64 hex digits");
      cp.hash = *h;
      have_hash = true;
    } else if (name == "at_ms") {
      auto v = m.value.AsInt64();
      if (!v) return fail("checkpoint at_ms must be an integer");
      cp.at_ms = *v;
      have_at = true;
    } else if (name == "mac") {
      if (!m.value.IsString()) return fail("checkpoint mac must be a string");
      cp.mac = std::string(m.value.GetString());
    }
  }
  if (!have_seq || !have_hash || !have_at) return fail("checkpoint needs seq, hash and at_ms");
  return cp;
}

std::string_view ProblemName(Problem p) {
  switch (p) {
    case Problem::kNone:
      return "intact";
    case Problem::kModified:
      return "modified";
    case Problem::kDeleted:
      return "deleted";
    case Problem::kReordered:
      return "reordered";
    case Problem::kTruncated:
      return "truncated";
    case Problem::kRewritten:
      return "rewritten";
    case Problem::kCheckpoint:
      return "bad checkpoint";
  }
  return "modified";
}

Finding Verify(const std::vector<Entry>& entries, const VerifyOptions& options) {
  if (options.key) {
    if (!options.checkpoint) {
      return Finding{Problem::kCheckpoint, 0, "checkpoint: a key was given but no checkpoint"};
    }
    if (options.checkpoint->mac.empty()) {
      return Finding{Problem::kCheckpoint, 0, "checkpoint: not signed, but a key was given"};
    }
    if (!CheckpointMacValid(*options.checkpoint, *options.key)) {
      return Finding{Problem::kCheckpoint, 0,
                     "checkpoint: bad signature (changed, or signed with another key)"};
    }
  }
  const Hash genesis{};
  // Only looked at once a problem is found: which seq an out-of-place entry was written under,
  // and whether the hash it chains from belongs to an entry still present.
  auto written_as = [&](const Entry& e) -> std::optional<std::uint64_t> {
    Entry probe = e;
    const std::uint64_t last = entries.empty() ? 0 : entries.back().seq;
    // Bounded: a row's seq is the attacker's to set, so the last one may be absurdly large; an
    // entry moved further than this is reported as modified.
    const std::uint64_t bound = std::min<std::uint64_t>(
        std::max<std::uint64_t>(last, entries.size()) + 1, entries.size() + 65);
    for (std::uint64_t s = 1; s <= bound; ++s) {
      if (s == e.seq) continue;
      probe.seq = s;
      if (ComputeHash(probe.prev_hash, probe) == e.hash) return s;
    }
    return std::nullopt;
  };
  auto chains_from_present = [&](const Hash& prev) {
    if (prev == genesis) return true;
    for (const Entry& other : entries) {
      if (other.hash == prev) return true;
    }
    return false;
  };

  std::uint64_t expected = 1;
  const Entry* before = nullptr;
  for (const Entry& e : entries) {
    if (e.seq > expected) {
      return Found(Problem::kDeleted, expected,
                   e.seq == expected + 1 ? "missing; the log goes on at " + std::to_string(e.seq)
                                         : "entries " + std::to_string(expected) + " to " +
                                               std::to_string(e.seq - 1) + " are missing");
    }
    if (e.seq < expected) {
      return Found(Problem::kReordered, e.seq,
                   "listed after entry " + std::to_string(expected - 1));
    }
    if (ComputeHash(e.prev_hash, e) != e.hash) {
      if (auto s = written_as(e)) {
        if (chains_from_present(e.prev_hash)) {
          return Found(Problem::kReordered, e.seq,
                       "it holds the entry written as " + std::to_string(*s));
        }
        return Found(Problem::kDeleted, e.seq,
                     "the entry before the one written as " + std::to_string(*s) +
                         " is missing and later entries were renumbered");
      }
      return Found(Problem::kModified, e.seq, "its hash does not match its contents");
    }
    const Hash& want = before == nullptr ? genesis : before->hash;
    if (e.prev_hash != want) {
      if (before == nullptr) return Found(Problem::kModified, e.seq, "it does not start the chain");
      // e is consistent with itself, so it was written after an entry whose hash was
      // e.prev_hash: the entry now before it is not that one; it was rewritten (its hash
      // recomputed to hide the change).
      return Found(Problem::kModified, before->seq,
                   "its hash was recomputed; entry " + std::to_string(e.seq) +
                       " still chains from the original");
    }
    before = &e;
    ++expected;
  }
  if (options.checkpoint) {
    const Checkpoint& cp = *options.checkpoint;
    const std::uint64_t last = before == nullptr ? 0 : before->seq;
    if (cp.seq > last) {
      return Found(Problem::kTruncated, last + 1,
                   "the log ends at " + std::to_string(last) + " but the checkpoint names " +
                       std::to_string(cp.seq));
    }
    if (cp.seq > 0) {
      const Entry& at = entries[cp.seq - 1];  // seq n is at index n-1 once the walk passed
      if (at.hash != cp.hash) {
        return Found(Problem::kRewritten, cp.seq,
                     "its hash differs from the checkpoint's: the chain up to it was rewritten");
      }
    }
  }
  return Finding{};
}

}  // namespace ym::audit
