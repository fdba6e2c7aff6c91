#include "server/log_config.h"

#include "obs/redact.h"

namespace ym {

obs::LogOptions LogOptionsOf(const ServerConfig& config) {
  obs::LogOptions o;
  o.level = config.log_level;
  o.format = config.log_format;
  o.component_levels = config.log_component_levels;
  if (!config.access_log) {
    o.component_levels["access"] = "off";
  } else if (!o.component_levels.count("access")) {
    o.component_levels["access"] = "info";
  }
  return o;
}

Status SetupServerLogging(const ServerConfig& config) {
  YM_RETURN_IF_ERROR(obs::SetupLogging(LogOptionsOf(config)));
  obs::SetPayloadRedactor(config.redact_fields);
  return Status::Ok();
}

}  // namespace ym
