#!/usr/bin/env bash
# Line and branch coverage of src/ (gcov + lcov, Debian's lcov package), docs/testing.md.
#
#   ./scripts/coverage.sh          unit tests and every pytest suite (the real binary, workers)
#   ./scripts/coverage.sh --unit   unit tests only (faster)
#
# Builds the `coverage` preset (Debug, --coverage), runs the tests, prints the summary and the
# per-directory table, and writes an HTML report to build/coverage/html/index.html. Costs a full
# build and a test run: run it on an idle machine (it is niced).
set -euo pipefail
cd "$(dirname "$0")/.."

UNIT_ONLY=0
[ "${1:-}" = "--unit" ] && UNIT_ONLY=1
JOBS=$(nproc)
BUILD=build/coverage
LCOV_RC=(--rc lcov_branch_coverage=1)

./scripts/install-deps.sh
cmake --preset coverage >/dev/null
nice cmake --build --preset coverage -j "$JOBS" --target ym_unit_tests yardmaster ym_example_worker

lcov --quiet --zerocounters --directory "$BUILD"
if [ "$UNIT_ONLY" = 1 ]; then
  nice "$BUILD"/tests/ym_unit_tests --gtest_brief=1
else
  # Every test the release suite runs, black-box suites included; a failing test is reported but
  # still counts its coverage.
  nice ctest --test-dir "$BUILD" -j "$JOBS" --timeout 1800 --output-on-failure || \
    echo "coverage: some tests failed (see above); the figures below include their coverage"
fi

lcov --quiet "${LCOV_RC[@]}" --capture --directory "$BUILD" --output-file "$BUILD/all.info"
lcov --quiet "${LCOV_RC[@]}" --extract "$BUILD/all.info" "$PWD/src/*" --output-file "$BUILD/src.info"
echo
echo "=== coverage of src/ ==="
lcov "${LCOV_RC[@]}" --summary "$BUILD/src.info"
echo
lcov "${LCOV_RC[@]}" --list "$BUILD/src.info" | sed "s|$PWD/||"
genhtml --quiet "${LCOV_RC[@]}" --output-directory "$BUILD/html" "$BUILD/src.info" >/dev/null
echo "HTML report: $BUILD/html/index.html"
