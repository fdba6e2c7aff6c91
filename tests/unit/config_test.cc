// ServerConfig: precedence (flag > environment > file > default) and validation of every source.

#include "server/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace ym {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  Result<ConfigOutcome> Load(std::vector<std::string> args) {
    args.insert(args.begin(), "server");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    EnvLookup env = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return LoadServerConfig(static_cast<int>(argv.size()), argv.data(), env);
  }

  std::string WriteFile(const std::string& text) {
    char path[] = "/tmp/ym-config-XXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }

  void TearDown() override {
    for (const auto& f : files_) std::remove(f.c_str());
  }

  std::map<std::string, std::string> env_;
  std::vector<std::string> files_;
};

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

}  // namespace
}  // namespace ym
