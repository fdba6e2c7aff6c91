#include "common/build_info.h"

namespace ym {

std::string VersionLine() {
  std::string line(kVersion);
  if (BuildCommit() != "unknown") line += " (commit " + std::string(BuildCommit()) + ")";
  return line;
}

}  // namespace ym
