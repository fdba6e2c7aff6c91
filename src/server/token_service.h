// TokenService: the server's API tokens (docs/security.md, "Tokens" and "Bootstrap").
//
// Owns the TokenBook the transport authenticates against, implements the /v1/tokens routes
// (net/token_admin.h), bootstraps the first admin token, and writes last-use times lazily.
//
// Writes go through the Broker (Broker::CommitMutations), in the core's open batch like any
// configuration change, on the store's one writer connection: a create is answered once it is
// durable, and only then does the token work; a revocation is marked in the book first (the
// very next request is refused) and answered once durable.
//
// Last use: the book keeps it per token in memory (an atomic, no lock, no store write per
// request); a flusher thread writes the times that changed, at most once per
// kLastUsedPersistMs per token, and Stop() writes the rest.
//
// Lifecycle: construct after Broker::Start (Load the recovered rows), Bootstrap (auth on),
// Start the flusher, and Stop before Broker::Stop. Threads: Create/Revoke/List from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "net/token_admin.h"
#include "net/token_book.h"
#include "server/broker.h"

namespace ym {

inline constexpr std::int64_t kLastUsedPersistMs = 60'000;
inline constexpr char kBootstrapTokenName[] = "bootstrap-admin";
inline constexpr char kAdminTokenFile[] = "admin.token";

class TokenService final : public net::TokenAdmin {
 public:
  TokenService(Broker& broker, const Clock& clock);
  ~TokenService() override;  // calls Stop()
  TokenService(const TokenService&) = delete;
  TokenService& operator=(const TokenService&) = delete;

  // The rows Broker::TakeRecoveredApiTokens handed over. A row that does not decode is logged
  // and left out (that token cannot be used); the rest load.
  void Load(const std::vector<ApiTokenRow>& rows);

  // With auth on, before the listener opens. `bootstrap_file` set: its secret (a file not
  // readable by group or others, holding a strong well-formed secret) must belong to an admin
  // token that is neither revoked nor expired; one is created when no token has it. Else, when
  // no token exists at all: a new admin token, its secret written to <data_dir>/admin.token
  // (O_CREAT|O_EXCL, mode 0600, fsynced; never overwritten). Errors are start-up errors.
  Status Bootstrap(const std::string& data_dir, const std::string& bootstrap_file);

  void Start();  // the last-use flusher
  void Stop();   // writes the last-use times left; idempotent

  const net::TokenBook& book() const { return book_; }

  // net::TokenAdmin
  void Create(net::TokenSpec spec, std::function<void(Result<net::CreatedToken>)> done,
              AuditNote audit = {}) override;
  void Revoke(std::string id, std::function<void(Result<net::RevokedToken>)> done,
              AuditNote audit = {}) override;
  std::vector<net::TokenInfo> List() const override { return book_.List(); }
  std::int64_t NowMs() const override { return clock_.NowMs(); }

  // Writes the last-use times due (all of them with `all`) and waits for the commit (bounded).
  void FlushLastUsed(bool all);

 private:
  // Create with a given secret, waiting for the commit (bootstrap only).
  Result<net::CreatedToken> CreateNow(const std::string& name, const std::string& secret);

  Broker& broker_;
  const Clock& clock_;
  net::TokenBook book_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  bool started_ = false;
  std::thread flusher_;
};

}  // namespace ym
