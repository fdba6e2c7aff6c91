#include "net/token_book.h"

#include <algorithm>
#include <mutex>

#include "net/auth_token.h"

namespace ym::net {

std::string_view AuthFailureName(AuthFailure f) {
  switch (f) {
    case AuthFailure::kNone:
      return "none";
    case AuthFailure::kMissing:
      return "missing";
    case AuthFailure::kMalformed:
      return "malformed";
    case AuthFailure::kUnknown:
      return "unknown";
    case AuthFailure::kExpired:
      return "expired";
    case AuthFailure::kRevoked:
      return "revoked";
  }
  return "unknown";
}

Status TokenBook::Load(const ApiTokenRow& row) {
  auto role = ParseRole(row.role);
  if (!role) return Corruption("api token " + row.id + ": unknown role");
  if (row.hash.size() != 32) return Corruption("api token " + row.id + ": hash is not 32 bytes");
  auto e = std::make_shared<Entry>();
  e->info.id = row.id;
  e->info.name = row.name;
  e->info.role = *role;
  YM_RETURN_IF_ERROR(
      NamespacesFromJson(row.namespaces_json, &e->info.all_namespaces, &e->info.namespaces));
  e->info.created_at_ms = row.created_at_ms;
  e->info.expires_at_ms = row.expires_at_ms;
  e->info.revoked_at_ms = row.revoked_at_ms;
  e->hash = row.hash;
  e->principal.token_name = row.name;
  e->principal.token_id = row.id;
  e->principal.role = *role;
  e->principal.all_namespaces = e->info.all_namespaces;
  e->principal.namespaces = e->info.namespaces;
  e->principal.authenticated = true;
  const std::int64_t used = row.last_used_at_ms.value_or(0);
  e->last_used.store(used, std::memory_order_relaxed);
  e->persisted_last_used.store(used, std::memory_order_relaxed);
  std::unique_lock lock(mu_);
  if (by_id_.count(row.id) != 0 || by_hash_.count(row.hash) != 0 || names_.count(row.name) != 0) {
    return Corruption("api token " + row.id + ": id, name or hash not unique");
  }
  by_hash_.emplace(row.hash, e);
  by_id_.emplace(row.id, e);
  names_.insert(row.name);
  return Status::Ok();
}

TokenBook::Outcome TokenBook::Authenticate(std::string_view secret, std::int64_t now_ms) const {
  Outcome out;
  const std::string hash = HashSecret(secret);
  std::shared_lock lock(mu_);
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end() || !HashesEqual(it->second->hash, hash)) {
    out.failure = AuthFailure::kUnknown;
    return out;
  }
  Entry& e = *it->second;
  if (e.info.revoked_at_ms) {
    out.failure = AuthFailure::kRevoked;
    return out;
  }
  if (e.info.expires_at_ms && *e.info.expires_at_ms <= now_ms) {
    out.failure = AuthFailure::kExpired;
    return out;
  }
  // Last use: only ever moves forward.
  std::int64_t prev = e.last_used.load(std::memory_order_relaxed);
  while (prev < now_ms &&
         !e.last_used.compare_exchange_weak(prev, now_ms, std::memory_order_relaxed)) {
  }
  out.principal = e.principal;
  return out;
}

Status TokenBook::Reserve(const std::string& name) {
  std::unique_lock lock(mu_);
  if (names_.count(name) != 0 || reserved_.count(name) != 0) {
    return Status(Code::kAlreadyExists, "a token named " + name + " exists");
  }
  reserved_.insert(name);
  return Status::Ok();
}

void TokenBook::Unreserve(const std::string& name) {
  std::unique_lock lock(mu_);
  reserved_.erase(name);
}

Status TokenBook::Insert(const ApiTokenRow& row) {
  Unreserve(row.name);
  return Load(row);
}

TokenInfo TokenBook::InfoOf(const Entry& e) {
  TokenInfo info = e.info;
  const std::int64_t used = e.last_used.load(std::memory_order_relaxed);
  if (used != 0) info.last_used_at_ms = used;
  return info;
}

std::optional<TokenInfo> TokenBook::Revoke(std::string_view id, std::int64_t now_ms,
                                           bool* changed) {
  *changed = false;
  std::unique_lock lock(mu_);
  auto it = by_id_.find(std::string(id));
  if (it == by_id_.end()) return std::nullopt;
  Entry& e = *it->second;
  if (!e.info.revoked_at_ms) {
    e.info.revoked_at_ms = now_ms;
    *changed = true;
  }
  return InfoOf(e);
}

std::vector<TokenInfo> TokenBook::List() const {
  std::shared_lock lock(mu_);
  std::vector<TokenInfo> out;
  out.reserve(by_id_.size());
  for (const auto& [id, e] : by_id_) out.push_back(InfoOf(*e));
  std::sort(out.begin(), out.end(),
            [](const TokenInfo& a, const TokenInfo& b) { return a.name < b.name; });
  return out;
}

std::optional<TokenInfo> TokenBook::FindByName(std::string_view name) const {
  std::shared_lock lock(mu_);
  for (const auto& [id, e] : by_id_) {
    if (e->info.name == name) return InfoOf(*e);
  }
  return std::nullopt;
}

bool TokenBook::HasSecret(std::string_view secret) const {
  const std::string hash = HashSecret(secret);
  std::shared_lock lock(mu_);
  return by_hash_.count(hash) != 0;
}

bool TokenBook::HasId(std::string_view id) const {
  std::shared_lock lock(mu_);
  return by_id_.count(std::string(id)) != 0;
}

std::size_t TokenBook::size() const {
  std::shared_lock lock(mu_);
  return by_id_.size();
}

std::size_t TokenBook::active(std::int64_t now_ms) const {
  std::shared_lock lock(mu_);
  return static_cast<std::size_t>(std::count_if(by_id_.begin(), by_id_.end(), [&](const auto& kv) {
    const TokenInfo& i = kv.second->info;
    return !i.revoked_at_ms && !(i.expires_at_ms && *i.expires_at_ms <= now_ms);
  }));
}

std::vector<std::pair<std::string, std::int64_t>> TokenBook::TakeLastUsedToPersist(
    std::int64_t now_ms, std::int64_t min_interval_ms) {
  std::vector<std::pair<std::string, std::int64_t>> out;
  std::shared_lock lock(mu_);
  for (const auto& [id, e] : by_id_) {
    const std::int64_t used = e->last_used.load(std::memory_order_relaxed);
    if (used <= e->persisted_last_used.load(std::memory_order_relaxed)) continue;
    if (min_interval_ms > 0 &&
        now_ms - e->persisted_at.load(std::memory_order_relaxed) < min_interval_ms) {
      continue;
    }
    e->persisted_last_used.store(used, std::memory_order_relaxed);
    e->persisted_at.store(now_ms, std::memory_order_relaxed);
    out.emplace_back(id, used);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace ym::net
