// ApiTokenRow: one API token as the store keeps it (docs/storage-format.md, "api_tokens";
// docs/security.md, "Tokens"). Never the secret: `hash` is the SHA-256 of it (32 bytes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ym {

struct ApiTokenRow {
  std::string id;    // public id (net/auth_token.h)
  std::string name;  // unique
  std::string hash;  // SHA-256 of the secret, 32 raw bytes
  std::string role;  // net::RoleName
  // JSON array of namespace names, or ["*"] for all (net/auth_token.h, NamespacesToJson).
  std::string namespaces_json;
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> expires_at_ms;
  std::optional<std::int64_t> revoked_at_ms;
  std::optional<std::int64_t> last_used_at_ms;
};

}  // namespace ym
