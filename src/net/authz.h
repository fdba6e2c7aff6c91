// Authorization: which role may call which route, and which namespace rule the route follows
// (docs/security.md, "Roles and the route matrix" and "Namespace scoping").
//
// The matrix is one exhaustive switch over RouteId: a route added to net/router.h without an
// entry here does not compile (-Wswitch -Werror). The Api checks the role before anything else
// of a request (Api::Handle), then the namespace rule: the rules a route can be decided on from
// the route alone (kGlobal, kNamespace) here, the others in the handler, which knows the jobs the
// request touches. docs/security.md holds the same matrix as a table, and
// tests/unit/authz_test.cc reads that table and checks it against this code, cell by cell.
//
// Pure: no I/O; callable from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/job_filter.h"
#include "net/principal.h"
#include "net/router.h"

namespace ym::net {

// How a route is scoped for a token that does not have all namespaces. A token with all
// namespaces passes every rule.
enum class NsRule : std::uint8_t {
  kOpen,       // no namespace data: health checks
  kBody,       // enqueue: every job's namespace must be the token's, else 403 (nothing enqueued)
  kJob,        // a job id in the path: a job outside the token's namespaces is answered exactly
               // like a job that does not exist (404)
  kJobs,       // job ids in the body (acks:batch, dead:replay): ids outside the token's
               // namespaces are answered like ids that do not exist
  kFilter,     // a job search or bulk operation: limited to the token's namespaces; a
               // `namespace` naming another is 403
  kLease,      // a lease: only jobs of the token's namespaces
  kWorker,     // a cancel watch: only ids of jobs of the token's namespaces
  kNamespace,  // a namespace's configuration: the token's own namespaces only (else 403)
  kGlobal,     // state of every namespace (queues and their counts, limits, schedules, alerts,
               // metrics): tokens with all namespaces only (else 403)
};

std::string_view NsRuleName(NsRule rule);

// A bit per role (1 << Role).
using RoleSet = std::uint8_t;
inline constexpr RoleSet RoleBit(Role r) {
  return static_cast<RoleSet>(1u << static_cast<unsigned>(r));
}

struct RouteAccess {
  RoleSet roles = 0;
  NsRule ns = NsRule::kGlobal;
};

// The matrix: who may call `route`, and its namespace rule.
RouteAccess AccessFor(RouteId route);

inline bool RoleMay(Role role, RouteId route) {
  return (AccessFor(route).roles & RoleBit(role)) != 0;
}

// The checks a route alone decides, in order: the role (403 naming role and route), then for a
// token without all namespaces the kGlobal rule (403) and the kNamespace rule against `name`
// (the {name} of a namespace route). OK when the handler may go on (and apply the rules that
// need the request's jobs). The messages name the role and the route, never any data.
Status CheckRoute(const Principal& principal, RouteId route, std::string_view name = {});

// 403 for a namespace outside the token's (a job body or a `namespace` filter). The message
// names the namespace the request itself gave, nothing stored.
Status ForeignNamespace(std::string_view ns);

// Narrows a job search or bulk filter (kFilter) to the token's namespaces: a `namespace` the
// token has stays; one it has not is 403 (whether or not it exists); none given is the token's
// namespace when it has exactly one, else 403 asking for one (a filter holds one namespace).
// A token with all namespaces leaves the filter as it is.
Status ScopeJobFilter(const Principal& principal, JobFilter& filter);

// The namespaces a lease by this principal is limited to (LeaseRequest::namespaces): nullopt
// for a token with all namespaces.
inline std::optional<std::vector<std::string>> LeaseNamespaces(const Principal& principal) {
  if (principal.all_namespaces) return std::nullopt;
  return principal.namespaces;
}

// Queue names starting with this are the server's own (the alert deliveries, `_ym.alerts`):
// no request may enqueue into them, lease from them, or configure, pause, resume or reset them,
// or name them in a limit or a schedule; reads stay allowed.
inline constexpr std::string_view kReservedQueuePrefix = "_ym.";
inline bool IsReservedQueue(std::string_view queue) {
  return queue.substr(0, kReservedQueuePrefix.size()) == kReservedQueuePrefix;
}
// 403 naming the queue and the rule (`what`: "enqueue into", "lease from", ...).
Status ReservedQueue(std::string_view queue, std::string_view what);

}  // namespace ym::net
