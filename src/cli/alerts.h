// `yardmaster alerts`: the body of GET /v1/alerts (docs/api.md) as a table.
#pragma once

#include <ostream>
#include <string_view>

namespace ym::cli {

// One row per instance (a rule without instances shows one row with state "-"), then the
// delivery totals. Returns the exit code: kExitOk, or kExitServerError when the body is not the
// documented object (said on `err`).
int PrintAlerts(std::string_view body, std::ostream& out, std::ostream& err);

}  // namespace ym::cli
