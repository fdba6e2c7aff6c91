// The CLI's answers to mistyped or missing command names, and its own version (src/cli/suggest.h,
// src/cli/parse.cc). No server is needed: all of it is decided while parsing.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/cli.h"
#include "common/build_info.h"

namespace ym::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

ParseOutcome Parse(const std::vector<std::string>& args) {
  return ParseCommandLine(args, std::nullopt);
}

TEST(CliVersionTest, VersionFlagAndCommandPrintTheBuildWithoutAServer) {
  const std::string line = "yardmaster " + VersionLine() + "\n";
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--version"},
                                               {"version"},
                                               {"version", "--server", "http://h:1"}}) {
    ParseOutcome o = Parse(args);
    EXPECT_FALSE(o.invocation.has_value());
    EXPECT_EQ(o.exit_code, kExitOk);
    EXPECT_EQ(o.out, line);
    EXPECT_EQ(o.err, "");
  }
  EXPECT_THAT(line, StartsWith("yardmaster " YARDMASTER_VERSION));
  ParseOutcome o = Parse({"version", "--json"});
  EXPECT_EQ(o.exit_code, kExitOk);
  EXPECT_EQ(o.out, std::string(R"({"version":")") + YARDMASTER_VERSION + R"(","commit":")" +
                       std::string(BuildCommit()) + "\"}\n");
}

TEST(CliVersionTest, VersionComesFromTheProjectVersion) {
  // Three dot-separated numbers, the form project(VERSION) takes; the macros agree with it.
  const std::string v = YARDMASTER_VERSION;
  EXPECT_EQ(v, std::to_string(YARDMASTER_VERSION_MAJOR) + "." +
                   std::to_string(YARDMASTER_VERSION_MINOR) + "." +
                   std::to_string(YARDMASTER_VERSION_PATCH));
  EXPECT_EQ(std::string(kVersion), v);
  EXPECT_EQ(std::string(yardmaster::kVersion), v);
  const std::string commit(BuildCommit());
  EXPECT_TRUE(commit == "unknown" || commit.size() == 12 || commit.size() == 18) << commit;
}

}  // namespace
}  // namespace ym::cli
