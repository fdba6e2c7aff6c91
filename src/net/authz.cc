#include "net/authz.h"

#include <string>

namespace ym::net {
namespace {

constexpr RoleSet kA = RoleBit(Role::kAdmin);
constexpr RoleSet kO = RoleBit(Role::kOperator);
constexpr RoleSet kP = RoleBit(Role::kProducer);
constexpr RoleSet kW = RoleBit(Role::kWorker);
constexpr RoleSet kV = RoleBit(Role::kViewer);
constexpr RoleSet kAll = kA | kO | kP | kW | kV;

}  // namespace

std::string_view NsRuleName(NsRule rule) {
  switch (rule) {
    case NsRule::kOpen:
      return "open";
    case NsRule::kBody:
      return "body";
    case NsRule::kJob:
      return "job";
    case NsRule::kJobs:
      return "jobs";
    case NsRule::kFilter:
      return "filter";
    case NsRule::kLease:
      return "lease";
    case NsRule::kWorker:
      return "worker";
    case NsRule::kNamespace:
      return "namespace";
    case NsRule::kGlobal:
      return "global";
  }
  return "global";
}

// The cells follow docs/security.md ("Roles and the route matrix"), which says why each is so.
RouteAccess AccessFor(RouteId route) {
  switch (route) {
    // Producing: producers (and operators and admins) enqueue; a producer may follow and
    // withdraw what it produced, so it reads its namespaces' jobs and may cancel them, but it
    // does not replay or bulk-change them.
    case RouteId::kEnqueue:
    case RouteId::kEnqueueBatch:
      return {kA | kO | kP, NsRule::kBody};
    case RouteId::kCancelJob:
      return {kA | kO | kP, NsRule::kJob};
    case RouteId::kListJobs:
    case RouteId::kListDead:
      return {kA | kO | kP | kV, NsRule::kFilter};
    case RouteId::kGetJob:
      return {kAll, NsRule::kJob};
    case RouteId::kReplayJob:
      return {kA | kO, NsRule::kJob};
    case RouteId::kBulkCancel:
    case RouteId::kBulkReplay:
    case RouteId::kBulkDelete:
      return {kA | kO, NsRule::kFilter};
    case RouteId::kReplayDead:
      return {kA | kO, NsRule::kJobs};
    // Working: workers (and operators and admins, who may run one).
    case RouteId::kLease:
      return {kA | kO | kW, NsRule::kLease};
    case RouteId::kHeartbeat:
    case RouteId::kAck:
    case RouteId::kFail:
      return {kA | kO | kW, NsRule::kJob};
    case RouteId::kCompleteBatch:
      return {kA | kO | kW, NsRule::kJobs};
    case RouteId::kWatchCancels:
      return {kA | kO | kW, NsRule::kWorker};
    // Configuration: read by viewers, changed by operators and admins; every namespace's state.
    case RouteId::kListQueues:
    case RouteId::kGetQueue:
    case RouteId::kListLimits:
    case RouteId::kGetLimit:
    case RouteId::kListNamespaces:
    case RouteId::kListSchedules:
    case RouteId::kGetSchedule:
    case RouteId::kListAlerts:
    case RouteId::kMetrics:
      return {kA | kO | kV, NsRule::kGlobal};
    case RouteId::kGetNamespace:
      return {kA | kO | kV, NsRule::kNamespace};
    // A namespace's jobs as JSON lines: the same readers as GET /v1/jobs, for the namespace in
    // the path (a tenant's producer or viewer token may take its own data out).
    case RouteId::kExportNamespace:
      return {kA | kO | kP | kV, NsRule::kNamespace};
    // Erasing a tenant's data: admins only, of that namespace (or all).
    case RouteId::kWipeNamespace:
      return {kA, NsRule::kNamespace};
    case RouteId::kPutQueue:
    case RouteId::kPauseQueue:
    case RouteId::kResumeQueue:
    case RouteId::kResetQueue:
    case RouteId::kPutLimit:
    case RouteId::kDeleteLimit:
    case RouteId::kResetBreaker:
    case RouteId::kPutNamespace:
    case RouteId::kDeleteNamespace:
    case RouteId::kCreateSchedule:
    case RouteId::kPutSchedule:
    case RouteId::kPatchSchedule:
    case RouteId::kDeleteSchedule:
    case RouteId::kPauseSchedule:
    case RouteId::kResumeSchedule:
    case RouteId::kTriggerSchedule:
    case RouteId::kBackfillSchedule:
      return {kA | kO, NsRule::kGlobal};
    // API tokens: admins of all namespaces only (a token scoped to some namespaces that could
    // create tokens could create one for every namespace).
    case RouteId::kListTokens:
    case RouteId::kCreateToken:
    case RouteId::kRevokeToken:
      return {kA, NsRule::kGlobal};
    // The audit log records every namespace's privileged actions: admins and operators.
    case RouteId::kListAudit:
    case RouteId::kAuditCheckpoint:
      return {kA | kO, NsRule::kGlobal};
    // The server itself: its version and totals over every namespace.
    case RouteId::kInfo:
      return {kAll, NsRule::kGlobal};
    // Probes stay open to every principal.
    case RouteId::kHealthz:
    case RouteId::kLivez:
    case RouteId::kReadyz:
      return {kAll, NsRule::kOpen};
    case RouteId::kUnmatched:
      return {0, NsRule::kGlobal};
  }
  return {0, NsRule::kGlobal};
}

Status CheckRoute(const Principal& principal, RouteId route, std::string_view name) {
  const RouteAccess access = AccessFor(route);
  if ((access.roles & RoleBit(principal.role)) == 0) {
    return Forbidden("role " + std::string(RoleName(principal.role)) + " may not call " +
                     std::string(RouteLabel(route)) + " (docs/security.md, \"Roles\")");
  }
  if (principal.all_namespaces) return Status::Ok();
  if (access.ns == NsRule::kGlobal) {
    return Forbidden(std::string(RouteLabel(route)) +
                     " reads or changes state shared by every namespace: it needs a token with "
                     "all namespaces (docs/security.md, \"Namespace scoping\")");
  }
  if (access.ns == NsRule::kNamespace && !principal.CanUseNamespace(name)) {
    // The name comes from the path and is not validated yet: not echoed.
    return Forbidden(
        "this token may not use that namespace (docs/security.md, \"Namespace "
        "scoping\")");
  }
  return Status::Ok();
}

Status ForeignNamespace(std::string_view ns) {
  return Forbidden("this token may not use namespace " + std::string(ns) +
                   " (docs/security.md, \"Namespace scoping\")");
}

Status ScopeJobFilter(const Principal& principal, JobFilter& filter) {
  if (principal.all_namespaces) return Status::Ok();
  if (!filter.ns.empty()) {
    return principal.CanUseNamespace(filter.ns) ? Status::Ok() : ForeignNamespace(filter.ns);
  }
  if (principal.namespaces.size() == 1) {
    filter.ns = principal.namespaces.front();
    return Status::Ok();
  }
  return Forbidden(
      "this token has several namespaces: name one of them with \"namespace\" "
      "(docs/security.md, \"Namespace scoping\")");
}

Status ReservedQueue(std::string_view queue, std::string_view what) {
  return Forbidden("may not " + std::string(what) + " queue " + std::string(queue) +
                   ": names starting with " + std::string(kReservedQueuePrefix) +
                   " are reserved for the server's own queues (docs/security.md, \"Reserved "
                   "queue names\")");
}

}  // namespace ym::net
