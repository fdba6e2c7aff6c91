// The logging keys of ServerConfig (log_levels, access_log, redact_fields) from every source,
// their bad values, and what server/log_config.h makes of them.
#include "server/log_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config_fixture.h"
#include "server/config.h"

namespace ym {
namespace {

class LogConfigTest : public test::ConfigFixture {};

TEST_F(LogConfigTest, DefaultsAreNoComponentLevelsNoAccessLogNoRedaction) {
  auto c = Load({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->config.log_component_levels.empty());
  EXPECT_FALSE(c->config.access_log);
  EXPECT_TRUE(c->config.redact_fields.empty());
  const obs::LogOptions o = LogOptionsOf(c->config);
  EXPECT_EQ(o.level, "info");
  EXPECT_EQ(o.format, "text");
  EXPECT_EQ(o.component_levels, (std::map<std::string, std::string>{{"access", "off"}}));
}

TEST_F(LogConfigTest, ComponentLevelsFromFlagEnvironmentAndFileTable) {
  auto c = Load({"--log-levels", "http=debug, store=warn"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.log_component_levels,
            (std::map<std::string, std::string>{{"http", "debug"}, {"store", "warn"}}));
  env_["YM_LOG_LEVELS"] = "job=trace";
  c = Load({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.log_component_levels, (std::map<std::string, std::string>{{"job", "trace"}}));
  env_.clear();
  c = Load({"--config", WriteFile("log_level = \"warn\"\n[log_levels]\nhttp = \"debug\"\n"
                                  "access = \"info\"\n")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.log_component_levels,
            (std::map<std::string, std::string>{{"access", "info"}, {"http", "debug"}}));
  c = Load({"--config", WriteFile("log_levels = \"cron=error\"\n")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.log_component_levels,
            (std::map<std::string, std::string>{{"cron", "error"}}));
}

TEST_F(LogConfigTest, BadComponentLevelsAreErrorsNamingSourceAndItem) {
  EXPECT_EQ(Error(Load({"--log-levels", "htp=debug"})),
            "--log-levels: unknown log component \"htp\" (components: server, http, access, "
            "broker, store, job, cron, alerts) (got \"htp=debug\")");
  env_["YM_LOG_LEVELS"] = "http=loud";
  EXPECT_NE(Error(Load({})).find("YM_LOG_LEVELS: log level of http must be trace, debug"),
            std::string::npos);
  env_.clear();
  EXPECT_NE(Error(Load({"--log-levels", "http"})).find("\"http\" must be COMPONENT=LEVEL"),
            std::string::npos);
  const std::string file = WriteFile("[log_levels]\nhttp = 3\n");
  EXPECT_EQ(Error(Load({"--config", file})),
            file +
                ": key \"log_levels\" must be a string or a table of strings ([log_levels] "
                "http = \"debug\")");
  const std::string bad_name = WriteFile("[log_levels]\nnope = \"info\"\n");
  EXPECT_NE(Error(Load({"--config", bad_name})).find("unknown log component \"nope\""),
            std::string::npos);
}

TEST_F(LogConfigTest, AccessLogSwitch) {
  auto c = Load({"--access-log", "on"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->config.access_log);
  EXPECT_EQ(LogOptionsOf(c->config).component_levels.at("access"), "info");
  // log_levels may set the access component's level; access_log off still wins.
  c = Load({"--access-log", "on", "--log-levels", "access=warn"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(LogOptionsOf(c->config).component_levels.at("access"), "warn");
  c = Load({"--access-log", "off", "--log-levels", "access=debug"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(LogOptionsOf(c->config).component_levels.at("access"), "off");
  c = Load({"--config", WriteFile("access_log = true\n")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->config.access_log);
  env_["YM_ACCESS_LOG"] = "off";
  c = Load({"--config", WriteFile("access_log = true\n")});
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->config.access_log) << "the environment beats the file";
  env_.clear();
  EXPECT_EQ(Error(Load({"--access-log", "yes"})),
            "--access-log: must be one of on off true false (got \"yes\")");
}

TEST_F(LogConfigTest, RedactFieldsFromFlagAndFileArray) {
  auto c = Load({"--redact-fields", " password ,api_key,Token"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.redact_fields, (std::vector<std::string>{"password", "api_key", "Token"}));
  c = Load({"--config", WriteFile("redact_fields = [\"card number\", \"ssn\"]\n")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->config.redact_fields, (std::vector<std::string>{"card number", "ssn"}));
  c = Load({"--config", WriteFile("redact_fields = []\n")});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->config.redact_fields.empty());
}

TEST_F(LogConfigTest, BadRedactFieldsAreErrors) {
  EXPECT_EQ(Error(Load({"--redact-fields", "a,,b"})),
            "--redact-fields: a field name is empty (got \"a,,b\")");
  EXPECT_NE(Error(Load({"--redact-fields", std::string(257, 'x')})).find("over 256 bytes"),
            std::string::npos);
  env_["YM_REDACT_FIELDS"] = std::string("a\x01") + "b";
  EXPECT_NE(Error(Load({})).find("YM_REDACT_FIELDS: field name"), std::string::npos);
  env_.clear();
  std::string many;
  for (int i = 0; i < 1001; ++i) many += "f" + std::to_string(i) + ",";
  many.pop_back();
  EXPECT_NE(Error(Load({"--redact-fields", many})).find("at most 1000 field names"),
            std::string::npos);
  for (const char* text : {"redact_fields = [1, 2]\n", "redact_fields = [\"a,b\"]\n",
                           "redact_fields = { a = \"b\" }\n"}) {
    const std::string file = WriteFile(text);
    const std::string err = Error(Load({"--config", file}));
    EXPECT_EQ(err, file +
                       ": key \"redact_fields\" must be a string or an array of strings "
                       "without commas")
        << text;
  }
  // Arrays are refused for every other key, as before.
  const std::string file = WriteFile("io_threads = [1, 2]\n");
  EXPECT_EQ(Error(Load({"--config", file})),
            file + ": key \"io_threads\" must be a string or number");
}

TEST_F(LogConfigTest, HelpListsTheNewOptions) {
  auto c = Load({"--help"});
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->text.find("--log-levels"), std::string::npos);
  EXPECT_NE(c->text.find("--access-log"), std::string::npos);
  EXPECT_NE(c->text.find("--redact-fields"), std::string::npos);
}

}  // namespace
}  // namespace ym
