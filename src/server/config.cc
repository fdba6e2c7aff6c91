#include "server/config.h"

#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <vector>

#include "common/build_info.h"
#include "net/web_guard.h"
#include "obs/logging.h"
#include "server/alert_config.h"

namespace ym {
namespace {

constexpr std::int64_t kDay = 24LL * 3600 * 1000;

std::optional<std::int64_t> ParseInt(const std::string& s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> ParseDouble(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

// A comma-separated list, each item trimmed and normalized by `normalize`; at most 1000 items.
// `one` and `many` name the items in errors ("a field name", "field names").
Result<std::vector<std::string>> ParseList(
    std::string_view text, const std::function<Result<std::string>(std::string_view)>& normalize,
    std::string_view one = "an item of the list", std::string_view many = "items") {
  std::vector<std::string> out;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.empty()) return InvalidRequest(std::string(one) + " is empty");
    auto normalized = normalize(item);
    if (!normalized.ok()) return normalized.status();
    out.push_back(std::move(normalized).value());
  }
  if (out.size() > 1000) return InvalidRequest("at most 1000 " + std::string(many));
  return out;
}

// A payload member name to redact: at most 256 bytes, without control characters.
Result<std::string> CheckFieldName(std::string_view name) {
  if (name.size() > 256) return InvalidRequest("a field name is over 256 bytes");
  for (unsigned char ch : name) {
    if (ch < 0x20 || ch == 0x7f) {
      return InvalidRequest("field name \"" + std::string(name) + "\" has a control character");
    }
  }
  return std::string(name);
}

using Apply = std::function<std::string(ServerConfig&, const std::string&)>;  // "" = ok

// The Apply of a list option: ParseList with `normalize` (and its item names), stored in
// `member`.
Apply ListOption(std::vector<std::string> ServerConfig::*member,
                 Result<std::string> (*normalize)(std::string_view),
                 std::string_view one = "an item of the list", std::string_view many = "items") {
  return [member, normalize, one, many](ServerConfig& c, const std::string& v) -> std::string {
    auto items = ParseList(v, normalize, one, many);
    if (!items.ok()) return items.status().message();
    c.*member = std::move(items).value();
    return "";
  };
}

struct OptionDef {
  std::string key;
  std::string default_text;
  std::string help;
  Apply apply;
  bool flag = false;  // a command-line flag without value (--insecure); "on"/"off" elsewhere
};

Apply IntIn(std::int64_t lo, std::int64_t hi,
            std::function<void(ServerConfig&, std::int64_t)> set) {
  return [=](ServerConfig& c, const std::string& v) -> std::string {
    auto n = ParseInt(v);
    if (!n || *n < lo || *n > hi) {
      return "must be an integer between " + std::to_string(lo) + " and " + std::to_string(hi);
    }
    set(c, *n);
    return "";
  };
}

Apply OneOf(std::vector<std::string> allowed,
            std::function<void(ServerConfig&, const std::string&)> set) {
  return [=](ServerConfig& c, const std::string& v) -> std::string {
    for (const auto& a : allowed) {
      if (a == v) {
        set(c, v);
        return "";
      }
    }
    std::string msg = "must be one of";
    for (const auto& a : allowed) msg += " " + a;
    return msg;
  };
}

const std::vector<OptionDef>& Options() {
  static const std::vector<OptionDef> kOptions = {
      {"listen", "127.0.0.1:7433",
       "HOST:PORT to listen on; port 0 picks a free port (printed on the first log line)",
       [](ServerConfig& c, const std::string& v) -> std::string {
         const auto colon = v.rfind(':');
         if (colon == std::string::npos || colon == 0) return "must be HOST:PORT";
         auto port = ParseInt(v.substr(colon + 1));
         if (!port || *port < 0 || *port > 65535) return "port must be 0..65535";
         std::string host = v.substr(0, colon);
         if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
           host = host.substr(1, host.size() - 2);
         }
         c.listen_host = host;
         c.listen_port = static_cast<std::uint16_t>(*port);
         return "";
       }},
      {"insecure", "off",
       "allow a listen address that is not loopback although no authentication exists (anyone "
       "who can reach the port can do anything); logged as a warning at start. Without it such "
       "an address is refused at start (exit code 2). As a flag: --insecure; elsewhere on or off",
       OneOf({"on", "off", "true", "false"},
             [](ServerConfig& c, const std::string& v) { c.insecure = v == "on" || v == "true"; }),
       /*flag=*/true},
      {"allowed_hosts", "(none)",
       "host names (or IP addresses), NAME[,...] (in the file also an array of strings), that "
       "the Host header of a request may name besides the loopback names (DNS rebinding "
       "protection); any port; \"*\": any host (docs/security.md)",
       ListOption(&ServerConfig::allowed_hosts, net::NormalizeAllowedHost)},
      {"cors_allowed_origins", "(none)",
       "browser origins, ORIGIN[,...] (in the file also an array of strings), e.g. "
       "https://dash.example.com, that may call the API cross-origin (CORS); requests with any "
       "other Origin header are refused 403 (docs/security.md)",
       ListOption(&ServerConfig::cors_allowed_origins, net::NormalizeOrigin)},
      {"tls_cert_file", "(none)",
       "PEM file with the server certificate (then any intermediates): the listener speaks only "
       "TLS (1.2 and 1.3). Needs tls_key_file; re-read with the key on SIGHUP (docs/security.md)",
       [](ServerConfig& c, const std::string& v) -> std::string {
         if (v.empty()) return "must not be empty";
         c.tls_cert_file = v;
         return "";
       }},
      {"tls_key_file", "(none)",
       "PEM file with the private key of tls_cert_file (not encrypted, not readable by every "
       "user); re-read on SIGHUP",
       [](ServerConfig& c, const std::string& v) -> std::string {
         if (v.empty()) return "must not be empty";
         c.tls_key_file = v;
         return "";
       }},
      {"tls_client_ca_file", "(none)",
       "PEM file of the CAs a client certificate must chain to: every client must present one "
       "(mTLS), or the handshake fails. Needs tls_cert_file; re-read with it on SIGHUP",
       [](ServerConfig& c, const std::string& v) -> std::string {
         if (v.empty()) return "must not be empty";
         c.tls_client_ca_file = v;
         return "";
       }},
      {"tls_handshake_timeout_ms", "10000",
       "a TLS connection that has not completed its handshake within this is closed",
       IntIn(100, 600'000,
             [](ServerConfig& c, std::int64_t v) { c.tls_handshake_timeout_ms = v; })},
      {"audit_checkpoint_every", "1000",
       "write an audit checkpoint (the chain's seq and hash, signed when a key is set) to the "
       "server log every N audit entries; 0: only on demand (GET /v1/audit/checkpoint)",
       IntIn(0, 1'000'000'000,
             [](ServerConfig& c, std::int64_t v) {
               c.audit_checkpoint_every = static_cast<std::uint64_t>(v);
             })},
      {"audit_checkpoint_key_file", "(none)",
       "file holding the HMAC-SHA256 key that signs audit checkpoints (at least 16 bytes; "
       "refused if readable by every user); without it checkpoints are unsigned",
       [](ServerConfig& c, const std::string& v) -> std::string {
         if (v.empty()) return "must not be empty";
         c.audit_checkpoint_key_file = v;
         return "";
       }},
      {"data_dir", "./data", "directory holding the store (created if missing)",
       [](ServerConfig& c, const std::string& v) -> std::string {
         if (v.empty()) return "must not be empty";
         c.data_dir = v;
         return "";
       }},
      {"durability", "full",
       "full: a 2xx to a write means it is fsynced; relaxed: written to the OS, not fsynced "
       "(a power loss may lose the last commits, a process crash does not)",
       OneOf({"full", "relaxed"},
             [](ServerConfig& c, const std::string& v) {
               c.durability = v == "full" ? Durability::kFull : Durability::kRelaxed;
             })},
      {"lease_reply", "immediate",
       "immediate: a lease reply is sent at once and the lease committed with the next group "
       "commit, about a millisecond later (a crash within that commit may hand the job out "
       "again; a lease that counted a quota start always waits for its commit); after-commit: "
       "the reply waits until the lease is durable, like any write's",
       OneOf({"immediate", "after-commit"},
             [](ServerConfig& c, const std::string& v) {
               c.lease_reply_after_commit = v == "after-commit";
             })},
      {"io_threads", "2", "HTTP I/O threads",
       IntIn(1, 64, [](ServerConfig& c, std::int64_t v) { c.io_threads = static_cast<int>(v); })},
      {"max_payload_bytes", "1048576",
       "largest job payload or ack result: its JSON text without insignificant whitespace",
       IntIn(1, 64LL << 20, [](ServerConfig& c, std::int64_t v) { c.max_payload_bytes = v; })},
      {"max_request_bytes", "16777216", "largest request body (a batch carries many payloads)",
       IntIn(1024, 1LL << 30, [](ServerConfig& c, std::int64_t v) { c.max_request_bytes = v; })},
      {"max_reply_bytes", "8388608",
       "a page of GET /v1/jobs, /v1/dead or /v1/queues stops before the item that would take its "
       "body past this (at least one item is sent); the cursor carries on",
       IntIn(4096, 1LL << 30, [](ServerConfig& c, std::int64_t v) { c.max_reply_bytes = v; })},
      {"max_queued_reply_bytes", "67108864",
       "server-wide cap on reply bytes waiting to be read by slow clients; past it a reply over "
       "64 KiB is answered 503 with Retry-After",
       IntIn(1 << 20, 1LL << 40,
             [](ServerConfig& c, std::int64_t v) { c.max_queued_reply_bytes = v; })},
      {"max_reading_request_bytes", "268435456",
       "server-wide cap on request bodies being read; a body over 64 KiB reserves its size first "
       "and past the cap is answered 503 with Retry-After",
       IntIn(1 << 20, 1LL << 40,
             [](ServerConfig& c, std::int64_t v) { c.max_reading_request_bytes = v; })},
      {"max_connections", "10000",
       "open connections in total (also kept 64 below the file-descriptor limit); past it a new "
       "connection gets 503 and is closed",
       IntIn(1, 1'000'000, [](ServerConfig& c, std::int64_t v) { c.max_connections = v; })},
      {"max_connections_per_client", "1000",
       "open connections from one client IP address; past it a new one gets 503 and is closed",
       IntIn(1, 1'000'000,
             [](ServerConfig& c, std::int64_t v) { c.max_connections_per_client = v; })},
      {"shutdown_grace_ms", "10000",
       "on SIGTERM, how long workers may still ack the jobs they hold (new enqueues and leases are "
       "refused) before the listener closes; a second signal ends it",
       IntIn(0, 600'000, [](ServerConfig& c, std::int64_t v) { c.shutdown_grace_ms = v; })},
      {"liveness_deadline_ms", "10000",
       "/livez and /healthz answer 503 once the core thread has not run for this long (it runs "
       "at least once a second while idle, so only a stuck core gets that old)",
       IntIn(2000, 3'600'000, [](ServerConfig& c, std::int64_t v) { c.liveness_deadline_ms = v; })},
      {"log_level", "info", "trace, debug, info, warn, error, critical or off",
       OneOf({"trace", "debug", "info", "warn", "error", "critical", "off"},
             [](ServerConfig& c, const std::string& v) { c.log_level = v; })},
      {"log_format", "text", "text or json (one JSON object per line)",
       OneOf({"text", "json"}, [](ServerConfig& c, const std::string& v) { c.log_format = v; })},
      {"log_levels", "(none)",
       "per-component log levels, COMPONENT=LEVEL[,...] (components: server, http, access, "
       "broker, store, job, cron, alerts); others use log_level. In the file also a table: "
       "[log_levels] http = \"debug\"",
       [](ServerConfig& c, const std::string& v) -> std::string {
         auto levels = obs::ParseComponentLevels(v);
         if (!levels.ok()) return levels.status().message();
         c.log_component_levels = std::move(levels).value();
         return "";
       }},
      {"access_log", "off",
       "on: one log line per request (component access: method, route, status, duration, bytes, "
       "request id, peer address)",
       OneOf(
           {"on", "off", "true", "false"},
           [](ServerConfig& c, const std::string& v) { c.access_log = v == "on" || v == "true"; })},
      {"redact_fields", "(none)",
       "payload and result member names, NAME[,...] (in the file also an array of strings), "
       "whose values are shown as \"[redacted]\" in logs and API views at any depth, ASCII "
       "case ignored; the lease still gives the worker the real payload",
       ListOption(&ServerConfig::redact_fields, CheckFieldName, "a field name", "field names")},
      {"max_queued_commands", "100000",
       "commands (weighted by the jobs they carry) that may wait for the core thread; past it "
       "new work is refused with 429 and Retry-After",
       IntIn(1, 100'000'000,
             [](ServerConfig& c, std::int64_t v) {
               c.max_queued_commands = static_cast<std::uint64_t>(v);
             })},
      {"completion_margin", "20000",
       "acks, fails and heartbeats still admitted past max_queued_commands, so running jobs can "
       "finish while new work is refused",
       IntIn(0, 100'000'000,
             [](ServerConfig& c, std::int64_t v) {
               c.completion_margin = static_cast<std::uint64_t>(v);
             })},
      {"default_lease_ms", "30000", "lease of a job whose queue and enqueue set none",
       IntIn(100, kDay, [](ServerConfig& c, std::int64_t v) { c.scheduler.default_lease_ms = v; })},
      {"default_timeout_ms", "0",
       "execution timeout of one attempt of a job whose queue and enqueue set none: the broker "
       "fails the attempt with type \"timeout\" once it has run this long, heartbeats or not; "
       "0: none",
       IntIn(0, kDay, [](ServerConfig& c, std::int64_t v) { c.scheduler.default_timeout_ms = v; })},
      {"default_max_attempts", "10", "attempts of a job whose queue and enqueue set none",
       IntIn(1, 1000,
             [](ServerConfig& c, std::int64_t v) {
               c.scheduler.default_max_attempts = static_cast<std::int32_t>(v);
             })},
      {"backoff_initial_ms", "1000", "default retry backoff: cap of the first retry delay",
       IntIn(1, 30 * kDay,
             [](ServerConfig& c, std::int64_t v) { c.scheduler.default_backoff.initial_ms = v; })},
      {"backoff_max_ms", "3600000", "default retry backoff: largest delay",
       IntIn(1, 30 * kDay,
             [](ServerConfig& c, std::int64_t v) { c.scheduler.default_backoff.max_ms = v; })},
      {"backoff_multiplier", "2.0", "default retry backoff: growth per attempt (1..100)",
       [](ServerConfig& c, const std::string& v) -> std::string {
         auto d = ParseDouble(v);
         if (!d || !(*d >= 1.0 && *d <= 100.0)) return "must be a number between 1 and 100";
         c.scheduler.default_backoff.multiplier = *d;
         return "";
       }},
      {"retention_succeeded_ms", "86400000",
       "how long succeeded jobs stay queryable, with their result; 0 deletes them with their ack "
       "(the cheapest, keeps nothing)",
       IntIn(0, 3650 * kDay,
             [](ServerConfig& c, std::int64_t v) {
               c.scheduler.default_retention.succeeded_ms = v;
             })},
      {"retention_dead_ms", "604800000", "how long dead jobs stay for inspection and replay",
       IntIn(0, 3650 * kDay,
             [](ServerConfig& c, std::int64_t v) { c.scheduler.default_retention.dead_ms = v; })},
      {"retention_cancelled_ms", "604800000", "how long cancelled jobs stay queryable",
       IntIn(0, 3650 * kDay,
             [](ServerConfig& c, std::int64_t v) {
               c.scheduler.default_retention.cancelled_ms = v;
             })},
      {"retention_max_succeeded", "1000000",
       "most succeeded jobs kept per queue, oldest-finished purged first; 0: no cap",
       IntIn(0, 1'000'000'000'000,
             [](ServerConfig& c, std::int64_t v) {
               c.scheduler.default_retention.max_succeeded = v;
             })},
      {"retention_max_dead", "100000",
       "most dead jobs kept per queue, oldest-finished purged first; 0: no cap",
       IntIn(0, 1'000'000'000'000,
             [](ServerConfig& c, std::int64_t v) { c.scheduler.default_retention.max_dead = v; })},
      {"retention_max_cancelled", "100000",
       "most cancelled jobs kept per queue, oldest-finished purged first; 0: no cap",
       IntIn(0, 1'000'000'000'000,
             [](ServerConfig& c, std::int64_t v) {
               c.scheduler.default_retention.max_cancelled = v;
             })},
      {"idempotency_window_ms", "86400000", "default window in which idempotency keys coalesce",
       IntIn(1000, 365 * kDay,
             [](ServerConfig& c, std::int64_t v) { c.scheduler.idempotency_window_ms = v; })},
      {"idempotency_cache_keys", "100000",
       "idempotency keys kept in memory (most recently used); all of them stay in the store, "
       "and an enqueue whose key is not cached reads it from the store first",
       IntIn(1, 100'000'000,
             [](ServerConfig& c, std::int64_t v) {
               c.scheduler.idempotency_cache_keys = static_cast<std::uint32_t>(v);
             })},
      {"metrics_max_label_sets", "1000",
       "(queue, kind) pairs the per-job metric families (ym_job_events_total, ym_job_*_seconds) "
       "may hold; the jobs of pairs first seen past it are counted under queue and kind "
       "\"~other\" (ym_metrics_label_overflow_total)",
       IntIn(1, 100'000,
             [](ServerConfig& c, std::int64_t v) {
               c.metrics_max_label_sets = static_cast<std::uint32_t>(v);
             })},
      {"max_job_waits", "10000",
       "requests that may wait at once for a job to end (GET /v1/jobs/{id}?wait_ms=N); more "
       "are refused with 429",
       IntIn(1, 10'000'000,
             [](ServerConfig& c, std::int64_t v) {
               c.scheduler.max_end_waits = static_cast<std::uint32_t>(v);
             })},
  };
  return kOptions;
}

std::string FlagOf(const std::string& key) {
  std::string f = "--" + key;
  for (auto& ch : f) {
    if (ch == '_') ch = '-';
  }
  return f;
}

// A path given in the config file (the value of a key ending in `_file` or `_dir`) that is
// relative is taken from the config file's directory, so that a file and the certificates
// beside it work from any working directory; flags and variables stay relative to the
// working directory, as a shell user expects (docs/operations.md).
std::string PathFromConfigFile(const std::string& key, const std::string& value,
                               const std::string& config_path) {
  const auto ends_with = [&key](std::string_view tail) {
    return key.size() >= tail.size() &&
           key.compare(key.size() - tail.size(), tail.size(), tail) == 0;
  };
  if (!ends_with("_file") && !ends_with("_dir")) return value;
  const std::filesystem::path p(value);
  if (value.empty() || p.is_absolute()) return value;
  const std::filesystem::path dir = std::filesystem::path(config_path).parent_path();
  if (dir.empty()) return value;
  return (dir / p).lexically_normal().string();
}

std::string EnvOf(const std::string& key) {
  std::string e = "YM_" + key;
  for (auto& ch : e) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return e;
}

// One `[[limits]]` table: `name` and the members of the API's limit object (match, key,
// concurrency, rate, quota), as TOML tables and values. The table is turned into the same JSON
// the API takes and checked by the one validator of every source (LimitSpec::FromJson), so the
// config file accepts exactly what PUT /v1/limits does. Errors name the file, the table and the
// field, e.g. "ym.toml: limits[2] (api): field \"rate.count\": required".
Result<flow::LimitSpec> TomlLimit(const toml::node& node, const std::string& where) {
  const toml::table* t = node.as_table();
  if (t == nullptr) return InvalidRequest(where + ": must be a table ([[limits]])");
  const toml::node* name_node = t->get("name");
  if (name_node == nullptr) return InvalidRequest(where + ".name: required");
  auto name = name_node->value<std::string>();
  if (!name) return InvalidRequest(where + ".name: must be a string");
  toml::table members = *t;
  members.erase("name");
  std::ostringstream json;
  json << toml::json_formatter{members};
  auto spec = flow::LimitSpec::FromJson(*name, json.str());
  if (!spec.ok()) return InvalidRequest(where + " (" + *name + "): " + spec.status().message());
  return std::move(*spec);
}

// A TOML value of a `[[namespaces]]` table as JSON text (integers, strings and tables only), so
// that NamespaceSpec::FromJson validates it exactly as the API does.
Status TomlToJson(const toml::node& v, const std::string& where, std::string* out) {
  if (v.is_integer()) {
    *out += std::to_string(*v.value<std::int64_t>());
  } else if (auto s = v.as_string()) {
    out->push_back('"');
    for (char c : s->get()) {
      if (c == '"' || c == '\\') out->push_back('\\');
      if (static_cast<unsigned char>(c) < 0x20)
        return InvalidRequest(where + ": control character");
      out->push_back(c);
    }
    out->push_back('"');
  } else if (const toml::table* t = v.as_table()) {
    out->push_back('{');
    bool first = true;
    for (const auto& [k, sub] : *t) {
      const std::string key(k.str());
      if (!first) out->push_back(',');
      first = false;
      YM_RETURN_IF_ERROR(TomlToJson(sub, where + "." + key, &(*out += "\"" + key + "\":")));
    }
    out->push_back('}');
  } else {
    return InvalidRequest(where + ": must be an integer, a string or a table");
  }
  return Status::Ok();
}

// One `[[namespaces]]` table: name, max_live_jobs, weight, max_active, and an `enqueue_rate`
// table (count, per or period_ms, burst). Errors name the file and the key.
Result<flow::NamespaceSpec> TomlNamespace(const toml::node& node, const std::string& where) {
  const toml::table* t = node.as_table();
  if (t == nullptr) return InvalidRequest(where + ": must be a table ([[namespaces]])");
  std::string name;
  std::string json = "{";
  for (const auto& [k, v] : *t) {
    const std::string key(k.str());
    if (key == "name") {
      auto s = v.value<std::string>();
      if (!s) return InvalidRequest(where + ".name: must be a string");
      name = *s;
      continue;
    }
    if (key.find_first_of("\"\\") != std::string::npos || key.empty()) {
      return InvalidRequest(where + ": bad key");
    }
    if (json.size() > 1) json += ",";
    json += "\"" + key + "\":";
    YM_RETURN_IF_ERROR(TomlToJson(v, where + "." + key, &json));
  }
  json += "}";
  if (name.empty()) return InvalidRequest(where + ".name: required");
  auto spec = flow::NamespaceSpec::FromJson(name, json);
  if (!spec.ok()) return InvalidRequest(where + " (" + name + "): " + spec.status().message());
  return spec;
}

std::optional<std::string> TomlScalar(const toml::node& node, const std::string& key) {
  if (auto s = node.as_string()) return s->get();
  if (auto i = node.as_integer()) return std::to_string(i->get());
  if (auto f = node.as_floating_point()) {
    std::ostringstream os;
    os << f->get();
    return os.str();
  }
  if (auto b = node.as_boolean()) return b->get() ? "true" : "false";
  // A list option (redact_fields) as an array of strings, a map option (log_levels) as a table
  // of strings: the same text as the flag's.
  if (auto arr = node.as_array();
      arr != nullptr &&
      (key == "redact_fields" || key == "allowed_hosts" || key == "cors_allowed_origins")) {
    std::string joined;
    for (const auto& item : *arr) {
      auto s = item.value<std::string>();
      if (!s || s->find(',') != std::string::npos) return std::nullopt;
      if (!joined.empty()) joined += ",";
      joined += *s;
    }
    return joined;
  }
  if (auto t = node.as_table(); t != nullptr && key == "log_levels") {
    std::string joined;
    for (const auto& [k, v] : *t) {
      auto s = v.value<std::string>();
      if (!s) return std::nullopt;
      if (!joined.empty()) joined += ",";
      joined += std::string(k.str()) + "=" + *s;
    }
    return joined;
  }
  return std::nullopt;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<ConfigOutcome> LoadServerConfig(int argc, const char* const* argv, const EnvLookup& env) {
  CLI::App app(
      "Runs the Yardmaster broker: HTTP/JSON API, embedded SQLite store.\n"
      "Every option can also be set by the YM_* variable shown, or as a key in the "
      "TOML file given by --config; a flag wins over the variable, which wins over "
      "the file. The file may also hold [[limits]], [[namespaces]] and [[schedules]] tables, "
      "created or replaced at start (docs/operations.md, docs/cron.md), a [log_levels] "
      "table, and [[alerts]] rules that POST to webhooks (docs/operations.md, \"Alerts\").",
      "yardmaster server");
  app.set_help_flag("-h,--help", "print this help and exit");
  app.set_version_flag("--version", std::string(), "print the version and git commit and exit");
  std::map<std::string, std::string> flag_values;
  std::map<std::string, CLI::Option*> flag_opts;
  std::map<std::string, bool> flag_bools;
  std::string config_flag;
  auto* config_opt = app.add_option(
      "--config", config_flag,
      "TOML config file; a relative path in it (a *_file or *_dir key) is taken from its "
      "directory [env: YM_CONFIG]");
  for (const auto& def : Options()) {
    if (def.flag) {
      // A bool, so that --insecure=off (which CLI11 accepts) means off, not "given".
      flag_opts[def.key] = app.add_flag(FlagOf(def.key), flag_bools[def.key])
                               ->description(def.help + " [env: " + EnvOf(def.key) +
                                             ", default: " + def.default_text + "]");
      continue;
    }
    flag_opts[def.key] = app.add_option(
        FlagOf(def.key), flag_values[def.key],
        def.help + " [env: " + EnvOf(def.key) + ", default: " + def.default_text + "]");
  }
  ConfigOutcome out;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out.help = true;
    out.text = app.help();
    return out;
  } catch (const CLI::CallForVersion&) {
    // The same line as `yardmaster --version`: the server and the CLI are one binary.
    out.help = true;
    out.text = "yardmaster " + VersionLine() + "\n";
    return out;
  } catch (const CLI::ParseError& e) {
    return InvalidRequest(e.what());
  }

  std::string config_path = config_opt->count() ? config_flag : env("YM_CONFIG").value_or("");
  std::map<std::string, std::string> file_values;
  if (!config_path.empty()) {
    toml::table table;
    try {
      table = toml::parse_file(config_path);
    } catch (const toml::parse_error& e) {
      std::ostringstream os;
      os << config_path << ": " << e.description() << " (line " << e.source().begin.line << ")";
      return InvalidRequest(os.str());
    }
    for (const auto& [k, node] : table) {
      const std::string key(k.str());
      if (key == "namespaces") {
        const toml::array* arr = node.as_array();
        if (arr == nullptr) {
          return InvalidRequest(config_path +
                                ": key \"namespaces\" must be an array of tables "
                                "([[namespaces]])");
        }
        std::set<std::string> names;
        for (std::size_t i = 0; i < arr->size(); ++i) {
          auto spec =
              TomlNamespace((*arr)[i], config_path + ": namespaces[" + std::to_string(i) + "]");
          if (!spec.ok()) return spec.status();
          if (!names.insert(spec->name).second) {
            return InvalidRequest(config_path + ": namespaces[" + std::to_string(i) +
                                  "].name: the namespace " + spec->name + " is defined twice");
          }
          out.config.namespaces.push_back(std::move(spec).value());
        }
        continue;
      }
      if (key == "schedules") {
        const toml::array* arr = node.as_array();
        if (arr == nullptr) {
          return InvalidRequest(config_path +
                                ": key \"schedules\" must be an array of tables ([[schedules]])");
        }
        std::set<std::string> ids;
        for (std::size_t i = 0; i < arr->size(); ++i) {
          const std::string where = config_path + ": schedules[" + std::to_string(i) + "]";
          const toml::table* t = (*arr)[i].as_table();
          if (t == nullptr) return InvalidRequest(where + ": must be a table ([[schedules]])");
          std::optional<std::string> id;
          if (const toml::node* n = t->get("id")) id = n->value<std::string>();
          if (!id) return InvalidRequest(where + ".id: required, a string");
          if (!ids.insert(*id).second) {
            return InvalidRequest(where + ".id: the schedule " + *id + " is defined twice");
          }
          std::ostringstream json;
          json << toml::json_formatter{*t};
          out.config.schedules.push_back({*id, where, json.str()});
        }
        continue;
      }
      if (key == "alerts") {
        auto rules = ParseAlertTables(node, config_path);
        if (!rules.ok()) return rules.status();
        out.config.alerts = std::move(rules).value();
        continue;
      }
      if (key == "limits") {
        const toml::array* arr = node.as_array();
        if (arr == nullptr) {
          return InvalidRequest(config_path +
                                ": key \"limits\" must be an array of tables "
                                "([[limits]])");
        }
        std::set<std::string> names;
        for (std::size_t i = 0; i < arr->size(); ++i) {
          auto spec = TomlLimit((*arr)[i], config_path + ": limits[" + std::to_string(i) + "]");
          if (!spec.ok()) return spec.status();
          if (!names.insert(spec->name).second) {
            return InvalidRequest(config_path + ": limits[" + std::to_string(i) +
                                  "].name: the limit " + spec->name + " is defined twice");
          }
          out.config.limits.push_back(std::move(spec).value());
        }
        continue;
      }
      bool known = false;
      for (const auto& def : Options()) known = known || def.key == key;
      if (!known) return InvalidRequest(config_path + ": unknown key \"" + key + "\"");
      auto text = TomlScalar(node, key);
      if (!text &&
          (key == "redact_fields" || key == "allowed_hosts" || key == "cors_allowed_origins")) {
        return InvalidRequest(config_path + ": key \"" + key +
                              "\" must be a string or an array of strings without commas");
      }
      if (!text && key == "log_levels") {
        return InvalidRequest(config_path +
                              ": key \"log_levels\" must be a string or a table of "
                              "strings ([log_levels] http = \"debug\")");
      }
      if (!text) {
        return InvalidRequest(config_path + ": key \"" + key + "\" must be a string or number");
      }
      file_values[key] = *text;
    }
    out.config.config_file = config_path;
  }

  for (const auto& def : Options()) {
    std::string source;
    std::string value;
    if (flag_opts[def.key]->count()) {
      source = FlagOf(def.key);
      value = def.flag ? (flag_bools[def.key] ? "on" : "off") : flag_values[def.key];
    } else if (auto v = env(EnvOf(def.key))) {
      source = EnvOf(def.key);
      value = *v;
    } else if (auto f = file_values.find(def.key); f != file_values.end()) {
      source = config_path + ": " + def.key;
      value = PathFromConfigFile(def.key, f->second, config_path);
    } else {
      continue;
    }
    const std::string err = def.apply(out.config, value);
    if (!err.empty()) return InvalidRequest(source + ": " + err + " (got \"" + value + "\")");
  }
  const ServerConfig& c = out.config;
  if (c.max_request_bytes < c.max_payload_bytes) {
    return InvalidRequest("max_request_bytes must be at least max_payload_bytes");
  }
  if (c.max_reading_request_bytes < c.max_request_bytes) {
    return InvalidRequest("max_reading_request_bytes must be at least max_request_bytes");
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return InvalidRequest(
        c.tls_cert_file.empty()
            ? "tls_key_file is set but tls_cert_file is not: give both or neither"
            : "tls_cert_file is set but tls_key_file is not: give both or neither");
  }
  if (!c.tls_client_ca_file.empty() && c.tls_cert_file.empty()) {
    return InvalidRequest("tls_client_ca_file needs tls_cert_file and tls_key_file");
  }
  if (c.scheduler.default_backoff.max_ms < c.scheduler.default_backoff.initial_ms) {
    return InvalidRequest("backoff_max_ms must be at least backoff_initial_ms");
  }
  return out;
}

std::string OptionsMarkdown() {
  std::string md =
      "| key (TOML) | flag | variable | default | meaning |\n| --- | --- | --- | --- | --- |\n";
  for (const auto& def : Options()) {
    md += "| `" + def.key + "` | `" + FlagOf(def.key) + "` | `" + EnvOf(def.key) + "` | `" +
          def.default_text + "` | " + def.help + " |\n";
  }
  return md;
}

}  // namespace ym
