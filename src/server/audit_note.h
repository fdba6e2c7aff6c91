// AuditNote: what the Api knows of a privileged request, handed to the Broker method that
// carries it out so that the audit entry (store/audit_chain.h) is committed in the same
// transaction as the action, and only when it succeeds (docs/security.md, "Audit log").
//
// The Api fills who (the principal's token name, or audit::kAnonymousActor while
// authentication is off), from where, the request id, the action ("queue.pause") and its target
// ("queue emails"); the Broker may add to `detail` what only it knows (a bulk operation's
// counts). A default-constructed note is not audited: internal calls and tests pass none.
// Plain data; never holds a payload or a secret.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "store/audit_chain.h"

namespace ym {

struct AuditNote {
  bool enabled = false;
  std::string actor;
  std::string remote;
  std::string request_id;
  std::string action;
  std::string target;
  std::string detail = "{}";  // a JSON object

  // The entry to seal, stamped `at_ms` (seq and hashes are the store's to assign).
  audit::Entry ToEntry(std::int64_t at_ms) const {
    audit::Entry e;
    e.at_ms = at_ms;
    e.actor = actor;
    e.action = action;
    e.target = target;
    e.remote = remote;
    e.request_id = request_id;
    e.detail = detail;
    return e;
  }
};

}  // namespace ym
