#!/usr/bin/env bash
# Installs what is needed, builds the release binary and starts the server in the foreground on
# its embedded SQLite store. Extra arguments go to `yardmaster server`, e.g.
#   ./scripts/serve.sh --listen 127.0.0.1:8080 --data-dir /var/lib/yardmaster
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target yardmaster
exec ./build/release/yardmaster server "$@"
