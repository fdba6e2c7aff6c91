// `yardmaster audit ...`: read and verify the audit log (docs/cli.md, "audit";
// docs/security.md, "Audit log").
//
//   audit list        GET /v1/audit, oldest first (--after SEQ, --limit N, --all)
//   audit checkpoint  GET /v1/audit/checkpoint: JSON to keep somewhere else
//   audit verify      fetches the whole chain page by page (or reads the store file with
//                     --db PATH, read-only, while the server runs) and verifies it here, from
//                     the entries alone (and --checkpoint FILE, --key-file FILE when given):
//                     exit 0 when intact, kExitAuditBroken with "entry N: <problem> (...)".
//
// The parse half registers the subcommands (ParseCommandLine calls Add before parsing and
// Finish after); the run half executes a parsed audit Invocation. Internal to src/cli.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>

#include "cli/cli.h"
#include "client/api_client.h"
#include "common/status.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace ym::cli {

// `audit verify` found the chain broken (or the checkpoint bad).
inline constexpr int kExitAuditBroken = 6;

class AuditCommands {
 public:
  void Add(CLI::App* app, const std::function<void(CLI::App*)>& add_common, Invocation* inv);
  bool parsed() const;
  // Sets inv->command; a usage error for what CLI11 cannot check.
  Status Finish(Invocation* inv) const;

 private:
  CLI::App* root_ = nullptr;
  CLI::App *list_ = nullptr, *checkpoint_ = nullptr, *verify_ = nullptr;
};

int RunAudit(const Invocation& inv, client::ApiClient& api, std::ostream& out, std::ostream& err,
             const std::function<int(const Status&, const client::ApiClient&)>& fail);

}  // namespace ym::cli
