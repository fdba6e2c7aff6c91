// API token format, the Authorization header, and the token's stored form (docs/security.md,
// "Tokens"). Pure functions, no state; OpenSSL supplies the randomness and SHA-256.
//
// A secret is `ym_` followed by 43 base64url characters: 32 bytes (256 bits) from RAND_bytes.
// The fixed prefix lets secret scanners recognise a leaked one. A token's public id is 16
// lowercase hex digits (64 random bits), shown in listings and used to revoke it; it says
// nothing about the secret. The store keeps only SHA-256(secret).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "net/principal.h"

namespace ym::net {

inline constexpr std::string_view kTokenPrefix = "ym_";
inline constexpr std::size_t kSecretChars = 43;  // base64url of 32 bytes, no padding
inline constexpr std::size_t kSecretLength = kTokenPrefix.size() + kSecretChars;
inline constexpr std::size_t kTokenIdLength = 16;
inline constexpr std::size_t kTokenNameMax = 64;

// A fresh secret and id from RAND_bytes; kInternal if the generator fails.
Result<std::string> NewTokenSecret();
Result<std::string> NewTokenId();

// True for `ym_` + exactly 43 base64url characters whose last one carries no stray bits (what
// NewTokenSecret makes).
bool IsWellFormedSecret(std::string_view secret);
// A well-formed secret that is not obviously hand-made: fewer than 20 distinct characters in its
// 43 random ones is refused (a random one has about 31; fewer than 20 happens with probability
// below 1e-9). Used for a bootstrap secret an operator supplies.
bool IsStrongSecret(std::string_view secret);
bool IsWellFormedTokenId(std::string_view id);
// Token names: 1..64 bytes of [A-Za-z0-9_.:-] (the names of core/job.h, shorter).
bool IsValidTokenName(std::string_view name);

// The bearer credential of an Authorization header value: `Bearer <secret>` (scheme ASCII case
// ignored, one or more spaces, no other text), the secret well-formed. nullopt for anything
// else: another scheme, an empty or malformed credential, extra text. Never copies.
std::optional<std::string_view> ParseBearer(std::string_view header_value);

// SHA-256 of the secret, 32 raw bytes.
std::string HashSecret(std::string_view secret);
// Constant-time comparison of two hashes (CRYPTO_memcmp); false when the sizes differ.
bool HashesEqual(std::string_view a, std::string_view b);

// The namespaces column (docs/storage-format.md): ["*"] for all, else a JSON array of names.
std::string NamespacesToJson(bool all, const std::vector<std::string>& names);
// Its inverse; the names come back sorted and unique. kCorruption for anything else.
Status NamespacesFromJson(std::string_view text, bool* all, std::vector<std::string>* names);

}  // namespace ym::net
