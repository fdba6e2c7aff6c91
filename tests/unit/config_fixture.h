// ConfigFixture: loads a ServerConfig the way `yardmaster server` does, from arguments, a fake
// environment (env_) and temporary config files (WriteFile), for the config test suites.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/config.h"

namespace ym::test {

class ConfigFixture : public ::testing::Test {
 protected:
  // `args` follow `yardmaster server`.
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

  // A temporary file holding `text`, removed after the test.
  std::string WriteFile(const std::string& text) {
    char path[] = "/tmp/ym-config-XXXXXX";
    int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path) << text;
    files_.push_back(path);
    return path;
  }

  // The message of a load that must fail ("" and a test failure when it did not).
  static std::string Error(const Result<ConfigOutcome>& c) {
    EXPECT_FALSE(c.ok());
    return c.ok() ? std::string() : c.status().message();
  }

  void TearDown() override {
    for (const auto& f : files_) std::remove(f.c_str());
  }

  std::map<std::string, std::string> env_;
  std::vector<std::string> files_;
};

}  // namespace ym::test
