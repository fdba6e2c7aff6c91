#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test:
#   1. release build: unit tests (GoogleTest), integration and fault tests (pytest, real binary)
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the request-parsing fuzzer (libFuzzer, clang) for a bounded time
# Usage: ./scripts/test.sh [--quick]   (--quick: step 1 only)
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
JOBS=$(nproc)
FUZZ_SECONDS=${YM_FUZZ_SECONDS:-60}

./scripts/install-deps.sh

section() { printf '\n=== %s ===\n' "$*"; }

PASSED=0
SKIPPED=0
run_suite() {
  local preset=$1 log
  section "build ($preset)"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$JOBS"
  section "tests ($preset)"
  log=$(mktemp)
  ctest --test-dir "build/$preset" --output-on-failure -j "$JOBS" --timeout 900 | tee "$log"
  # ctest ends with "100% tests passed, 0 tests failed out of N" and lists what did not run.
  local total not_run
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n 1)
  # Count the entries of ctest's closing "did not run" list only ("\t223 - Name (Skipped)").
  not_run=$(grep -cE '^[[:space:]]+[0-9]+ - .*\((Skipped|Disabled|Not Run)\)' "$log" || true)
  PASSED=$((PASSED + ${total:-0} - not_run))
  SKIPPED=$((SKIPPED + not_run))
  rm -f "$log"
}

section "format (.clang-format)"
git ls-files '*.cc' '*.h' | xargs clang-format-14 --dry-run -Werror
echo "every C++ file is formatted"

run_suite release
if [ "$QUICK" = 1 ]; then
  echo "summary: $PASSED passed, 0 failed, $SKIPPED skipped"
  exit 0
fi

# Sanitizer findings abort the process so that a test cannot pass over them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
run_suite asan-ubsan

section "fuzz request parsing (${FUZZ_SECONDS}s)"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$JOBS" --target request_fuzz
corpus=$(mktemp -d)
cp tests/fuzz/corpus/request/* "$corpus"/
./build/fuzz/tests/request_fuzz -max_total_time="$FUZZ_SECONDS" -timeout=10 "$corpus"
rm -rf "$corpus"
section "all tests passed (release, asan-ubsan, fuzz ${FUZZ_SECONDS}s)"
echo "summary: $PASSED passed, 0 failed, $SKIPPED skipped"
