// The `[[alerts]]` tables of the server's config file (docs/operations.md, "Alerts"), turned
// into validated rules. Called by LoadServerConfig (server/config.cc); nothing here starts
// anything.
//
//   [[alerts]]
//   name = "billing-lag"                         # required, unique, [A-Za-z0-9_.:-]{1,64}
//   queue = "billing"                            # optional; absent or "*": every queue
//   condition = "lag_seconds > 30 for 1m"        # required (obs/alerts/rule.h)
//   webhooks = ["http://127.0.0.1:9000/hook"]    # required, 1..8 http:// URLs
//   headers = { Authorization = "Bearer ..." }   # optional, sent with every POST
//
// Errors are kInvalidRequest naming the file, the table, the rule and the field, e.g.
// `ym.toml: alerts[1] (billing-lag).condition: unknown measure "depth"; one of ...`.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "obs/alerts/rule.h"

namespace ym {

// `node` is the value of the file's `alerts` key; `config_path` names the file in errors.
Result<std::vector<alerts::AlertRule>> ParseAlertTables(const toml::node& node,
                                                        const std::string& config_path);

}  // namespace ym
