#!/usr/bin/env bash
# Installs what is needed, builds, and runs every test:
#   1. release build: unit tests (GoogleTest), integration and fault tests (pytest, real binary)
#   2. the same suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#   3. the multi-threaded unit suites built with ThreadSanitizer
#   4. every libFuzzer target (clang) for a bounded time over its checked-in corpus
# Usage: ./scripts/test.sh [--quick]   (--quick: step 1 only)
# YM_FUZZ_SECONDS: seconds per fuzz target (default 20); YM_FUZZ_SEED: libFuzzer seed (default
# random, printed). Longer campaigns that grow the corpus: scripts/fuzz.sh (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
JOBS=$(nproc)
FUZZ_SECONDS=${YM_FUZZ_SECONDS:-20}

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

# ThreadSanitizer over the suites that run threads: the broker (core, writer and reader
# threads), the HTTP server and client, the C++ SDK's worker runtime, the store's readers.
section "ThreadSanitizer (multi-threaded unit suites)"
cmake --preset tsan >/dev/null
# The tsan build of ym_unit_tests holds only the files with these suites (tests/CMakeLists.txt).
cmake --build --preset tsan -j "$JOBS" --target ym_unit_tests
TSAN_FILTER='Broker*:HttpServer*:HttpClientTest.*:ApiClientTest.*:SdkWorker*:SdkClient.*'
TSAN_FILTER+=':StoreTest/*.GetJobIsSafeDuringCommitsFromOtherThreads:SqliteStoreTest.Backup*'
TSAN_FILTER+=':JobStatsTest.AReaderDuringWritesSeesWholeSetsAndGrowingCounts'
TSAN_FILTER+=':TokenBook.ConcurrentLookupsAndRevocations'
TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1} \
  ./build/tsan/tests/ym_unit_tests --gtest_filter="$TSAN_FILTER" --gtest_brief=1

section "fuzz every decoder (${FUZZ_SECONDS}s per target)"
cmake --preset fuzz >/dev/null
FUZZ_TARGETS=(request http client row config cli auth)
cmake --build --preset fuzz -j "$JOBS" --target "${FUZZ_TARGETS[@]/%/_fuzz}"
FUZZ_SEED=${YM_FUZZ_SEED:-$(( (RANDOM << 15) | RANDOM ))}
echo "fuzz seed: YM_FUZZ_SEED=$FUZZ_SEED"
for t in "${FUZZ_TARGETS[@]}"; do
  # The checked-in corpus is read, never written here: a copy takes the new inputs.
  corpus=$(mktemp -d)
  cp tests/fuzz/corpus/"$t"/* "$corpus"/
  echo "--- ${t}_fuzz ($(ls "$corpus" | wc -l) corpus inputs)"
  rm -f build/fuzz/"${t}"-*
  log=$(mktemp)
  if ! ./build/fuzz/tests/"${t}"_fuzz -seed="$FUZZ_SEED" -max_total_time="$FUZZ_SECONDS" \
      -timeout=10 -rss_limit_mb=2048 -dict="$(./scripts/fuzz.sh --dict-of "$t")" \
      -print_final_stats=1 -artifact_prefix="build/fuzz/${t}-" "$corpus" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "${t}_fuzz failed with YM_FUZZ_SEED=$FUZZ_SEED; the input is $(ls build/fuzz/"${t}"-* 2>/dev/null)"
    exit 1
  fi
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units)' "$log" || true
  rm -f "$log"
  rm -rf "$corpus"
done
section "all tests passed (release, asan-ubsan, tsan, fuzz ${FUZZ_SECONDS}s x ${#FUZZ_TARGETS[@]})"
echo "summary: $PASSED passed, 0 failed, $SKIPPED skipped"
