#!/usr/bin/env bash
# Installs every Debian package Yardmaster needs to build, test and run. Idempotent: packages
# already present are skipped, so a warm machine pays only for one dpkg query.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  clang-14 libclang-rt-14-dev clang-format-14
  libboost-dev libboost-system-dev
  rapidjson-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libhowardhinnant-date-dev tzdata libssl-dev libsqlite3-dev sqlite3
  # the openssl command: tests/integration/test_tls.py makes its certificates with it
  openssl
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-pytest python3-yaml curl procps lcov
  # prometheus and promtool: the alert rules are checked and a real server scrapes the broker
  # in tests/integration/test_deploy_files.py and test_prometheus_scrape.py
  prometheus
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian's prometheus package enables and starts a system-wide server on :9090. The tests run
# their own on a free loopback port, so a server this script brought in is stopped and disabled.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ] &&
    command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
fi
