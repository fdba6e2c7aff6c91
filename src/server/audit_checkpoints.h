// AuditCheckpoints: the audit chain's checkpoints (docs/security.md, "Audit log").
//
// A checkpoint {seq, hash, at_ms} pins the chain's head at a moment; kept off the machine, it
// lets `yardmaster audit verify --checkpoint` find a truncated tail or a chain rewritten up to
// it. With `audit_checkpoint_key_file` configured each checkpoint carries an HMAC-SHA256 of its
// fields under that key, so a forged one (seq moved back to hide a truncation) is refused by a
// verifier holding the key.
//
// Written periodically to the server log (every `audit_checkpoint_every` entries: the log line
// leaves the machine with the logs) and made on demand by GET /v1/audit/checkpoint.
//
// Threads: OnCommitted() is called by the broker's commit writer only (one thread); Make() may
// be called from any thread (it reads immutable configuration and the clock).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "store/audit_chain.h"

namespace ym {

class AuditCheckpoints {
 public:
  // `every` 0: no periodic checkpoints. `key`: sign with it (nullopt: unsigned).
  AuditCheckpoints(const Clock& clock, std::uint64_t every, std::optional<std::string> key);

  // The chain's head at open, before any commit (no thread runs yet): the next periodic line is
  // written when the head passes the next multiple of `every`, not at the first commit.
  void Prime(const audit::Head& head) { last_period_ = every_ == 0 ? 0 : head.seq / every_; }

  // A checkpoint of `head` now, signed when a key is configured.
  audit::Checkpoint Make(const audit::Head& head) const;

  // After a commit that appended entries: logs a checkpoint when the head has passed a multiple
  // of `every` since the last one (one line even if a commit passed several).
  void OnCommitted(const audit::Head& head);

  // How many periodic checkpoints were logged (tests).
  std::uint64_t logged() const { return logged_.load(std::memory_order_relaxed); }

  // Reads a checkpoint key file: refused when world-readable (mode o+r) or empty; one trailing
  // newline is not part of the key. kInvalidRequest naming the file and the reason.
  static Result<std::string> LoadKey(const std::string& path);

 private:
  const Clock& clock_;
  const std::uint64_t every_;
  const std::optional<std::string> key_;
  std::uint64_t last_period_ = 0;         // writer thread only: head.seq / every_ at the last line
  std::atomic<std::uint64_t> logged_{0};  // a counter: read by tests, no ordering needed
};

}  // namespace ym
