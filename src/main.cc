// The `yardmaster` binary: `yardmaster server ...` runs the broker, every other command is the
// command-line client (src/cli).

#include <string_view>

#include "cli/cli.h"
#include "cli/worker.h"
#include "server/server_main.h"

int main(int argc, char** argv) {
  // The server owns its flags, environment and config file, including its own --help; it gets
  // argv untouched (argv[0] == "server") before the client's parser could reject its options.
  if (argc >= 2 && std::string_view(argv[1]) == "server") {
    return ym::ServerMain(argc - 1, argv + 1);
  }
  // The exec worker parses its own line too: everything after `--` is the user's command.
  if (argc >= 2 && std::string_view(argv[1]) == "worker") {
    return ym::cli::WorkerMain(argc - 1, argv + 1);
  }
  return ym::cli::Main(argc, argv);
}
