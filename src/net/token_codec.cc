#include "net/token_codec.h"

#include <algorithm>

#include "core/job.h"
#include "net/auth_token.h"
#include "net/codec_util.h"

namespace ym::net {
namespace {

// Ten years: an expiry beyond that is a typo more often than a wish.
constexpr std::int64_t kMaxExpiresInMs = 10LL * 366 * 24 * 3600 * 1000;
constexpr std::int64_t kMaxEpochMs = 253402300799999;  // 9999-12-31T23:59:59.999Z
constexpr std::size_t kMaxNamespaces = 256;

void WriteOptMs(JsonWriter& w, std::string_view key, const std::optional<std::int64_t>& ms) {
  WriteKey(w, key);
  if (ms) {
    w.Int64(*ms);
  } else {
    w.Null();
  }
}

void WriteTokenFields(JsonWriter& w, const TokenInfo& t, std::int64_t now_ms) {
  WriteKey(w, "id");
  WriteStr(w, t.id);
  WriteKey(w, "name");
  WriteStr(w, t.name);
  WriteKey(w, "role");
  WriteStr(w, RoleName(t.role));
  WriteKey(w, "namespaces");
  w.StartArray();
  if (t.all_namespaces) {
    WriteStr(w, "*");
  } else {
    for (const auto& n : t.namespaces) WriteStr(w, n);
  }
  w.EndArray();
  WriteKey(w, "created_at");
  w.Int64(t.created_at_ms);
  WriteOptMs(w, "expires_at", t.expires_at_ms);
  WriteKey(w, "expired");
  w.Bool(t.expires_at_ms && *t.expires_at_ms <= now_ms);
  WriteOptMs(w, "revoked_at", t.revoked_at_ms);
  WriteOptMs(w, "last_used_at", t.last_used_at_ms);
}

}  // namespace

Result<TokenSpec> ParseTokenSpec(std::string_view body) {
  auto doc = ParseDocument(body);
  if (!doc.ok()) return doc.status();
  const Value root = doc->root();
  if (!root.IsObject()) return Validation("the body must be a JSON object");
  YM_RETURN_IF_ERROR(
      CheckMembers(root, "", {"name", "role", "namespaces", "expires_in_ms", "expires_at"}));
  TokenSpec spec;
  auto name = Find(root, "name");
  if (!name) return Required("name");
  if (!name->IsString() || !IsValidTokenName(name->GetString())) {
    return FieldError("name", "must be 1 to 64 characters of A-Z a-z 0-9 _ . : -");
  }
  spec.name = std::string(name->GetString());
  auto role = Find(root, "role");
  if (!role) return Required("role");
  std::optional<Role> parsed_role;
  if (role->IsString()) parsed_role = ParseRole(role->GetString());
  if (!parsed_role) {
    return FieldError("role", "must be one of admin, operator, producer, worker, viewer");
  }
  spec.role = *parsed_role;
  if (auto ns = Find(root, "namespaces")) {
    if (!ns->IsArray() || ns->Empty() || ns->Size() > kMaxNamespaces) {
      return FieldError("namespaces", "must be [\"*\"] or a non-empty array of namespace names");
    }
    spec.all_namespaces = false;
    for (auto m : *ns) {
      if (!m.value.IsString()) return FieldError("namespaces", "must hold strings");
      std::string_view n = m.value.GetString();
      if (n == "*") {
        spec.all_namespaces = true;
        continue;
      }
      if (!IsValidName(n)) {
        return FieldError("namespaces", "holds an invalid namespace name");
      }
      spec.namespaces.emplace_back(n);
    }
    if (spec.all_namespaces && !spec.namespaces.empty()) {
      return FieldError("namespaces", "\"*\" cannot be combined with names");
    }
    std::sort(spec.namespaces.begin(), spec.namespaces.end());
    spec.namespaces.erase(std::unique(spec.namespaces.begin(), spec.namespaces.end()),
                          spec.namespaces.end());
  }
  YM_RETURN_IF_ERROR(OptInt(root, "", "expires_in_ms", 1, kMaxExpiresInMs, &spec.expires_in_ms));
  YM_RETURN_IF_ERROR(OptInt(root, "", "expires_at", 1, kMaxEpochMs, &spec.expires_at_ms));
  if (spec.expires_in_ms && spec.expires_at_ms) {
    return FieldError("expires_at", "cannot be combined with \"expires_in_ms\"");
  }
  return spec;
}

std::string RenderToken(const TokenInfo& t, std::int64_t now_ms) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteTokenFields(w, t, now_ms);
  w.EndObject();
  return Take(buf);
}

std::string RenderCreatedToken(const CreatedToken& t, std::int64_t now_ms) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteTokenFields(w, t.info, now_ms);
  WriteKey(w, "secret");
  WriteStr(w, t.secret);
  w.EndObject();
  return Take(buf);
}

std::string RenderRevokedToken(const RevokedToken& t, std::int64_t now_ms) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteTokenFields(w, t.info, now_ms);
  WriteKey(w, "revoked_now");
  w.Bool(t.revoked_now);
  w.EndObject();
  return Take(buf);
}

std::string RenderTokenList(const std::vector<TokenInfo>& tokens, std::int64_t now_ms) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  w.StartObject();
  WriteKey(w, "tokens");
  w.StartArray();
  for (const auto& t : tokens) {
    w.StartObject();
    WriteTokenFields(w, t, now_ms);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Take(buf);
}

}  // namespace ym::net
