// What this build of Yardmaster is: the release version (project() in CMakeLists.txt, through
// the generated yardmaster/version.h) and the git commit it was built from (generated on every
// build by cmake/BuildCommit.cmake). Shown by `yardmaster --version`, GET /v1/info and the
// ym_build_info metric.
//
// Threads: constants; any thread.
#pragma once

#include <string>
#include <string_view>

#include "yardmaster/version.h"

namespace ym {

// "MAJOR.MINOR.PATCH".
inline constexpr std::string_view kVersion = YARDMASTER_VERSION;

// The commit's 12-digit hash, with "-dirty" when tracked files differed from it, or "unknown"
// when the build was not made from a git checkout.
std::string_view BuildCommit();

// "0.1.0 (commit 0123456789ab)", or "0.1.0" when the commit is unknown.
std::string VersionLine();

}  // namespace ym
