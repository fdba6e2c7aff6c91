// ServerConfig: precedence (flag > environment > file > default) and validation of every source.

#include "server/config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config_fixture.h"

namespace ym {
namespace {

class ConfigTest : public test::ConfigFixture {};

TEST_F(ConfigTest, DefaultsMatchTheDesign) {
  auto c = Load({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.listen_host, "127.0.0.1");
  EXPECT_EQ(c->config.listen_port, 7433);
  EXPECT_EQ(c->config.data_dir, "./data");
  EXPECT_EQ(c->config.durability, Durability::kFull);
  EXPECT_EQ(c->config.max_payload_bytes, 1u << 20);
  EXPECT_EQ(c->config.scheduler.idempotency_window_ms, 24LL * 3600 * 1000);
}

TEST_F(ConfigTest, FlagBeatsEnvironmentBeatsFile) {
  const std::string file =
      WriteFile("data_dir = \"/from/file\"\nio_threads = 3\nlog_level = \"warn\"\n");
  env_["YM_DATA_DIR"] = "/from/env";
  env_["YM_IO_THREADS"] = "5";
  auto c = Load({"--config", file, "--data-dir", "/from/flag"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.data_dir, "/from/flag");  // flag over env and file
  EXPECT_EQ(c->config.io_threads, 5);           // env over file
  EXPECT_EQ(c->config.log_level, "warn");       // file over default
}

TEST_F(ConfigTest, ConfigFileFromTheEnvironment) {
  env_["YM_CONFIG"] = WriteFile("listen = \"127.0.0.1:0\"\ndurability = \"relaxed\"\n");
  auto c = Load({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.listen_port, 0);
  EXPECT_EQ(c->config.durability, Durability::kRelaxed);
}

TEST_F(ConfigTest, ErrorsNameTheirSource) {
  env_["YM_DURABILITY"] = "sometimes";
  auto c = Load({});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidRequest);
  EXPECT_NE(c.status().message().find("YM_DURABILITY"), std::string::npos);
  EXPECT_NE(c.status().message().find("sometimes"), std::string::npos);

  env_.clear();
  c = Load({"--io-threads", "0"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--io-threads"), std::string::npos);

  const std::string file = WriteFile("max_payload_bytes = \"lots\"\n");
  c = Load({"--config", file});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find(file), std::string::npos);
  EXPECT_NE(c.status().message().find("max_payload_bytes"), std::string::npos);
}

TEST_F(ConfigTest, RejectsBadValues) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--listen", "nocolon"},
           {"--listen", "127.0.0.1:70000"},
           {"--listen", "127.0.0.1:x"},
           {"--data-dir", ""},
           {"--max-payload-bytes", "0"},
           {"--max-payload-bytes", "12abc"},
           {"--backoff-multiplier", "0.5"},
           {"--backoff-multiplier", "nan"},
           {"--log-format", "xml"},
           {"--retention-dead-ms", "-1"},
           {"--default-lease-ms", "50"},
           {"--liveness-deadline-ms", "1999"},
           {"--no-such-flag", "1"},
           {"--max-request-bytes", "2048", "--max-payload-bytes", "4096"},
           {"--backoff-initial-ms", "5000", "--backoff-max-ms", "1000"},
       }) {
    auto c = Load(args);
    EXPECT_FALSE(c.ok()) << "accepted: " << args[0] << " " << args[1];
  }
}

TEST_F(ConfigTest, UnknownOrMalformedFileIsAnError) {
  auto c = Load({"--config", WriteFile("listen_addr = \"x\"\n")});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("unknown key \"listen_addr\""), std::string::npos);

  c = Load({"--config", WriteFile("listen = \n")});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("line"), std::string::npos);

  c = Load({"--config", "/nonexistent/yardmaster.toml"});
  EXPECT_FALSE(c.ok());

  c = Load({"--config", WriteFile("[retention]\ndead_ms = 5\n")});
  EXPECT_FALSE(c.ok()) << "tables are not options";
}

TEST_F(ConfigTest, HelpListsEveryOptionWithItsVariable) {
  auto c = Load({"--help"});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->help);
  for (const char* s : {"--listen", "YM_LISTEN", "--data-dir", "YM_DATA_DIR", "--durability",
                        "--retention-succeeded-ms", "YM_IDEMPOTENCY_WINDOW_MS", "--config"}) {
    EXPECT_NE(c->text.find(s), std::string::npos) << s;
  }
  const std::string md = OptionsMarkdown();
  EXPECT_NE(md.find("`YM_SHUTDOWN_GRACE_MS`"), std::string::npos);
}

// Each key is wired to its own field: a file that sets every option to a value other than its
// default changes every field, and no two keys write the same one.
TEST_F(ConfigTest, EveryKeyOfTheFileReachesItsField) {
  const std::string file = WriteFile(
      "listen = \"[::1]:8080\"\n"
      "data_dir = \"/d\"\n"
      "durability = \"relaxed\"\n"
      "lease_reply = \"after-commit\"\n"
      "io_threads = 7\n"
      "max_payload_bytes = 2000\n"
      "max_request_bytes = 4096\n"
      "max_reply_bytes = 5000\n"
      "max_queued_reply_bytes = 2000000\n"
      "max_reading_request_bytes = 3000000\n"
      "max_connections = 11\n"
      "max_connections_per_client = 12\n"
      "shutdown_grace_ms = 13\n"
      "liveness_deadline_ms = 2500\n"
      "log_level = \"debug\"\n"
      "log_format = \"json\"\n"
      "max_queued_commands = 14\n"
      "completion_margin = 15\n"
      "default_lease_ms = 1600\n"
      "default_max_attempts = 17\n"
      "backoff_initial_ms = 18\n"
      "backoff_max_ms = 19000\n"
      "backoff_multiplier = 1.5\n"
      "retention_succeeded_ms = 20\n"
      "retention_dead_ms = 21\n"
      "retention_cancelled_ms = 22\n"
      "idempotency_window_ms = 23000\n"
      "idempotency_cache_keys = 24\n"
      "insecure = true\n"
      "allowed_hosts = [\"Jobs.Internal\", \"10.0.0.7\"]\n"
      "cors_allowed_origins = \"https://Dash.example:443, http://localhost:3000\"\n");
  auto c = Load({"--config", file});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const ServerConfig& s = c->config;
  EXPECT_EQ(s.config_file, file);
  EXPECT_EQ(s.listen_host, "::1");  // the brackets of an IPv6 address are not part of the host
  EXPECT_EQ(s.listen_port, 8080);
  EXPECT_EQ(s.data_dir, "/d");
  EXPECT_EQ(s.durability, Durability::kRelaxed);
  EXPECT_TRUE(s.lease_reply_after_commit);
  EXPECT_EQ(s.io_threads, 7);
  EXPECT_EQ(s.max_payload_bytes, 2000u);
  EXPECT_EQ(s.max_request_bytes, 4096u);
  EXPECT_EQ(s.max_reply_bytes, 5000u);
  EXPECT_EQ(s.max_queued_reply_bytes, 2000000u);
  EXPECT_EQ(s.max_reading_request_bytes, 3000000u);
  EXPECT_EQ(s.max_connections, 11u);
  EXPECT_EQ(s.max_connections_per_client, 12u);
  EXPECT_EQ(s.shutdown_grace_ms, 13);
  EXPECT_EQ(s.liveness_deadline_ms, 2500);
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_EQ(s.log_format, "json");
  EXPECT_EQ(s.max_queued_commands, 14u);
  EXPECT_EQ(s.completion_margin, 15u);
  EXPECT_EQ(s.scheduler.default_lease_ms, 1600);
  EXPECT_EQ(s.scheduler.default_max_attempts, 17);
  EXPECT_EQ(s.scheduler.default_backoff.initial_ms, 18);
  EXPECT_EQ(s.scheduler.default_backoff.max_ms, 19000);
  EXPECT_DOUBLE_EQ(s.scheduler.default_backoff.multiplier, 1.5);  // a TOML float
  EXPECT_EQ(s.scheduler.default_retention.succeeded_ms, 20);
  EXPECT_EQ(s.scheduler.default_retention.dead_ms, 21);
  EXPECT_EQ(s.scheduler.default_retention.cancelled_ms, 22);
  EXPECT_EQ(s.scheduler.idempotency_window_ms, 23000);
  EXPECT_EQ(s.scheduler.idempotency_cache_keys, 24u);
  EXPECT_TRUE(s.insecure);
  EXPECT_EQ(s.allowed_hosts, (std::vector<std::string>{"jobs.internal", "10.0.0.7"}));
  // Normalized as a browser sends an Origin: lower case, default port dropped.
  EXPECT_EQ(s.cors_allowed_origins,
            (std::vector<std::string>{"https://dash.example", "http://localhost:3000"}));
}

// --insecure is a flag without value; the variable and the file take on/off.
TEST_F(ConfigTest, InsecureIsAFlagAndOffByDefault) {
  auto c = Load({});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->config.insecure);
  EXPECT_EQ(c->config.listen_host, "127.0.0.1");  // the safe default
  c = Load({"--insecure", "--listen", "0.0.0.0:7433"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->config.insecure);
  env_["YM_INSECURE"] = "on";
  c = Load({});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->config.insecure);
  env_["YM_INSECURE"] = "yes";
  c = Load({});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("YM_INSECURE: must be one of on off true false"),
            std::string::npos)
      << c.status().message();
  env_.erase("YM_INSECURE");
  env_["YM_INSECURE"] = "on";
  c = Load({"--insecure=off"});  // CLI11 takes a flag's value this way: off means off
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->config.insecure);
  env_.erase("YM_INSECURE");
  auto help = Load({"--help"});
  ASSERT_TRUE(help.ok());
  EXPECT_NE(help->text.find("--insecure"), std::string::npos);
  EXPECT_NE(help->text.find("--allowed-hosts"), std::string::npos);
  EXPECT_NE(help->text.find("--cors-allowed-origins"), std::string::npos);
}

TEST_F(ConfigTest, BadHostsAndOriginsAreClearErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--allowed-hosts", "jobs.internal:7433"}, "without port"},
      {{"--allowed-hosts", "https://jobs.internal"}, "without scheme or path"},
      {{"--allowed-hosts", "a,,b"}, "empty"},
      {{"--allowed-hosts", "bad host"}, "not a host name"},
      {{"--cors-allowed-origins", "dash.example"}, "no scheme://"},
      {{"--cors-allowed-origins", "null"}, "no scheme://"},
      {{"--cors-allowed-origins", "ftp://dash.example"}, "http or https"},
      {{"--cors-allowed-origins", "https://dash.example/"}, "no path"},
      {{"--cors-allowed-origins", "https://dash.example:99999"}, "bad host or port"},
  };
  for (const auto& [args, want] : cases) {
    auto c = Load(args);
    ASSERT_FALSE(c.ok()) << args[1];
    EXPECT_NE(c.status().message().find(args[0]), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find(want), std::string::npos) << c.status().message();
  }
  auto c = Load({"--config", WriteFile("allowed_hosts = [1, 2]\n")});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("\"allowed_hosts\" must be a string or an array"),
            std::string::npos)
      << c.status().message();
}

// A relative path in the config file (a key ending in _file or _dir) is taken from the
// file's directory; an absolute one, and any path from a flag or a variable, is left as given.
TEST_F(ConfigTest, RelativePathsInTheFileAreFromTheFilesDirectory) {
  const std::string file = WriteFile(
      "tls_cert_file = \"certs/server.pem\"\n"
      "tls_key_file = \"/etc/ym/server.key\"\n"
      "tls_client_ca_file = \"../ca/./clients.pem\"\n"
      "data_dir = \"data\"\n");
  const std::string dir = file.substr(0, file.rfind('/'));   // /tmp
  const std::string parent = dir.substr(0, dir.rfind('/'));  // "" for /tmp
  auto c = Load({"--config", file});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.tls_cert_file, dir + "/certs/server.pem");
  EXPECT_EQ(c->config.tls_key_file, "/etc/ym/server.key");
  EXPECT_EQ(c->config.tls_client_ca_file, parent + "/ca/clients.pem");
  EXPECT_EQ(c->config.data_dir, dir + "/data");

  // Flags and variables: from the working directory, unchanged.
  env_["YM_TLS_KEY_FILE"] = "env.key";
  c = Load({"--config", file, "--tls-cert-file", "flag.pem", "--data-dir", "d"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.tls_cert_file, "flag.pem");
  EXPECT_EQ(c->config.tls_key_file, "env.key");
  EXPECT_EQ(c->config.data_dir, "d");
  env_.clear();

  // Keys that are not paths are not touched.
  c = Load({"--config", WriteFile("listen = \"127.0.0.1:0\"\ndurability = \"relaxed\"\n")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.listen_port, 0);
}

// TLS (docs/security.md): cert and key both or neither, the client CA only with them; each
// key is reachable from the flag, the variable and the file. The files themselves are read at
// start (net/tls.h; tests/integration/test_tls.py checks those errors).
TEST_F(ConfigTest, AuditCheckpointOptions) {
  auto c = Load({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->config.audit_checkpoint_every, 1000u);
  EXPECT_TRUE(c->config.audit_checkpoint_key_file.empty());
  c = Load({"--config", WriteFile("audit_checkpoint_every = 7\n"
                                  "audit_checkpoint_key_file = \"/k\"\n")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.audit_checkpoint_every, 7u);
  EXPECT_EQ(c->config.audit_checkpoint_key_file, "/k");
  c = Load({"--audit-checkpoint-every", "0"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->config.audit_checkpoint_every, 0u);
  EXPECT_FALSE(Load({"--audit-checkpoint-every", "-1"}).ok());
  EXPECT_FALSE(Load({"--audit-checkpoint-key-file", ""}).ok());
}

TEST_F(ConfigTest, TlsFilesComeInPairs) {
  auto c = Load({});
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->config.tls_cert_file.empty());
  EXPECT_EQ(c->config.tls_handshake_timeout_ms, 10'000);

  c = Load({"--tls-cert-file", "/c.pem", "--tls-key-file", "/k.pem", "--tls-client-ca-file",
            "/ca.pem", "--tls-handshake-timeout-ms", "2500"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.tls_cert_file, "/c.pem");
  EXPECT_EQ(c->config.tls_key_file, "/k.pem");
  EXPECT_EQ(c->config.tls_client_ca_file, "/ca.pem");
  EXPECT_EQ(c->config.tls_handshake_timeout_ms, 2500);

  env_["YM_TLS_CERT_FILE"] = "/env-c.pem";
  c = Load({"--config", WriteFile("tls_cert_file = \"/file-c.pem\"\n"
                                  "tls_key_file = \"/file-k.pem\"\n")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.tls_cert_file, "/env-c.pem");  // the variable beats the file
  EXPECT_EQ(c->config.tls_key_file, "/file-k.pem");
  env_.clear();

  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--tls-cert-file", "/c.pem"},
       "tls_cert_file is set but tls_key_file is not: give both or neither"},
      {{"--tls-key-file", "/k.pem"},
       "tls_key_file is set but tls_cert_file is not: give both or neither"},
      {{"--tls-client-ca-file", "/ca.pem"},
       "tls_client_ca_file needs tls_cert_file and tls_key_file"},
      {{"--tls-cert-file", "", "--tls-key-file", "/k.pem"}, "--tls-cert-file: must not be empty"},
      {{"--tls-handshake-timeout-ms", "10"}, "--tls-handshake-timeout-ms: must be an integer"},
  };
  for (const auto& [args, want] : cases) {
    c = Load(args);
    ASSERT_FALSE(c.ok()) << args[0];
    EXPECT_NE(c.status().message().find(want), std::string::npos) << c.status().message();
  }
  auto help = Load({"--help"});
  ASSERT_TRUE(help.ok());
  for (const char* s : {"--tls-cert-file", "YM_TLS_KEY_FILE", "--tls-client-ca-file"}) {
    EXPECT_NE(help->text.find(s), std::string::npos) << s;
  }
}

TEST_F(ConfigTest, FileValuesOfTheWrongTypeAreErrorsNamingTheKey) {
  // A boolean is read as its text, which no option accepts; the error names file, key and value.
  auto c = Load({"--config", WriteFile("durability = true\n")});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("durability"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("\"true\""), std::string::npos) << c.status().message();
  // An array is not a scalar at all.
  const std::string file = WriteFile("io_threads = [1, 2]\n");
  c = Load({"--config", file});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), file + ": key \"io_threads\" must be a string or number");
  // A float where an integer is expected is refused, not truncated.
  c = Load({"--config", WriteFile("io_threads = 2.5\n")});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("io_threads"), std::string::npos) << c.status().message();
}

TEST_F(ConfigTest, TheReadingBudgetMustHoldTheLargestRequest) {
  auto c = Load({"--max-request-bytes", "2000000", "--max-reading-request-bytes", "1048576"});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(), "max_reading_request_bytes must be at least max_request_bytes");
  c = Load({"--max-request-bytes", "1048576", "--max-reading-request-bytes", "1048576"});
  EXPECT_TRUE(c.ok()) << c.status().ToString();
}

}  // namespace
}  // namespace ym
