#include "server/audit_checkpoints.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "obs/logging.h"

namespace ym {

AuditCheckpoints::AuditCheckpoints(const Clock& clock, std::uint64_t every,
                                   std::optional<std::string> key)
    : clock_(clock), every_(every), key_(std::move(key)) {}

audit::Checkpoint AuditCheckpoints::Make(const audit::Head& head) const {
  audit::Checkpoint cp;
  cp.seq = head.seq;
  cp.hash = head.hash;
  cp.at_ms = clock_.NowMs();
  if (key_) cp.mac = audit::SignCheckpoint(cp, *key_);
  return cp;
}

void AuditCheckpoints::OnCommitted(const audit::Head& head) {
  if (every_ == 0) return;
  const std::uint64_t period = head.seq / every_;
  if (period <= last_period_) return;
  last_period_ = period;
  const audit::Checkpoint cp = Make(head);
  logged_.fetch_add(1, std::memory_order_relaxed);
  YM_LOG(info, kStore)
      .Uint("audit_seq", cp.seq)
      .Str("audit_checkpoint", audit::CheckpointToJson(cp))
      .Msg("audit checkpoint at entry {}: {}", cp.seq, audit::CheckpointToJson(cp));
}

Result<std::string> AuditCheckpoints::LoadKey(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return InvalidRequest("audit_checkpoint_key_file " + path + ": cannot be read");
  }
  if ((st.st_mode & S_IROTH) != 0) {
    return InvalidRequest("audit_checkpoint_key_file " + path +
                          " is readable by every user; chmod o-r (0600 is best)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidRequest("audit_checkpoint_key_file " + path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  std::string key = text.str();
  if (!key.empty() && key.back() == '\n') key.pop_back();
  if (!key.empty() && key.back() == '\r') key.pop_back();
  if (key.size() < 16) {
    return InvalidRequest("audit_checkpoint_key_file " + path +
                          " holds fewer than 16 bytes; use a long random key");
  }
  return key;
}

}  // namespace ym
