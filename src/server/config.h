// ServerConfig: every option of `yardmaster server`, where it comes from, and its validation.
//
// Each option can be set in three places; the first one that sets it wins:
//   1. a command-line flag        --max-payload-bytes 2097152
//   2. an environment variable    YM_MAX_PAYLOAD_BYTES=2097152
//   3. the TOML file (--config)   max_payload_bytes = 2097152
// then the built-in default. One table (kOptions in config.cc) defines name, flag, variable,
// default, help text and validation for all three, so they can never disagree; `--help` and
// docs/operations.md are generated from the same words.
//
// Bad input never starts a server: an unknown key in the file, a malformed value anywhere, or a
// value out of range is an error that names its source ("YM_DURABILITY: must be full or
// relaxed").
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/flow/limit_set.h"
#include "core/flow/namespace_limits.h"
#include "core/types.h"
#include "obs/alerts/rule.h"
#include "store/store.h"

namespace ym {

struct ServerConfig {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 7433;
  // Browser and network safety (docs/security.md). `insecure` allows a non-loopback listen
  // address while no authentication exists; allowed_hosts and cors_allowed_origins are
  // normalized by net::NormalizeAllowedHost / net::NormalizeOrigin.
  bool insecure = false;
  std::vector<std::string> allowed_hosts;
  std::vector<std::string> cors_allowed_origins;
  // TLS on the listener (net/tls.h, docs/security.md): cert and key both or neither; the client
  // CA file (mTLS) needs both. Paths as given (relative ones from the working directory).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  std::int64_t tls_handshake_timeout_ms = 10'000;
  // Audit log checkpoints (server/audit_checkpoints.h, docs/security.md "Audit log"): one in the
  // server log every `audit_checkpoint_every` entries (0: none), HMAC-signed with the key in
  // `audit_checkpoint_key_file` when set (empty: unsigned).
  std::uint64_t audit_checkpoint_every = 1000;
  std::string audit_checkpoint_key_file;
  std::string data_dir = "./data";
  std::string config_file;  // empty: none
  Durability durability = Durability::kFull;
  bool lease_reply_after_commit = false;  // --lease-reply immediate (default) | after-commit
  int io_threads = 2;
  std::uint64_t max_payload_bytes = 1 << 20;
  std::uint64_t max_request_bytes = 16 << 20;
  std::uint64_t max_reply_bytes = 8 << 20;
  std::uint64_t max_queued_reply_bytes = 64 << 20;
  std::uint64_t max_reading_request_bytes = 256 << 20;
  std::uint64_t max_connections = 10'000;
  std::uint64_t max_connections_per_client = 1'000;
  std::int64_t shutdown_grace_ms = 10'000;
  std::int64_t liveness_deadline_ms = 10'000;  // BrokerOptions::liveness_deadline_ms
  std::string log_level = "info";
  std::string log_format = "text";  // text | json
  // Logging options of issue 12 (server/log_config.h turns them into obs::LogOptions).
  std::map<std::string, std::string> log_component_levels;  // `log_levels`: component -> level
  bool access_log = false;
  std::vector<std::string> redact_fields;  // payload/result member names shown as "[redacted]"
  // Admission control of the core's command queue (BrokerOptions).
  std::uint64_t max_queued_commands = 100'000;
  std::uint64_t completion_margin = 20'000;
  // Label sets of the per-job metric families (BrokerOptions::metrics_max_label_sets).
  std::uint32_t metrics_max_label_sets = 1000;
  SchedulerOptions scheduler;
  // `[[limits]]` of the config file: created or replaced at start (Reconcile in server_main).
  // Limits stored but absent from the file are kept: the API is the source of truth.
  std::vector<flow::LimitSpec> limits;
  // `[[namespaces]]` of the config file, the same way: created or replaced at start, stored ones
  // absent from the file kept.
  std::vector<flow::NamespaceSpec> namespaces;
  // `[[schedules]]` of the config file (docs/cron.md): each table as the JSON body of
  // POST /v1/schedules, with where it came from for errors. Parsed and reconciled at start by
  // server_main (created, or replaced when its spec changed; others kept), before the listener
  // opens; kept as text here so that the config loader needs no codec.
  struct ScheduleTable {
    std::string id;
    std::string where;  // e.g. "ym.toml: schedules[2]"
    std::string json;
  };
  std::vector<ScheduleTable> schedules;
  // `[[alerts]]` of the config file (docs/operations.md, "Alerts"; server/alert_config.h),
  // validated here: a bad rule never starts a server. Run by AlertService (in memory only).
  std::vector<alerts::AlertRule> alerts;
};

// Reads environment variables; injectable so tests need not touch the process environment.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup ProcessEnv();

// What parsing produced: a config to run with, or a request for help text.
struct ConfigOutcome {
  ServerConfig config;
  bool help = false;  // --help or --version was given; `text` holds what to print
  std::string text;
};

// Parses argv (argv[0] is "server"), the environment and the config file. Errors are
// kInvalidRequest with a message that names the offending flag, variable or key.
Result<ConfigOutcome> LoadServerConfig(int argc, const char* const* argv, const EnvLookup& env);

// The Markdown table of every option (name, flag, variable, default, meaning) for the docs.
std::string OptionsMarkdown();

}  // namespace ym
