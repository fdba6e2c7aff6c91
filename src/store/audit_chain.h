// Audit chain: the tamper-evident encoding of the audit log (docs/security.md, "Audit log").
//
// Every entry is hashed with the hash of the entry before it:
//
//   hash(n) = SHA-256( hash(n-1) || Encode(entry n) ),   hash(0) = 32 zero bytes (genesis)
//
// Encode() is canonical and unambiguous: a domain tag, then seq and at_ms as 8-byte big-endian
// integers, then each text field as a 4-byte big-endian length and its bytes, in a fixed order.
// Two different entries never encode alike, so a changed field, a moved entry (seq is encoded)
// or a removed one breaks the chain from there on. A checkpoint {seq, hash, at} exported off the
// machine (optionally HMAC-SHA256 signed) pins the chain's state at that seq, so a truncated
// tail, or a chain rewritten consistently up to the checkpoint, is found too.
//
// Pure: no I/O, no clock, no threads; the store seals entries in commit order (Seal), and a
// client verifies a chain from the entries alone (Verify) without trusting the server.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ym::audit {

inline constexpr std::size_t kHashBytes = 32;
using Hash = std::array<unsigned char, kHashBytes>;

// The actor of every entry recorded while authentication is off (no token names the caller).
inline constexpr std::string_view kAnonymousActor = "anonymous";

// One row of the log. `detail` is a small JSON object (never a payload or a secret).
struct Entry {
  std::uint64_t seq = 0;  // 1, 2, 3... without gaps
  std::int64_t at_ms = 0;
  std::string actor;
  std::string action;
  std::string target;
  std::string remote;
  std::string request_id;
  std::string detail;
  Hash prev_hash{};
  Hash hash{};
};

// The state of a chain: its last seq and hash (0 and the genesis hash when empty).
struct Head {
  std::uint64_t seq = 0;
  Hash hash{};
};

// The canonical encoding of e's fields (everything but prev_hash and hash).
std::string Encode(const Entry& e);
// SHA-256(prev || Encode(e)).
Hash ComputeHash(const Hash& prev, const Entry& e);
// Appends `e` after `head`: sets e.seq, e.prev_hash and e.hash, and returns the new head.
Head Seal(Entry& e, const Head& head);

std::string ToHex(const Hash& h);
// Parses 64 hex digits (either case); nullopt otherwise.
std::optional<Hash> HashFromHex(std::string_view hex);

// A checkpoint: the chain's head at a moment. `mac` is the hex HMAC-SHA256 of
// CheckpointMessage() under the configured key, empty when unsigned.
struct Checkpoint {
  std::uint64_t seq = 0;
  Hash hash{};
  std::int64_t at_ms = 0;
  std::string mac;
};

// What the MAC covers: "ym-audit-checkpoint-v1\n<seq>\n<hash hex>\n<at_ms>".
std::string CheckpointMessage(const Checkpoint& cp);
// Hex HMAC-SHA256 of CheckpointMessage(cp) under `key`.
std::string SignCheckpoint(const Checkpoint& cp, std::string_view key);
// True when cp.mac is the MAC of cp under `key` (constant-time comparison).
bool CheckpointMacValid(const Checkpoint& cp, std::string_view key);
// JSON {"seq":..,"hash":"..","at_ms":..[,"mac":".."]} and back (kind of error in `error`).
std::string CheckpointToJson(const Checkpoint& cp);
std::optional<Checkpoint> CheckpointFromJson(std::string_view json, std::string* error);

// What Verify found first.
enum class Problem : std::uint8_t {
  kNone,
  kModified,    // the entry's fields or hashes were changed
  kDeleted,     // an entry is missing (a gap in seq, or renumbered entries after a removal)
  kReordered,   // the entry holds the entry written under another seq
  kTruncated,   // the log ends before the checkpoint's seq
  kRewritten,   // the entry at the checkpoint's seq has another hash: the chain was rewritten
  kCheckpoint,  // the checkpoint itself is unsigned or its signature is wrong
};

std::string_view ProblemName(Problem p);

struct Finding {
  Problem problem = Problem::kNone;
  std::uint64_t seq = 0;  // the first bad entry (0 with kNone or kCheckpoint)
  std::string message;    // "entry N: modified (...)"; "" with kNone
  bool ok() const { return problem == Problem::kNone; }
};

struct VerifyOptions {
  std::optional<Checkpoint> checkpoint;
  // When set, the checkpoint must carry a valid MAC under this key.
  std::optional<std::string> key;
};

// Walks `entries` (the whole log, ascending seq, as read) and reports the first problem. An
// intact chain that a checkpoint covers: kNone. What cannot be detected: a tail removed after
// the last checkpoint, and anything rewritten by someone who also holds the key (or, unsigned,
// who can replace the exported checkpoint).
Finding Verify(const std::vector<Entry>& entries, const VerifyOptions& options = {});

}  // namespace ym::audit
