// Logging setup for the server: spdlog to stderr, as text or one JSON object per line.
//
// Call once from main before starting any thread. Afterwards use spdlog's free functions
// (spdlog::info, ...) from any thread; spdlog's default logger is thread-safe.
#pragma once

#include <string>

#include "common/status.h"

namespace ym::obs {

// level: trace|debug|info|warn|error|critical|off; format: text|json.
Status SetupLogging(const std::string& level, const std::string& format);

// Escapes `s` for use inside a JSON string literal.
std::string JsonEscape(std::string_view s);

}  // namespace ym::obs
