#!/usr/bin/env bash
# Flakiness check (docs/testing.md, "Flakiness"): runs the ctest suites of already-built presets
# N times in a row with a CPU hog beside them, and records every failure.
#
# Usage: ./scripts/stress.sh [-n RUNS] [-p PRESETS] [-R REGEX] [--hogs N] [-j JOBS] [--log FILE]
#   -n, --runs N        runs in a row (default 20)
#   -p, --presets LIST  comma-separated presets (default: release,asan-ubsan, each one whose
#                       build directory build/<preset> exists); nothing is built here
#   -R, --filter REGEX  only the ctest tests matching REGEX (ctest -R), e.g. '^pytest_'
#       --hogs N        busy-loop processes beside the tests (default: one per core); 0: none
#   -j, --jobs N        ctest -j (default 2, as ./scripts/test.sh runs on 2 cores)
#       --log FILE      the failure log (default build/stress-<date>.log); the full ctest
#                       output of every run that failed is kept next to it
# Prints "stress: N runs, F failures" at the end and exits 1 when F > 0, 2 when the source tree
# changed during the loop (run it from a worktree nobody commits to).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=20
PRESETS=""
FILTER=""
HOGS=$(nproc)
JOBS=2
LOG=""

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    -n | --runs) RUNS=$2; shift 2 ;;
    -p | --presets) PRESETS=$2; shift 2 ;;
    -R | --filter) FILTER=$2; shift 2 ;;
    --hogs) HOGS=$2; shift 2 ;;
    -j | --jobs) JOBS=$2; shift 2 ;;
    --log) LOG=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "stress: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in "$RUNS" "$HOGS" "$JOBS"; do
  [[ "$v" =~ ^[0-9]+$ ]] || { echo "stress: not a count: $v" >&2; exit 2; }
done
[ "$RUNS" -ge 1 ] && [ "$JOBS" -ge 1 ] || { echo "stress: runs and jobs must be >= 1" >&2; exit 2; }

if [ -z "$PRESETS" ]; then
  for p in release asan-ubsan; do
    [ -f "build/$p/CTestTestfile.cmake" ] && PRESETS="${PRESETS:+$PRESETS,}$p"
  done
fi
[ -n "$PRESETS" ] || { echo "stress: no build directory found; build a preset first" >&2; exit 2; }
IFS=',' read -r -a PRESET_LIST <<<"$PRESETS"
for p in "${PRESET_LIST[@]}"; do
  [ -f "build/$p/CTestTestfile.cmake" ] || { echo "stress: build/$p is not built" >&2; exit 2; }
done

mkdir -p build
LOG=${LOG:-build/stress-$(date -u +%Y%m%d-%H%M%S).log}
WORK=$(mktemp -d)
HOG_PIDS=()
cleanup() {
  for pid in "${HOG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${HOG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# As ./scripts/test.sh: sanitizer findings abort the process, so that no test passes over them.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The hog: one busy loop per core at the tests' own priority (nice 0), for the whole stress run.
for _ in $(seq 1 "$HOGS"); do
  (while :; do :; done) &
  HOG_PIDS+=($!)
done

{
  echo "stress: $RUNS runs of [${PRESETS}]${FILTER:+ -R '$FILTER'}, ctest -j$JOBS, $HOGS hog(s)," \
    "started $(date -u +%FT%TZ) on $(nproc) cores"
} | tee "$LOG"

# Reads ctest's JUnit file and prints one line per failure: "<ctest test>\t<name>\t<excerpt>".
# A pytest suite is one ctest test: its failing test functions are named from pytest's summary
# ("FAILED path::test - message"); a crash or timeout without such lines names the ctest test.
failures_of() {
  /usr/bin/env python3 - "$1" <<'PY'
import re, sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
for case in root.iter("testcase"):
    if case.get("status") in (None, "run", "notrun", "disabled"):
        continue
    out = "".join(case.findtext(tag) or "" for tag in ("system-out", "system-err"))
    lines = out.splitlines()
    # pytest prints one "____ test_name ____" section per failure.
    sections, current = {}, None
    for l in lines:
        m = re.match(r"^_{3,} (.+?) _{3,}$", l)
        if m:
            current = sections.setdefault(m.group(1), [])
        elif l.startswith("=" * 10):
            current = None
        elif current is not None:
            current.append(l)

    def excerpt_of(src):
        keep = [l.strip() for l in src if re.search(
            r"^E |Error|error:|FAILED|Failure|Timeout|timed out|Sanitizer|runtime error", l)]
        return " | ".join(keep[-8:])[:800] or "(no output)"

    named = [l for l in lines if l.startswith(("FAILED ", "ERROR "))]
    for l in named:
        name = l.split(" ", 1)[1].split(" - ", 1)[0]
        short = name.rsplit("::", 1)[-1]
        section = next((v for k, v in sections.items() if k.split(" ")[-1] in
                        (short, short.split("[")[0]) or k.endswith("." + short)), lines)
        print(f"{case.get('name')}\t{name}\t{excerpt_of(section)}")
    if not named:
        print(f"{case.get('name')}\t{case.get('name')}\t{excerpt_of(lines)}")
PY
}

# The tests are read from this tree and the binaries from build/<preset>: a commit or checkout
# during the loop would run new tests against old binaries and record failures that are not
# flakiness. The tree's state (HEAD and uncommitted changes) is checked before every run.
tree_state() { { git rev-parse HEAD; git status --porcelain --untracked-files=no; } 2>/dev/null; }
TREE_AT_START=$(tree_state)

FAILURES=0
T_ALL=$(date +%s)
for run in $(seq 1 "$RUNS"); do
  if [ "$(tree_state)" != "$TREE_AT_START" ]; then
    echo "stress: the source tree changed after run $((run - 1)) (a commit, checkout or edit);" \
      "stopping: later runs would test new tests against the binaries built before" | tee -a "$LOG"
    exit 2
  fi
  for preset in "${PRESET_LIST[@]}"; do
    junit="$WORK/junit.xml"
    out="$WORK/ctest.txt"
    rm -f "$junit"
    t0=$(date +%s)
    args=(--test-dir "build/$preset" -j "$JOBS" --timeout 900 --output-on-failure
          --output-junit "$junit")
    [ -n "$FILTER" ] && args+=(-R "$FILTER")
    rc=0
    ctest "${args[@]}" >"$out" 2>&1 || rc=$?
    took=$(($(date +%s) - t0))
    total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$out" | tail -n 1)
    found=""
    [ -f "$junit" ] && found=$(failures_of "$junit" || true)
    if [ "$rc" -ne 0 ] && [ -z "$found" ]; then
      found="ctest	ctest exited $rc	$(tail -n 5 "$out" | tr '\n' ' ')"
    fi
    n=0
    [ -n "$found" ] && n=$(printf '%s\n' "$found" | wc -l)
    FAILURES=$((FAILURES + n))
    printf 'run %d/%d %s: %s tests, %d failed, %ds\n' "$run" "$RUNS" "$preset" "${total:-?}" \
      "$n" "$took" | tee -a "$LOG"
    if [ "$n" -gt 0 ]; then
      keep="${LOG%.log}.run$run.$preset.txt"
      cp "$out" "$keep"
      printf '%s\n' "$found" | while IFS=$'\t' read -r suite name excerpt; do
        printf '  FAILED run %d %s: %s (%s)\n    %s\n' "$run" "$preset" "$name" "$suite" \
          "$excerpt" >>"$LOG"
        printf '  FAILED %s (%s)\n' "$name" "$suite"
      done
      echo "  full output: $keep" | tee -a "$LOG"
    fi
  done
done

echo "stress: $RUNS runs, $FAILURES failures ($(($(date +%s) - T_ALL))s; log: $LOG)" | tee -a "$LOG"
[ "$FAILURES" -eq 0 ]
