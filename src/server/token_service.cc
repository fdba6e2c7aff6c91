#include "server/token_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>

#include "net/auth_token.h"
#include "obs/logging.h"

namespace ym {
namespace {

// How often the flusher looks for last-use times due (each token's is written at most once per
// kLastUsedPersistMs).
constexpr auto kFlushTick = std::chrono::seconds(5);
constexpr auto kCommitWait = std::chrono::seconds(30);

std::string Errno(int e) { return std::strerror(e); }

// Waits for a Broker commit; kUnavailable when it does not come within kCommitWait.
Status CommitAndWait(Broker& broker, std::vector<Mutation> mutations) {
  auto promise = std::make_shared<std::promise<Status>>();
  std::future<Status> done = promise->get_future();
  broker.CommitMutations(std::move(mutations),
                         [promise](Status s) { promise->set_value(std::move(s)); });
  if (done.wait_for(kCommitWait) != std::future_status::ready) {
    return Unavailable("the store did not commit within 30 s");
  }
  return done.get();
}

// Reads a bootstrap secret file: refused when group or others may read it, or when it does not
// hold one strong secret (trailing whitespace ignored).
Result<std::string> ReadSecretFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return InvalidRequest("auth_bootstrap_token_file " + path + ": " + Errno(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return InvalidRequest("auth_bootstrap_token_file " + path + ": " + Errno(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidRequest("auth_bootstrap_token_file " + path + ": not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    return InvalidRequest("auth_bootstrap_token_file " + path +
                          ": readable or writable by group or others; chmod 600 it");
  }
  std::string text;
  char buf[256];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > 4096) break;
  }
  ::close(fd);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.pop_back();
  }
  if (!net::IsStrongSecret(text)) {
    return InvalidRequest("auth_bootstrap_token_file " + path +
                          ": does not hold one API token secret (ym_ and 43 random base64url "
                          "characters, as `yardmaster tokens new-secret` prints)");
  }
  return text;
}

// Writes the secret to a new file (never an existing one), mode 0600, and syncs it and its
// directory.
Status WriteSecretFile(const std::string& dir, const std::string& path, const std::string& secret) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return IoError("cannot create " + path + ": " + Errno(errno));
  const std::string line = secret + "\n";
  std::size_t off = 0;
  Status st;
  while (off < line.size()) {
    ssize_t n = ::write(fd, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = IoError("cannot write " + path + ": " + Errno(errno));
      break;
    }
    off += static_cast<std::size_t>(n);
  }
  if (st.ok() && ::fchmod(fd, 0600) != 0)
    st = IoError("cannot chmod " + path + ": " + Errno(errno));
  if (st.ok() && ::fsync(fd) != 0) st = IoError("cannot fsync " + path + ": " + Errno(errno));
  ::close(fd);
  if (st.ok()) {
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      if (::fsync(dfd) != 0) st = IoError("cannot fsync " + dir + ": " + Errno(errno));
      ::close(dfd);
    }
  }
  if (!st.ok()) ::unlink(path.c_str());
  return st;
}

}  // namespace

TokenService::TokenService(Broker& broker, const Clock& clock) : broker_(broker), clock_(clock) {}

TokenService::~TokenService() { Stop(); }

void TokenService::Load(const std::vector<ApiTokenRow>& rows) {
  for (const ApiTokenRow& row : rows) {
    if (Status s = book_.Load(row); !s.ok()) {
      YM_LOG(err, kServer)
          .Str("token_id", row.id)
          .Msg("stored API token {} cannot be used: {}", row.id, s.message());
    }
  }
}

void TokenService::Create(net::TokenSpec spec, std::function<void(Result<net::CreatedToken>)> done,
                          AuditNote audit) {
  const std::int64_t now = clock_.NowMs();
  std::optional<std::int64_t> expires_at = spec.expires_at_ms;
  if (spec.expires_in_ms) expires_at = now + *spec.expires_in_ms;
  if (expires_at && *expires_at <= now) {
    return done(Validation("field \"expires_at\": must be in the future"));
  }
  auto secret = net::NewTokenSecret();
  if (!secret.ok()) return done(secret.status());
  std::string id;
  for (int attempt = 0; attempt < 4 && id.empty(); ++attempt) {
    auto fresh = net::NewTokenId();
    if (!fresh.ok()) return done(fresh.status());
    if (!book_.HasId(*fresh)) id = std::move(fresh).value();
  }
  if (id.empty()) return done(Internal("could not pick an unused token id"));
  if (Status r = book_.Reserve(spec.name); !r.ok()) return done(r);
  ApiTokenRow row;
  row.id = id;
  row.name = spec.name;
  row.hash = net::HashSecret(*secret);
  row.role = std::string(net::RoleName(spec.role));
  row.namespaces_json = net::NamespacesToJson(spec.all_namespaces, spec.namespaces);
  row.created_at_ms = now;
  row.expires_at_ms = expires_at;
  std::vector<Mutation> m;
  m.emplace_back(PutApiToken{row});
  if (audit.enabled) {
    // Never the secret or its hash.
    audit.detail = "{\"id\":\"" + row.id + "\",\"role\":\"" + row.role +
                   "\",\"namespaces\":" + row.namespaces_json + ",\"expires_at\":" +
                   (expires_at ? std::to_string(*expires_at) : std::string("null")) + "}";
    m.emplace_back(AppendAudit{audit.ToEntry(now)});
  }
  broker_.CommitMutations(std::move(m), [this, row, secret = std::move(secret).value(),
                                         done = std::move(done)](Status s) mutable {
    if (!s.ok()) {
      book_.Unreserve(row.name);
      return done(s);
    }
    if (Status in = book_.Insert(row); !in.ok()) return done(in);
    YM_LOG(info, kServer)
        .Str("token_id", row.id)
        .Str("token_name", row.name)
        .Str("role", row.role)
        .Msg("API token {} ({}) created with role {}", row.name, row.id, row.role);
    net::CreatedToken created;
    created.info = *book_.FindByName(row.name);
    created.secret = std::move(secret);
    done(std::move(created));
  });
}

void TokenService::Revoke(std::string id, std::function<void(Result<net::RevokedToken>)> done,
                          AuditNote audit) {
  bool changed = false;
  auto info =
      net::IsWellFormedTokenId(id) ? book_.Revoke(id, clock_.NowMs(), &changed) : std::nullopt;
  if (!info) return done(NotFound("no API token has id " + id.substr(0, 64)));
  net::RevokedToken out{*info, changed};
  std::vector<Mutation> m;
  m.emplace_back(RevokeApiToken{info->id, *info->revoked_at_ms});
  if (audit.enabled && changed) {
    audit.detail = "{\"id\":\"" + info->id + "\",\"name\":\"" + info->name + "\"}";
    m.emplace_back(AppendAudit{audit.ToEntry(*info->revoked_at_ms)});
  }
  broker_.CommitMutations(std::move(m),
                          [out = std::move(out), done = std::move(done)](Status s) mutable {
                            if (!s.ok()) return done(s);
                            if (out.revoked_now) {
                              YM_LOG(info, kServer)
                                  .Str("token_id", out.info.id)
                                  .Str("token_name", out.info.name)
                                  .Msg("API token {} ({}) revoked", out.info.name, out.info.id);
                            }
                            done(std::move(out));
                          });
}

Result<net::CreatedToken> TokenService::CreateNow(const std::string& name,
                                                  const std::string& secret) {
  auto id = net::NewTokenId();
  if (!id.ok()) return id.status();
  YM_RETURN_IF_ERROR(book_.Reserve(name));
  ApiTokenRow row;
  row.id = *id;
  row.name = name;
  row.hash = net::HashSecret(secret);
  row.role = std::string(net::RoleName(net::Role::kAdmin));
  row.namespaces_json = net::NamespacesToJson(true, {});
  row.created_at_ms = clock_.NowMs();
  std::vector<Mutation> m;
  m.emplace_back(PutApiToken{row});
  if (Status s = CommitAndWait(broker_, std::move(m)); !s.ok()) {
    book_.Unreserve(name);
    return s;
  }
  YM_RETURN_IF_ERROR(book_.Insert(row));
  net::CreatedToken out;
  out.info = *book_.FindByName(name);
  out.secret = secret;
  return out;
}

Status TokenService::Bootstrap(const std::string& data_dir, const std::string& bootstrap_file) {
  if (!bootstrap_file.empty()) {
    auto secret = ReadSecretFile(bootstrap_file);
    if (!secret.ok()) return secret.status();
    if (book_.HasSecret(*secret)) {
      // Its token must still be a usable admin: a revoked or expired one is not brought back.
      net::TokenBook::Outcome o = book_.Authenticate(*secret, clock_.NowMs());
      if (o.failure != net::AuthFailure::kNone || o.principal.role != net::Role::kAdmin) {
        return InvalidRequest("auth_bootstrap_token_file " + bootstrap_file +
                              ": its token is revoked, expired or not an admin; give a new "
                              "secret or remove the setting");
      }
      YM_LOG(info, kServer)
          .Str("token_name", o.principal.token_name)
          .Msg("bootstrap admin token from {} exists ({})", bootstrap_file, o.principal.token_name);
      return Status::Ok();
    }
    std::string name = kBootstrapTokenName;
    if (book_.FindByName(name)) {
      auto suffix = net::NewTokenId();
      if (!suffix.ok()) return suffix.status();
      name += "-" + suffix->substr(0, 8);
    }
    auto created = CreateNow(name, *secret);
    if (!created.ok()) return created.status();
    YM_LOG(warn, kServer)
        .Str("token_name", name)
        .Msg("created admin API token {} from {}", name, bootstrap_file);
    return Status::Ok();
  }
  if (book_.size() > 0) return Status::Ok();
  const std::string path = data_dir + "/" + kAdminTokenFile;
  auto secret = net::NewTokenSecret();
  if (!secret.ok()) return secret.status();
  // The file first: a token whose secret nobody has would lock everyone out.
  if (Status w = WriteSecretFile(data_dir, path, *secret); !w.ok()) {
    return InvalidRequest(w.message() + (::access(path.c_str(), F_OK) == 0
                                             ? " (it exists although no API token does: it is "
                                               "never overwritten; move it away)"
                                             : ""));
  }
  auto created = CreateNow(kBootstrapTokenName, *secret);
  if (!created.ok()) {
    ::unlink(path.c_str());
    return created.status();
  }
  YM_LOG(warn, kServer)
      .Str("path", path)
      .Msg(
          "no API token existed: created admin token {} and wrote its secret to {} (mode 0600); "
          "use it to create your own tokens, then delete the file",
          kBootstrapTokenName, path);
  return Status::Ok();
}

void TokenService::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return;
  started_ = true;
  flusher_ = std::thread([this] {
    std::unique_lock<std::mutex> lk(mu_);
    while (!stop_) {
      cv_.wait_for(lk, kFlushTick, [this] { return stop_; });
      if (stop_) break;
      lk.unlock();
      FlushLastUsed(false);
      lk.lock();
    }
  });
}

void TokenService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  FlushLastUsed(true);
}

void TokenService::FlushLastUsed(bool all) {
  auto due = book_.TakeLastUsedToPersist(clock_.NowMs(), all ? 0 : kLastUsedPersistMs);
  if (due.empty()) return;
  std::vector<Mutation> m;
  m.emplace_back(TouchApiTokens{std::move(due)});
  if (Status s = CommitAndWait(broker_, std::move(m)); !s.ok()) {
    YM_LOG(warn, kServer).Msg("API tokens' last-use times not written: {}", s.message());
  }
}

}  // namespace ym
