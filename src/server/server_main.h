// Entry point of `yardmaster server`: parses the server's flags, environment (YM_*) and TOML
// config file, runs the server until SIGTERM/SIGINT, and returns the process exit code.
// argv[0] is "server".
#pragma once

namespace ym {

int ServerMain(int argc, char** argv);

}  // namespace ym
