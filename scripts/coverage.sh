#!/usr/bin/env bash
# Line, function and branch coverage of src/ (gcov + lcov, Debian's lcov package); the figures
# and what is left uncovered are in docs/testing.md ("Coverage").
#
#   ./scripts/coverage.sh          unit tests, then every black-box suite (the real binary)
#   ./scripts/coverage.sh --unit   unit tests only (faster)
#
# Builds the `coverage` preset (Debug, --coverage) of ym_unit_tests, yardmaster and
# ym_example_worker, runs the unit tests once, then the pytest suites (tests/integration,
# tests/worker, tests/fault, tests/sdk_python, through ctest as ./scripts/test.sh runs them)
# against the instrumented binaries. Every process adds its counts to the same .gcda files when
# it exits normally; YM_TEST_GRACEFUL_STOP=1 makes the test fixtures stop the servers and
# workers still running at the end of a test with SIGTERM and SIGINT (a clean exit, which
# writes the counts) instead of SIGKILL. Processes a test kills on purpose write nothing.
#
# Prints the summary after the unit tests and after all suites, and the per-file table; writes
# build/coverage/{unit,all}.info and an HTML report in build/coverage/html/. Takes a full Debug
# build plus about ten minutes of tests on 2 cores (docs/testing.md); run it on an idle machine
# (it is niced). Not part of ./scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

UNIT_ONLY=0
case "${1:-}" in
  --unit) UNIT_ONLY=1 ;;
  "") ;;
  *) echo "usage: $0 [--unit]" >&2; exit 2 ;;
esac
JOBS=$(nproc)
BUILD=build/coverage
# Branches as GCC counts them: every call that may throw adds an exception edge, which inflates
# the total (lcov 1.16's geninfo_no_exception_branch has no effect on GCC 12's JSON gcov output).
LCOV_RC=(--rc lcov_branch_coverage=1)

START=$(date +%s)
# lcov (and the compilers) from Debian, installed if missing (root or sudo).
./scripts/install-deps.sh
LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake --preset coverage "${LAUNCHER[@]}" >/dev/null
nice cmake --build --preset coverage -j "$JOBS" --target ym_unit_tests yardmaster ym_example_worker
BUILT=$(date +%s)

capture() {  # lcov --capture, without the "Subroutine ... redefined" noise of Debian's geninfo
  lcov --quiet "${LCOV_RC[@]}" --capture --directory "$BUILD" "$@" 2>&1 |
    { grep -v '^Subroutine .* redefined at' || true; } >&2
}

summary() {  # summary NAME: src/ part of the counts gathered so far, into $BUILD/NAME.info
  local name=$1
  capture --output-file "$BUILD/$name.run.info"
  # The zero baseline lists every instrumented line, so a file no test reached counts as 0%
  # instead of being left out.
  lcov --quiet "${LCOV_RC[@]}" --add-tracefile "$BUILD/base.info" \
    --add-tracefile "$BUILD/$name.run.info" --output-file "$BUILD/$name.full.info"
  lcov --quiet "${LCOV_RC[@]}" --extract "$BUILD/$name.full.info" "$PWD/src/*" \
    --output-file "$BUILD/$name.info"
  echo
  echo "=== coverage of src/: $name ==="
  lcov "${LCOV_RC[@]}" --summary "$BUILD/$name.info" 2>&1 | grep -E 'lines|functions|branches'
}

lcov --quiet --zerocounters --directory "$BUILD"
capture --initial --output-file "$BUILD/base.info"

nice "$BUILD"/tests/ym_unit_tests --gtest_brief=1 || \
  echo "coverage: some unit tests failed (see above); the figures include their coverage"
UNIT_DONE=$(date +%s)
summary unit
REPORT=unit

if [ "$UNIT_ONLY" = 0 ]; then
  # The black-box suites as ctest runs them (YM_BIN, YM_EXAMPLE_WORKER from tests/CMakeLists.txt).
  # A failing test is reported, and its coverage still counts.
  YM_TEST_GRACEFUL_STOP=1 nice ctest --test-dir "$BUILD" -R '^pytest_(integration|fault|worker|sdk_python)_' -j "$JOBS" \
    --timeout 1800 --output-on-failure || \
    echo "coverage: some black-box tests failed (see above); the figures include their coverage"
  summary all
  REPORT=all
fi
END=$(date +%s)

echo
lcov "${LCOV_RC[@]}" --list "$BUILD/$REPORT.info" | sed "s|$PWD/||"
genhtml --quiet "${LCOV_RC[@]}" --output-directory "$BUILD/html" "$BUILD/$REPORT.info" >/dev/null
echo "HTML report ($REPORT): $BUILD/html/index.html"
echo "time: build $((BUILT - START)) s, unit tests $((UNIT_DONE - BUILT)) s," \
  "black-box suites and reports $((END - UNIT_DONE)) s, total $((END - START)) s"
