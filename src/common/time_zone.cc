#include "common/time_zone.h"

#include <chrono>
#include <exception>
#include <string>

namespace ym {

Result<const date::time_zone*> FindTimeZone(std::string_view name, std::string_view field) {
  const std::string what = std::string(field) + ": ";
  if (name.empty()) return Validation(what + "a time zone name is required (e.g. \"UTC\")");
  try {
    const date::time_zone* tz = date::locate_zone(name);
    // With the system tz database a zone's file is read at its first conversion; do it now,
    // here, so that no later conversion (on the core thread) reads a file or can fail.
    (void)tz->get_info(date::sys_seconds{std::chrono::seconds{0}});
    return tz;
  } catch (const std::exception& e) {
    return Validation(what + "\"" + std::string(name) +
                      "\" is not a time zone of the tz database (an IANA name such as "
                      "\"Europe/Paris\" or \"UTC\")");
  }
}

}  // namespace ym
