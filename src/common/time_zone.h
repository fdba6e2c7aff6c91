// IANA time zones by name (issue 10's calendar quotas, later cron), through Howard Hinnant's
// date/tz over the system's tz database (Debian's tzdata, /usr/share/zoneinfo): no hand-written
// rules. A zone is looked up once, where configuration is read and validated; what the core
// receives is the loaded, immutable `date::time_zone`, so window arithmetic on the core thread
// never touches the file system.
#pragma once

#include <date/tz.h>

#include <string_view>

#include "common/status.h"

namespace ym {

// The zone named `name` ("Europe/Paris", "UTC", "America/Sao_Paulo"), loaded: its transitions
// are read here, not at first use. kValidation naming `field` when the name is not in the tz
// database (or the database cannot be read).
Result<const date::time_zone*> FindTimeZone(std::string_view name, std::string_view field);

}  // namespace ym
