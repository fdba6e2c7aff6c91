// libFuzzer target for the server's configuration (src/server/config.cc): a TOML file given by
// --config, and one environment variable, both as an operator could write them.
//
// Input layout: byte 0 picks an option whose YM_* variable gets the text up to the first NUL;
// the rest is the TOML file. Properties: bad input is an error value naming its source, never
// a crash or an exception; an accepted configuration satisfies the cross-field rules
// (max_request_bytes >= max_payload_bytes, backoff max >= initial) and its ranges.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "fuzz_check.h"
#include "server/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("ym_config_fuzz_" + std::to_string(::getpid()) + ".toml"))
                                      .string();
  static constexpr const char* kVars[] = {"YM_LISTEN",
                                          "YM_DURABILITY",
                                          "YM_IO_THREADS",
                                          "YM_MAX_PAYLOAD_BYTES",
                                          "YM_MAX_REQUEST_BYTES",
                                          "YM_LOG_LEVEL",
                                          "YM_BACKOFF_MAX_MS",
                                          "YM_NO_SUCH_VARIABLE"};
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::size_t nul = rest.find('\0');
  std::string env_value = nul == std::string::npos ? std::string() : rest.substr(0, nul);
  std::string toml = nul == std::string::npos ? rest : rest.substr(nul + 1);
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << toml;
  }
  const std::string var = kVars[data[0] % 8];
  ym::EnvLookup env = [&](const std::string& name) -> std::optional<std::string> {
    if (nul != std::string::npos && name == var) return env_value;
    return std::nullopt;
  };
  const char* argv[] = {"server", "--config", path.c_str()};
  auto out = ym::LoadServerConfig(3, argv, env);
  if (!out.ok()) {
    YM_FUZZ_CHECK(out.status().code() == ym::Code::kInvalidRequest);
    YM_FUZZ_CHECK(!out.status().message().empty());
    return 0;
  }
  const ym::ServerConfig& c = out->config;
  YM_FUZZ_CHECK(c.max_request_bytes >= c.max_payload_bytes);
  YM_FUZZ_CHECK(c.scheduler.default_backoff.max_ms >= c.scheduler.default_backoff.initial_ms);
  YM_FUZZ_CHECK(c.io_threads >= 1);
  YM_FUZZ_CHECK(c.durability == ym::Durability::kFull || c.durability == ym::Durability::kRelaxed);
  YM_FUZZ_CHECK(c.config_file == path);
  return 0;
}
