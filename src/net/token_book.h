// TokenBook: the API tokens the server knows, in memory (docs/security.md, "Tokens").
//
// Lookups come from the HTTP io threads concurrently, once per request: Authenticate() takes a
// shared lock, finds the token by the SHA-256 of the presented secret (hash map), confirms it
// with a constant-time comparison, and checks revocation and expiry against `now_ms`. The last
// use is an atomic in the token's entry, so a lookup never takes the exclusive lock and never
// writes to the store; TakeLastUsedToPersist() hands the changed times to a lazy writer.
//
// Writes (create, revoke) are rare and take the exclusive lock. The book is not the store: the
// token service (server/token_service.h) makes a create durable before Insert(), and marks a
// revocation here before committing it, so a revoked token is refused from the next request on.
// Names are reserved (Reserve) while a create is being committed, so two creates of one name
// cannot both reach the store.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "net/principal.h"
#include "store/api_token_row.h"

namespace ym::net {

// Why a request was not authenticated: a bounded set (the label of ym_auth_failures_total).
// The client is never told which (docs/security.md: one 401 for all).
enum class AuthFailure : std::uint8_t { kNone, kMissing, kMalformed, kUnknown, kExpired, kRevoked };
std::string_view AuthFailureName(AuthFailure f);

// A token as listings show it: never the secret or its hash.
struct TokenInfo {
  std::string id;
  std::string name;
  Role role = Role::kViewer;
  bool all_namespaces = true;
  std::vector<std::string> namespaces;
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> expires_at_ms;
  std::optional<std::int64_t> revoked_at_ms;
  std::optional<std::int64_t> last_used_at_ms;
};

class TokenBook {
 public:
  TokenBook() = default;
  TokenBook(const TokenBook&) = delete;
  TokenBook& operator=(const TokenBook&) = delete;

  // Loads a stored row (start-up). kCorruption for a row that does not decode (bad role,
  // namespaces, hash size), which is then not loaded.
  Status Load(const ApiTokenRow& row);

  // Resolves a presented secret (already well-formed, net/auth_token.h ParseBearer) into its
  // principal, recording the use at `now_ms`. Any thread.
  struct Outcome {
    AuthFailure failure = AuthFailure::kNone;
    Principal principal;  // set when failure == kNone
  };
  Outcome Authenticate(std::string_view secret, std::int64_t now_ms) const;

  // Create: reserve the name (kAlreadyExists when taken or being created), commit, then Insert
  // (or Unreserve on failure).
  Status Reserve(const std::string& name);
  void Unreserve(const std::string& name);
  Status Insert(const ApiTokenRow& row);  // also unreserves the row's name

  // Revoke: marks the token revoked at `now_ms` unless it already is. Returns its info after
  // (nullopt: no such id); `changed` tells whether this call revoked it.
  std::optional<TokenInfo> Revoke(std::string_view id, std::int64_t now_ms, bool* changed);

  std::vector<TokenInfo> List() const;  // by name
  std::optional<TokenInfo> FindByName(std::string_view name) const;
  // True when a token (revoked or not) has this secret's hash.
  bool HasSecret(std::string_view secret) const;
  bool HasId(std::string_view id) const;
  std::size_t size() const;
  // Tokens that are neither revoked nor expired at `now_ms`.
  std::size_t active(std::int64_t now_ms) const;

  // The last-use times not yet written, for tokens whose time was last written at least
  // `min_interval_ms` before `now_ms` (0: all of them, at shutdown); they count as written.
  std::vector<std::pair<std::string, std::int64_t>> TakeLastUsedToPersist(
      std::int64_t now_ms, std::int64_t min_interval_ms);

 private:
  struct Entry {
    TokenInfo info;  // last_used_at_ms: as loaded; the live value is `last_used`
    std::string hash;
    Principal principal;
    std::atomic<std::int64_t> last_used{0};            // 0: never
    std::atomic<std::int64_t> persisted_last_used{0};  // what the store has
    std::atomic<std::int64_t> persisted_at{0};         // when we last wrote it (now_ms)
  };
  static TokenInfo InfoOf(const Entry& e);

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> by_hash_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::shared_ptr<Entry>> by_id_;    // GUARDED_BY(mu_)
  std::set<std::string, std::less<>> names_;                         // GUARDED_BY(mu_)
  std::set<std::string, std::less<>> reserved_;                      // GUARDED_BY(mu_)
};

}  // namespace ym::net
