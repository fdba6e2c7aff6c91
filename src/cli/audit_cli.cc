// `yardmaster audit ...` (cli/audit.h).
#include <CLI/CLI.hpp>
#include <fstream>
#include <ostream>
#include <sstream>

#include "cli/audit.h"
#include "cli/format.h"
#include "net/codec_audit.h"
#include "server/audit_checkpoints.h"
#include "store/audit_chain.h"
#include "store/sqlite_store.h"

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

namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidRequest("cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

int RunAudit(const Invocation& inv, client::ApiClient& api, std::ostream& out, std::ostream& err,
             const std::function<int(const Status&, const client::ApiClient&)>& fail) {
  // One page of GET /v1/audit.
  auto page = [&](std::uint64_t after, std::uint32_t limit) -> Result<net::AuditPage> {
    auto body = api.AuditPage(after, limit);
    if (!body.ok()) return body.status();
    return net::ParseAuditPage(*body);
  };

  if (inv.command == Command::kAuditCheckpoint) {
    auto body = api.AuditCheckpoint();
    if (!body.ok()) return fail(body.status(), api);
    out << *body << '\n';
    return kExitOk;
  }

  if (inv.command == Command::kAuditList) {
    Table table({"seq", "at", "actor", "action", "target", "from", "request_id", "detail"}, {true});
    std::uint64_t after = inv.audit.after;
    for (;;) {
      auto p = page(after, inv.audit.limit);
      if (!p.ok()) return fail(p.status(), api);
      for (const audit::Entry& e : p->entries) {
        if (inv.json) {
          out << net::RenderAuditEntry(e) << '\n';
        } else {
          table.AddRow({std::to_string(e.seq), FormatTime(e.at_ms), e.actor, e.action, e.target,
                        e.remote.empty() ? "-" : e.remote, e.request_id, Clip(e.detail, 60)});
        }
      }
      if (!inv.audit.all || !p->next_after || *p->next_after <= after) {
        if (!inv.json) {
          table.Print(out);
          if (p->next_after) err << "more: continue with --after " << *p->next_after << '\n';
        }
        return kExitOk;
      }
      after = *p->next_after;
    }
  }

  // verify
  audit::VerifyOptions options;
  if (!inv.audit.checkpoint_file.empty()) {
    auto text = ReadFile(inv.audit.checkpoint_file);
    if (!text.ok()) {
      err << "error: " << text.status().message() << '\n';
      return kExitUsage;
    }
    std::string why;
    options.checkpoint = audit::CheckpointFromJson(*text, &why);
    if (!options.checkpoint) {
      err << "error: " << inv.audit.checkpoint_file << ": " << why << '\n';
      return kExitUsage;
    }
  }
  if (!inv.audit.key_file.empty()) {
    auto key = AuditCheckpoints::LoadKey(inv.audit.key_file);
    if (!key.ok()) {
      err << "error: " << key.status().message() << '\n';
      return kExitUsage;
    }
    options.key = std::move(key).value();
  }
  std::vector<audit::Entry> entries;
  std::string source;
  if (!inv.audit.db.empty()) {
    auto read = ReadAuditLogFile(inv.audit.db);
    if (!read.ok()) {
      err << "error: " << read.status().ToString() << '\n';
      return kExitServerError;
    }
    entries = std::move(read).value();
    source = inv.audit.db;
  } else {
    // Page by page; the server is not trusted: whatever it leaves out or reorders breaks the
    // chain below. A cursor that does not move forward ends the walk.
    std::uint64_t after = 0;
    for (;;) {
      auto p = page(after, 1000);
      if (!p.ok()) return fail(p.status(), api);
      for (audit::Entry& e : p->entries) entries.push_back(std::move(e));
      if (!p->next_after || *p->next_after <= after) break;
      after = *p->next_after;
    }
    source = inv.server_url;
  }
  const audit::Finding f = audit::Verify(entries, options);
  if (!f.ok()) {
    out << "audit log of " << source << ": " << f.message << '\n';
    return kExitAuditBroken;
  }
  if (inv.json) {
    out << "{\"intact\":true,\"entries\":" << entries.size()
        << ",\"last_seq\":" << (entries.empty() ? 0 : entries.back().seq) << ",\"last_hash\":\""
        << (entries.empty() ? audit::ToHex(audit::Hash{}) : audit::ToHex(entries.back().hash))
        << "\",\"checkpoint\":" << (options.checkpoint ? "true" : "false") << "}\n";
    return kExitOk;
  }
  out << "audit log of " << source << ": intact, " << entries.size()
      << (entries.size() == 1 ? " entry" : " entries");
  if (!entries.empty()) out << " (last " << entries.back().seq << ")";
  if (options.checkpoint) {
    out << "; matches the checkpoint at " << options.checkpoint->seq
        << (options.key ? " (signature valid)" : "");
  } else {
    out << "; without a checkpoint a removed tail cannot be detected";
  }
  out << '\n';
  return kExitOk;
}

}  // namespace ym::cli
