// The `[[alerts]]` tables of the config file (server/alert_config.h): a good rule reaches
// ServerConfig::alerts, and every bad one stops the server with an error naming the file, the
// table, the rule and the field.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config_fixture.h"
#include "server/config.h"

namespace ym {
namespace {

class AlertsConfigTest : public test::ConfigFixture {
 protected:
  Result<ConfigOutcome> LoadFile(const std::string& text) {
    path_ = WriteFile(text);
    return Load({"--config=" + path_});
  }
  // The error of loading `text`, with the temporary file's path replaced by "FILE".
  std::string ErrorOf(const std::string& text) {
    auto r = LoadFile(text);
    if (r.ok()) return "(loaded)";
    std::string m = r.status().message();
    for (std::size_t at; (at = m.find(path_)) != std::string::npos;)
      m.replace(at, path_.size(), "FILE");
    return m;
  }
  std::string path_;
};

TEST_F(AlertsConfigTest, GoodRulesReachTheConfig) {
  auto c = LoadFile(R"(
[[alerts]]
name = "billing-lag"
queue = "billing"
condition = "lag_seconds > 30 for 1m"
webhooks = ["http://127.0.0.1:9000/hook", "http://alerts.internal/x?y=1"]
headers = { Authorization = "Bearer abc", "X-Team" = "pay" }

[[alerts]]
name = "dead-anywhere"
queue = "*"
condition = "dead_growth >= 1 over 15m"
webhooks = ["http://127.0.0.1:9000/dead"]
)");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const auto& rules = c->config.alerts;
  ASSERT_EQ(rules.size(), 2u);
  EXPECT_EQ(rules[0].name, "billing-lag");
  EXPECT_EQ(rules[0].queue, "billing");
  EXPECT_EQ(rules[0].condition.kind, alerts::ConditionKind::kLagSeconds);
  EXPECT_EQ(rules[0].condition.for_ms, 60'000);
  ASSERT_EQ(rules[0].webhooks.size(), 2u);
  EXPECT_EQ(rules[0].webhooks[0].url.port, 9000);
  EXPECT_EQ(rules[0].webhooks[1].url.port, 80);
  EXPECT_EQ(rules[0].webhooks[1].url.target, "/x?y=1");
  ASSERT_EQ(rules[0].webhooks[1].headers.size(), 2u);
  EXPECT_EQ(rules[0].webhooks[1].headers[0].first, "Authorization");
  EXPECT_EQ(rules[1].queue, "");  // "*": every queue
  EXPECT_TRUE(rules[1].webhooks[0].headers.empty());
}

TEST_F(AlertsConfigTest, EveryBadRuleNamesTheRuleAndTheField) {
  const std::string hook = "webhooks = [\"http://127.0.0.1:9/h\"]\n";
  struct Case {
    std::string body;  // one [[alerts]] table's keys
    std::string error;
  };
  const std::vector<Case> cases = {
      {"condition = \"lag_seconds > 1\"\n" + hook, "FILE: alerts[0].name: required"},
      {"name = \"a b\"\ncondition = \"lag_seconds > 1\"\n" + hook,
       "FILE: alerts[0].name: must be 1..64 characters of [A-Za-z0-9_.:-]"},
      {"name = \"" + std::string(65, 'n') + "\"\ncondition = \"lag_seconds > 1\"\n" + hook,
       "FILE: alerts[0].name: must be 1..64 characters"},
      {"name = \"r\"\n" + hook, "FILE: alerts[0] (r).condition: required"},
      {"name = \"r\"\ncondition = 3\n" + hook, "FILE: alerts[0] (r).condition: must be a string"},
      {"name = \"r\"\ncondition = \"depth > 3\"\n" + hook,
       "FILE: alerts[0] (r).condition: unknown measure \"depth\""},
      {"name = \"r\"\ncondition = \"lag_seconds > 3 for ever\"\n" + hook,
       "FILE: alerts[0] (r).condition: for: bad duration \"ever\""},
      {"name = \"r\"\ncondition = \"failure_ratio > 0.5\"\n" + hook,
       "FILE: alerts[0] (r).condition: failure_ratio needs a window"},
      {"name = \"r\"\nqueue = \"no spaces\"\ncondition = \"lag_seconds > 1\"\n" + hook,
       "FILE: alerts[0] (r).queue: must be a queue name"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\n", "FILE: alerts[0] (r).webhooks: required"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\nwebhooks = []\n",
       "FILE: alerts[0] (r).webhooks: must be an array of 1 to 8 http:// URLs"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\nwebhooks = \"http://x/\"\n",
       "FILE: alerts[0] (r).webhooks: must be an array"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\nwebhooks = [\"https://x/h\"]\n",
       "FILE: alerts[0] (r).webhooks[0]: \"https://x/h\": https is not supported"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\nwebhooks = [\"http://x/h\", 3]\n",
       "FILE: alerts[0] (r).webhooks[1]: must be a string"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\nwebhooks = [\"http://x/h\", "
       "\"http://x/h\"]\n",
       "FILE: alerts[0] (r).webhooks[1]: listed twice"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\n" + hook + "headers = \"x\"\n",
       "FILE: alerts[0] (r).headers: must be a table"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\n" + hook + "headers = { X-N = 3 }\n",
       "FILE: alerts[0] (r).headers.X-N: must be a string"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\n" + hook +
           "headers = { Content-Type = \"text/plain\" }\n",
       "FILE: alerts[0] (r).headers.Content-Type: header \"Content-Type\" is set by the broker"},
      {"name = \"r\"\ncondition = \"lag_seconds > 1\"\n" + hook + "threshold = 3\n",
       "FILE: alerts[0] (r): unknown key \"threshold\""},
  };
  for (const Case& c : cases) {
    const std::string err = ErrorOf("[[alerts]]\n" + c.body);
    EXPECT_EQ(err.rfind(c.error, 0), 0u) << "config:\n" << c.body << "error: " << err;
  }
}

TEST_F(AlertsConfigTest, DuplicateNamesAndBadShapesAreErrors) {
  EXPECT_EQ(ErrorOf("[[alerts]]\nname = \"r\"\ncondition = \"lag_seconds > 1\"\n"
                    "webhooks = [\"http://x/\"]\n"
                    "[[alerts]]\nname = \"r\"\ncondition = \"no_pollers for 1m\"\n"
                    "webhooks = [\"http://x/\"]\n"),
            "FILE: alerts[1].name: the alert r is defined twice");
  EXPECT_EQ(ErrorOf("alerts = 3\n"),
            "FILE: key \"alerts\" must be an array of tables ([[alerts]])");
  EXPECT_EQ(ErrorOf("alerts = [3]\n"), "FILE: alerts[0]: must be a table ([[alerts]])");
}

}  // namespace
}  // namespace ym
