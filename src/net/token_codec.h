// The JSON of the /v1/tokens routes (docs/api.md, "Tokens").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "net/token_admin.h"

namespace ym::net {

// POST /v1/tokens: {"name", "role", "namespaces"?, "expires_in_ms"? | "expires_at"?}.
// `namespaces`: ["*"] or a non-empty array of namespace names (default ["*"]). Bad input is
// kInvalidJson or kValidation naming the field.
Result<TokenSpec> ParseTokenSpec(std::string_view body);

// A token as listings show it (never the secret or its hash); `expired` against now_ms.
std::string RenderToken(const TokenInfo& t, std::int64_t now_ms);
// The create answer: the token plus "secret", shown this once.
std::string RenderCreatedToken(const CreatedToken& t, std::int64_t now_ms);
std::string RenderRevokedToken(const RevokedToken& t, std::int64_t now_ms);
std::string RenderTokenList(const std::vector<TokenInfo>& tokens, std::int64_t now_ms);

}  // namespace ym::net
