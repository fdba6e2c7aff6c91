// The logging options of a ServerConfig as obs::LogOptions, and the process-wide logging and
// redaction set from them (docs/operations.md, "Logs").
#pragma once

#include "common/status.h"
#include "obs/logging.h"
#include "server/config.h"

namespace ym {

// log_level, log_format and log_levels; the access component is off unless access_log is on,
// and then at info unless log_levels names it.
obs::LogOptions LogOptionsOf(const ServerConfig& config);

// Installs the logger (stderr) and the payload redactor. Call once, before starting threads.
Status SetupServerLogging(const ServerConfig& config);

}  // namespace ym
