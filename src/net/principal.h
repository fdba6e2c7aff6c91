// Principal: who made a request, as the transport established it (docs/security.md).
//
// Without authentication configured, every request is the anonymous principal: all namespaces,
// role admin, `authenticated` false (the server then answers only to loopback host names and
// refuses a non-loopback listen address without --insecure; net/web_guard.h). With API tokens
// on, the transport resolves the `Authorization: Bearer ...` header into the token's principal
// before the request reaches the Api; a request without a valid token never reaches it.
//
// Plain data, copied into each ApiRequest; the Api checks the route against the role matrix and
// every namespace the request touches against `namespaces`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ym::net {

// The five roles of docs/security.md ("Roles"), from most to least privileged. The matrix of
// which role may call which route lives with the authorization code, not here.
enum class Role : std::uint8_t { kAdmin, kOperator, kProducer, kWorker, kViewer };

inline constexpr std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kOperator:
      return "operator";
    case Role::kProducer:
      return "producer";
    case Role::kWorker:
      return "worker";
    case Role::kViewer:
      return "viewer";
  }
  return "viewer";
}

inline std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kAdmin, Role::kOperator, Role::kProducer, Role::kWorker, Role::kViewer}) {
    if (RoleName(r) == name) return r;
  }
  return std::nullopt;
}

struct Principal {
  // The token's name and public id ("" for the anonymous principal). Never the secret.
  std::string token_name;
  std::string token_id;
  Role role = Role::kAdmin;
  // All namespaces, or only those in `namespaces` (sorted, unique, non-empty when false).
  bool all_namespaces = true;
  std::vector<std::string> namespaces;
  // True when a valid bearer token was presented; false for the anonymous principal.
  bool authenticated = false;

  bool CanUseNamespace(std::string_view ns) const {
    return all_namespaces || std::binary_search(namespaces.begin(), namespaces.end(), ns);
  }
};

}  // namespace ym::net
