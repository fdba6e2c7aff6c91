#include "net/auth_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <bitset>

#include "common/base64url.h"
#include "common/json.h"
#include "core/job.h"

namespace ym::net {
namespace {

bool RandomBytes(unsigned char* out, int n) { return RAND_bytes(out, n) == 1; }

}  // namespace

Result<std::string> NewTokenSecret() {
  std::array<unsigned char, 32> raw{};
  if (!RandomBytes(raw.data(), static_cast<int>(raw.size()))) {
    return Internal("the random generator failed to make a token secret");
  }
  std::string out(kTokenPrefix);
  out += Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
  OPENSSL_cleanse(raw.data(), raw.size());
  return out;
}

Result<std::string> NewTokenId() {
  std::array<unsigned char, kTokenIdLength / 2> raw{};
  if (!RandomBytes(raw.data(), static_cast<int>(raw.size()))) {
    return Internal("the random generator failed to make a token id");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : raw) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

bool IsWellFormedSecret(std::string_view secret) {
  if (secret.size() != kSecretLength || !secret.starts_with(kTokenPrefix)) return false;
  std::string_view body = secret.substr(kTokenPrefix.size());
  for (char c : body) {
    if (Base64UrlValue(c) < 0) return false;
  }
  // 43 characters carry 258 bits: the last one's low 2 bits are padding and must be zero.
  return (Base64UrlValue(body.back()) & 3) == 0;
}

bool IsStrongSecret(std::string_view secret) {
  if (!IsWellFormedSecret(secret)) return false;
  std::bitset<64> seen;
  for (char c : secret.substr(kTokenPrefix.size())) seen.set(Base64UrlValue(c));
  return seen.count() >= 20;
}

bool IsWellFormedTokenId(std::string_view id) {
  return id.size() == kTokenIdLength && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool IsValidTokenName(std::string_view name) {
  return name.size() <= kTokenNameMax && IsValidName(name);
}

std::optional<std::string_view> ParseBearer(std::string_view v) {
  constexpr std::string_view kScheme = "bearer";
  if (v.size() < kScheme.size() + 1) return std::nullopt;
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    char c = v[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kScheme[i]) return std::nullopt;
  }
  std::size_t i = kScheme.size();
  if (v[i] != ' ') return std::nullopt;
  while (i < v.size() && v[i] == ' ') ++i;
  std::string_view secret = v.substr(i);
  if (!IsWellFormedSecret(secret)) return std::nullopt;
  return secret;
}

std::string HashSecret(std::string_view secret) {
  // Fetched once: EVP_sha256() makes every EVP_Digest fetch the implementation again (a
  // provider lookup under a lock in OpenSSL 3), which is most of the cost of a short digest.
  static EVP_MD* const kFetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  const EVP_MD* md = kFetched != nullptr ? kFetched : EVP_sha256();
  std::string out(32, '\0');
  unsigned int len = 0;
  if (EVP_Digest(secret.data(), secret.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
                 md, nullptr) != 1 ||
      len != 32) {
    // EVP_Digest of SHA-256 over memory cannot fail short of memory exhaustion; an empty hash
    // matches no stored one (every stored hash is 32 bytes), so the request is refused.
    return std::string();
  }
  return out;
}

bool HashesEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && !a.empty() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string NamespacesToJson(bool all, const std::vector<std::string>& names) {
  if (all) return R"(["*"])";
  // Names are IsValidName: nothing to escape.
  std::string out = "[";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    out += names[i];
    out += '"';
  }
  out += ']';
  return out;
}

Status NamespacesFromJson(std::string_view text, bool* all, std::vector<std::string>* names) {
  auto doc = json::Document::Parse(text);
  if (!doc.ok() || !doc->root().IsArray() || doc->root().Empty()) {
    return Corruption("api token namespaces: not a non-empty JSON array");
  }
  names->clear();
  *all = false;
  for (auto m : doc->root()) {
    if (!m.value.IsString()) return Corruption("api token namespaces: not a string");
    std::string_view n = m.value.GetString();
    if (n == "*") {
      *all = true;
      continue;
    }
    if (!IsValidName(n)) return Corruption("api token namespaces: invalid name");
    names->emplace_back(n);
  }
  if (*all && !names->empty()) return Corruption("api token namespaces: \"*\" with names");
  std::sort(names->begin(), names->end());
  names->erase(std::unique(names->begin(), names->end()), names->end());
  return Status::Ok();
}

}  // namespace ym::net
