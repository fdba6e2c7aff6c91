// `yardmaster audit ...`: the command-line definitions (CLI11) and their checks. Running them is
// in audit_run.cc, so that the CLI's parser (and its fuzz target) needs no store or server code.

#include <CLI/CLI.hpp>

#include "cli/audit.h"

namespace ym::cli {

void AuditCommands::Add(CLI::App* app, const std::function<void(CLI::App*)>& add_common,
                        Invocation* inv) {
  root_ = app->add_subcommand("audit",
                              "Read and verify the audit log of privileged actions "
                              "(docs/security.md, \"Audit log\")");
  add_common(root_);
  root_->require_subcommand(1);
  list_ = root_->add_subcommand("list", "List audit entries, oldest first (GET /v1/audit)");
  add_common(list_);
  list_->add_option("--after", inv->audit.after, "Only entries after this seq (default: 0)");
  list_->add_option("--limit,-l", inv->audit.limit, "Page size, 1..1000 (default: 100)")
      ->check(CLI::Range(1, 1000));
  list_->add_flag("--all,-a", inv->audit.all, "Follow the pages to the end");
  checkpoint_ = root_->add_subcommand(
      "checkpoint",
      "Print a checkpoint of the chain (seq, hash, time; signed when the server has a key) as "
      "JSON: keep it off the machine for `audit verify --checkpoint`");
  add_common(checkpoint_);
  verify_ = root_->add_subcommand(
      "verify",
      "Fetch the whole audit log and verify its hash chain here; exit 0 when intact, 6 with the "
      "first bad entry (\"entry N: modified|deleted|reordered|truncated|rewritten\")");
  add_common(verify_);
  verify_
      ->add_option("--checkpoint", inv->audit.checkpoint_file,
                   "A checkpoint saved by `audit checkpoint` (or from the server log): also "
                   "finds a truncated tail or a chain rewritten up to it")
      ->type_name("FILE");
  verify_
      ->add_option("--key-file", inv->audit.key_file,
                   "The server's audit_checkpoint_key_file: the checkpoint must be signed "
                   "with it")
      ->type_name("FILE");
  verify_
      ->add_option("--db", inv->audit.db,
                   "Read the store file (DATA_DIR/yardmaster.db) directly, read-only, instead "
                   "of asking the server; works while the server runs")
      ->type_name("PATH");
}

bool AuditCommands::parsed() const { return root_ != nullptr && root_->parsed(); }

Status AuditCommands::Finish(Invocation* inv) const {
  if (list_->parsed()) {
    inv->command = Command::kAuditList;
  } else if (checkpoint_->parsed()) {
    inv->command = Command::kAuditCheckpoint;
  } else {
    inv->command = Command::kAuditVerify;
    if (!inv->audit.key_file.empty() && inv->audit.checkpoint_file.empty()) {
      return Validation("audit verify: --key-file needs --checkpoint");
    }
  }
  return Status::Ok();
}

}  // namespace ym::cli
