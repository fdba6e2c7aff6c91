#include "server/server_main.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>

#include "common/build_info.h"
#include "common/clock.h"
#include "net/codec_schedules.h"
#include "net/http_server.h"
#include "obs/logging.h"
#include "obs/metrics.h"
#include "server/alert_service.h"
#include "server/audit_checkpoints.h"
#include "server/broker.h"
#include "server/config.h"
#include "server/listen_check.h"
#include "server/log_config.h"
#include "server/probes.h"
#include "store/store.h"

namespace ym {
namespace {

// Exit codes: 0 clean stop, 1 could not start or run, 2 bad configuration (usage).
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// Holds an exclusive flock on DATA_DIR/LOCK for the life of the process, so two servers can
// never write the same store (SQLite's own locking would let them interleave commits and
// corrupt each other's view of live jobs).
class DataDirLock {
 public:
  Status Acquire(const std::string& dir) {
    const std::string path = dir + "/LOCK";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return IoError("cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      return Unavailable("another yardmaster server is using " + dir + " (" + path + " is locked)");
    }
    return Status::Ok();
  }
  ~DataDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

// `loopback`: the listen address is reachable only from this machine (ListenIsLoopbackOnly).
int Run(const ServerConfig& cfg, bool loopback) {
  // Block the stop signals in every thread (the mask is inherited by threads created below), so
  // that the main thread alone receives them, synchronously, through sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // SIGHUP reloads the TLS certificate and key (docs/security.md); without TLS it is logged and
  // ignored. It is waited for with the stop signals, so it never interrupts anything else.
  sigset_t wait_signals = stop_signals;
  sigaddset(&wait_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &wait_signals, nullptr);
  // A client that closes its socket mid-write must not kill the server.
  signal(SIGPIPE, SIG_IGN);
  // A write past RLIMIT_FSIZE must fail with EFBIG (the store then goes read-only and recovers
  // when the limit is raised, docs/operations.md), not kill the process with SIGXFSZ.
  signal(SIGXFSZ, SIG_IGN);

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) {
    YM_LOG(critical, kServer)
        .Msg("cannot create data directory {}: {}", cfg.data_dir, ec.message());
    return kExitFailure;
  }
  DataDirLock lock;
  if (Status s = lock.Acquire(cfg.data_dir); !s.ok()) {
    YM_LOG(critical, kServer).Msg("{}", s.message());
    return kExitFailure;
  }

  SqliteOptions sopts;
  sopts.path = cfg.data_dir + "/yardmaster.db";
  sopts.durability = cfg.durability;
  auto store = OpenSqliteStore(sopts);
  if (!store.ok()) {
    YM_LOG(critical, kServer)
        .Msg("cannot open store {}: {}", sopts.path, store.status().ToString());
    return kExitFailure;
  }

  SystemClock clock;
  // Audit checkpoints (server/audit_checkpoints.h): the key is read once, at start.
  std::optional<std::string> audit_key;
  if (!cfg.audit_checkpoint_key_file.empty()) {
    auto key = AuditCheckpoints::LoadKey(cfg.audit_checkpoint_key_file);
    if (!key.ok()) {
      YM_LOG(critical, kServer).Msg("{}", key.status().message());
      return kExitUsage;
    }
    audit_key = std::move(key).value();
  }
  AuditCheckpoints checkpoints(clock, cfg.audit_checkpoint_every, std::move(audit_key));
  checkpoints.Prime((*store)->AuditHead());
  BrokerOptions bopts;
  bopts.on_audit_committed = [&checkpoints](const audit::Head& head) {
    checkpoints.OnCommitted(head);
  };
  bopts.scheduler = cfg.scheduler;
  bopts.lease_reply_after_commit = cfg.lease_reply_after_commit;
  bopts.max_queued_commands = cfg.max_queued_commands;
  bopts.completion_margin = cfg.completion_margin;
  bopts.liveness_deadline_ms = cfg.liveness_deadline_ms;
  bopts.metrics_max_label_sets = cfg.metrics_max_label_sets;
  Broker broker(**store, clock, bopts);
  // The store is replayed into core before the listener opens (STYLE.md rule 5).
  if (Status s = broker.Start(); !s.ok()) {
    YM_LOG(critical, kServer).Msg("recovery failed: {}", s.ToString());
    return kExitFailure;
  }

  // The config file's [[limits]], created or replaced before the listener opens. Stored limits
  // absent from the file are kept: the API is the source of truth, the file only adds.
  for (const flow::LimitSpec& spec : cfg.limits) {
    std::promise<Status> put;
    broker.GetLimit(spec.name, [&](Result<flow::LimitInfo> got) {
      if (got.ok() && got->spec == spec) return put.set_value(Status::Ok());  // unchanged
      broker.PutLimit(spec, [&](Result<flow::LimitInfo> r) {
        if (r.ok())
          YM_LOG(info, kServer)
              .Str("limit", spec.name)
              .Msg("limit {} {} from the config file", spec.name,
                   r->created ? "created" : "replaced");
        put.set_value(r.status());
      });
    });
    if (Status s = put.get_future().get(); !s.ok()) {
      YM_LOG(critical, kServer).Msg("config file: limit {}: {}", spec.name, s.ToString());
      return kExitFailure;
    }
  }

  // The config file's [[namespaces]], the same way.
  for (const flow::NamespaceSpec& spec : cfg.namespaces) {
    std::promise<Status> put;
    broker.GetNamespace(spec.name, [&](Result<flow::NamespaceInfo> got) {
      if (got.ok() && got->spec == spec) return put.set_value(Status::Ok());  // unchanged
      broker.PutNamespace(spec, [&](Result<flow::NamespaceInfo> r) {
        if (r.ok())
          YM_LOG(info, kServer)
              .Str("namespace", spec.name)
              .Msg("namespace {} {} from the config file", spec.name,
                   r->created ? "created" : "replaced");
        put.set_value(r.status());
      });
    });
    if (Status s = put.get_future().get(); !s.ok()) {
      YM_LOG(critical, kServer).Msg("config file: namespace {}: {}", spec.name, s.ToString());
      return kExitFailure;
    }
  }

  // The config file's [[schedules]], parsed by the API's own parser (as a POST body) and
  // reconciled the same way: created, replaced when the spec changed (cursor and history are
  // kept, so the change applies from the next window), left alone when equal.
  for (const ServerConfig::ScheduleTable& table : cfg.schedules) {
    net::CodecLimits limits;
    limits.max_payload_bytes = cfg.max_payload_bytes;
    Result<ScheduleUpdate> parsed = net::ParseScheduleCreate(table.json, limits);
    if (!parsed.ok()) {
      YM_LOG(critical, kServer)
          .Msg("config file: {} ({}): {}", table.where, table.id, parsed.status().message());
      return kExitFailure;
    }
    std::promise<Status> put;
    broker.GetSchedule(table.id, 0, [&](Result<ScheduleView> got) {
      const bool exists = got.ok();
      if (exists && got->schedule.spec.json == parsed->spec.json &&
          (!parsed->paused || *parsed->paused == got->schedule.state.paused)) {
        return put.set_value(Status::Ok());  // unchanged
      }
      auto answer = [&, exists](Result<ScheduleView> r) {
        if (r.ok()) {
          YM_LOG(info, kServer)
              .Str("schedule", table.id)
              .Msg("schedule {} {} from the config file", table.id,
                   exists ? "replaced" : "created");
        }
        put.set_value(r.status());
      };
      if (exists) {
        broker.ReplaceSchedule(std::move(parsed).value(), answer);
      } else {
        broker.CreateSchedule(std::move(parsed).value(), answer);
      }
    });
    if (Status st = put.get_future().get(); !st.ok()) {
      YM_LOG(critical, kServer)
          .Msg("config file: {} ({}): {}", table.where, table.id, st.ToString());
      return kExitFailure;
    }
  }

  // The config file's [[alerts]]: their state is rebuilt from the delivery jobs before the
  // listener opens, so GET /v1/alerts never shows a firing alert as inactive after a restart.
  GaugeSampleSource alert_samples(broker);
  AlertService alerts(broker, clock, cfg.alerts, alert_samples);
  if (Status s = alerts.Start(); !s.ok()) {
    spdlog::critical("alerts: {}", s.ToString());
    return kExitFailure;
  }

  obs::Registry registry;
  net::HttpServerOptions hopts;
  hopts.host = cfg.listen_host;
  hopts.port = cfg.listen_port;
  hopts.io_threads = cfg.io_threads;
  hopts.max_request_bytes = cfg.max_request_bytes;
  hopts.max_payload_bytes = cfg.max_payload_bytes;
  hopts.max_reply_bytes = cfg.max_reply_bytes;
  hopts.max_queued_reply_bytes = cfg.max_queued_reply_bytes;
  hopts.max_reading_request_bytes = cfg.max_reading_request_bytes;
  hopts.max_connections = cfg.max_connections;
  hopts.max_connections_per_client = cfg.max_connections_per_client;
  hopts.shutdown_timeout = std::chrono::milliseconds(cfg.shutdown_grace_ms);
  hopts.tls.cert_file = cfg.tls_cert_file;
  hopts.tls.key_file = cfg.tls_key_file;
  hopts.tls.client_ca_file = cfg.tls_client_ca_file;
  hopts.handshake_timeout = std::chrono::milliseconds(cfg.tls_handshake_timeout_ms);
  hopts.metrics_renderer = [&registry] { return registry.Render(); };
  hopts.alerts_renderer = [&alerts] { return alerts.RenderJson(); };
  hopts.audit_checkpoint_renderer = [&checkpoints, &broker] {
    return audit::CheckpointToJson(checkpoints.Make(broker.AuditHead()));
  };
  // Host and Origin checks (net/web_guard.h). On a non-loopback address (--insecure) clients
  // also reach the server by its addresses and by the name it listens on.
  hopts.web.allowed_hosts = cfg.allowed_hosts;
  hopts.web.cors_allowed_origins = cfg.cors_allowed_origins;
  if (!loopback) {
    hopts.web.accept_ip_literal_hosts = true;
    if (auto name = net::NormalizeAllowedHost(cfg.listen_host); name.ok()) {
      hopts.web.allowed_hosts.push_back(std::move(name).value());
    }
  }
  net::HttpServer http(broker, hopts);
  RegisterServerMetrics(registry, broker, **store, &http.stats());
  if (Status s = http.Start(); !s.ok()) {
    YM_LOG(critical, kServer)
        .Msg("cannot listen on {}:{}: {}", cfg.listen_host, cfg.listen_port, s.ToString());
    return kExitFailure;
  }
  const BrokerInfo info = broker.Info();
  YM_LOG(info, kServer)
      .Str("version", VersionLine())
      .Str("data_dir", cfg.data_dir)
      .Uint("recovered_jobs", info.recovered_jobs)
      .Int("recovery_ms", info.recovery_ms)
      .Msg("yardmaster {}; data dir {} (durability {}); recovered {} live jobs in {} ms",
           VersionLine(), cfg.data_dir, cfg.durability == Durability::kFull ? "full" : "relaxed",
           info.recovered_jobs, info.recovery_ms);

  int sig = 0;
  for (;;) {
    if (sigwait(&wait_signals, &sig) != 0) continue;
    if (sig != SIGHUP) break;
    if (!hopts.tls.enabled()) {
      YM_LOG(info, kServer).Msg("received SIGHUP: nothing to reload (TLS is off)");
      continue;
    }
    // A bad new set leaves the current one in use, whole: the server keeps serving
    // (ym_tls_reloads_total{result="error"}).
    if (Status s = http.ReloadTls(); !s.ok()) {
      YM_LOG(err, kServer)
          .Str("error", s.message())
          .Msg(
              "received SIGHUP: TLS reload failed, keeping the current certificate, key and "
              "client CAs: {}",
              s.message());
    }
  }
  YM_LOG(info, kServer)
      .Msg("received {}: draining (new enqueues and leases refused, acks accepted)",
           sig == SIGTERM ? "SIGTERM" : "SIGINT");
  // Drain: enqueues and leases are refused (and /readyz fails, so balancers move away), but
  // the listener stays open so workers can still ack, fail or heartbeat the jobs they hold. We
  // wait for those, up to the grace period, then close the listener and commit what is left.
  broker.BeginDrain();
  // The delivery worker holds at most one job: an interrupted POST hands it back at once.
  alerts.Stop();
  const auto grace_end =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.shutdown_grace_ms);
  // A second SIGTERM or SIGINT (still blocked, so it waits here as pending) skips the rest of
  // the grace, as it does for the workers.
  const timespec poll_interval{0, 20'000'000};
  while (broker.counters().active_jobs.load(std::memory_order_relaxed) > 0 &&
         std::chrono::steady_clock::now() < grace_end) {
    if (sigtimedwait(&stop_signals, nullptr, &poll_interval) > 0) {
      YM_LOG(info, kServer).Msg("second stop signal: skipping the rest of the grace period");
      break;
    }
  }
  if (const auto left = broker.counters().active_jobs.load(std::memory_order_relaxed)) {
    // Their leases are persisted: after a restart the same workers can still heartbeat and ack
    // them with their tokens until the leases expire.
    YM_LOG(warn, kServer)
        .Msg(
            "grace period over with {} jobs still leased; their leases are kept across the "
            "restart",
            left);
  }
  http.Stop();    // stop accepting; requests in flight finish
  broker.Stop();  // commits everything accepted so far
  YM_LOG(info, kServer).Msg("stopped cleanly");
  return 0;
}

}  // namespace

int ServerMain(int argc, char** argv) {
  auto cfg = LoadServerConfig(argc, argv, ProcessEnv());
  if (!cfg.ok()) {
    std::fprintf(stderr, "yardmaster server: %s\n", cfg.status().message().c_str());
    std::fprintf(stderr, "Run 'yardmaster server --help' for the options.\n");
    return kExitUsage;
  }
  if (cfg->help) {
    std::fputs(cfg->text.c_str(), stdout);
    return 0;
  }
  if (Status s = SetupServerLogging(cfg->config); !s.ok()) {
    std::fprintf(stderr, "yardmaster server: %s\n", s.message().c_str());
    return kExitUsage;
  }
  // Safe default (docs/security.md): with no authentication, only loopback unless --insecure.
  const ServerConfig& c = cfg->config;
  const bool loopback = ListenIsLoopbackOnly(c.listen_host);
  if (!loopback && !c.insecure) {
    std::fprintf(stderr, "yardmaster server: %s\n", NonLoopbackRefusal(c.listen_host).c_str());
    return kExitUsage;
  }
  // A TLS pair that cannot be used is a configuration error, found before the store is opened.
  if (!c.tls_cert_file.empty()) {
    net::TlsFiles files{c.tls_cert_file, c.tls_key_file, c.tls_client_ca_file};
    if (auto tls = net::MakeServerTlsContext(files); !tls.ok()) {
      std::fprintf(stderr, "yardmaster server: %s\n", tls.status().message().c_str());
      return kExitUsage;
    }
  }
  if (!loopback) {
    YM_LOG(warn, kServer)
        .Str("listen", c.listen_host)
        .Msg(
            "--insecure: listening on {}, which is not loopback, without authentication: anyone "
            "who can reach port {} can enqueue, read, cancel and reconfigure everything",
            c.listen_host, c.listen_port);
  }
  return Run(c, loopback);
}

}  // namespace ym
