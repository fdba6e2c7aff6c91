// The audit log's wire format (docs/api.md, "Audit log"): GET /v1/audit's query and page, and
// the entries as the CLI reads them back to verify the chain client-side. Every field is
// rendered exactly as stored (the detail as a JSON string holding its text, the hashes as hex),
// so a client recomputes each hash from the reply alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/audit_chain.h"

namespace ym::net {

struct AuditListQuery {
  std::uint64_t after = 0;    // entries with seq > after
  std::uint32_t limit = 100;  // 1..1000
};

// `after` (a seq, default 0) and `limit` (1..1000, default 100); anything else is a 400.
Result<AuditListQuery> ParseAuditListQuery(std::string_view query);

// {"entries":[{seq, at_ms, actor, action, target, remote, request_id, detail, prev_hash, hash}],
//  "next_after": seq or null}. `next_after` is the last seq when the page is full (there may be
// more), null when it is not.
std::string RenderAuditPage(const std::vector<audit::Entry>& entries, std::uint32_t limit);

struct AuditPage {
  std::vector<audit::Entry> entries;
  std::optional<std::uint64_t> next_after;
};
// The client side of RenderAuditPage; kInvalidJson / kValidation naming what is wrong.
Result<AuditPage> ParseAuditPage(std::string_view body);

// One entry as a JSON object (the CLI's `audit list` prints these, one per line).
std::string RenderAuditEntry(const audit::Entry& e);

}  // namespace ym::net
