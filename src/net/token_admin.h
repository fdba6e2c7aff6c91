// TokenAdmin: what the /v1/tokens routes call (docs/api.md, "Tokens"). Implemented by the
// server's TokenService (server/token_service.h), which owns the TokenBook and commits through
// the Broker; the Api only parses, checks the caller is an admin, and renders.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "net/principal.h"
#include "net/token_book.h"
#include "server/audit_note.h"

namespace ym::net {

// A create request, validated (net/token_codec.h ParseTokenSpec).
struct TokenSpec {
  std::string name;
  Role role = Role::kViewer;
  bool all_namespaces = true;
  std::vector<std::string> namespaces;  // sorted, unique
  // Exactly one of these or neither (no expiry).
  std::optional<std::int64_t> expires_in_ms;
  std::optional<std::int64_t> expires_at_ms;
};

struct CreatedToken {
  TokenInfo info;
  std::string secret;  // shown once, in the create response only
};

struct RevokedToken {
  TokenInfo info;
  bool revoked_now = false;  // false: it was already revoked (the answer is the same 200)
};

class TokenAdmin {
 public:
  virtual ~TokenAdmin() = default;
  // Answers once the token is durable. kAlreadyExists for a taken name, kValidation for an
  // expiry not in the future.
  // `audit` (when enabled) is committed with the token (docs/security.md, "Audit log").
  virtual void Create(TokenSpec spec, std::function<void(Result<CreatedToken>)> done,
                      AuditNote audit = {}) = 0;
  // Revokes at once (refused from the next request on), answers once durable. kNotFound for an
  // unknown id.
  // `audit` is committed with the revocation, when this call revokes it.
  virtual void Revoke(std::string id, std::function<void(Result<RevokedToken>)> done,
                      AuditNote audit = {}) = 0;
  virtual std::vector<TokenInfo> List() const = 0;
  virtual std::int64_t NowMs() const = 0;
};

}  // namespace ym::net
