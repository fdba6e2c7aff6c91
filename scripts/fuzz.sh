#!/usr/bin/env bash
# Longer fuzzing campaigns that grow the checked-in corpus (docs/testing.md, "Fuzzing").
#
#   ./scripts/fuzz.sh [TARGET...]      fuzz each target (default: all) for YM_FUZZ_SECONDS
#                                      (default 600) or YM_FUZZ_RUNS executions, then merge the
#                                      inputs that found new coverage, minimized, into
#                                      tests/fuzz/corpus/TARGET/ (libFuzzer -merge=1)
#   ./scripts/fuzz.sh --dict-of TARGET prints the dictionary file a target uses
#
# Targets: request http client row config cli auth (tests/fuzz/*_fuzz.cc). A failing input is left
# in build/fuzz/TARGET-crash-*; add it to the corpus once the bug is fixed, so it stays tested.
# Commit the corpus changes this leaves (git status tests/fuzz/corpus).
set -euo pipefail
cd "$(dirname "$0")/.."

ALL=(request http client row config cli auth)

dict_of() {
  case "$1" in
    http) echo tests/fuzz/http.dict ;;
    config) echo tests/fuzz/toml.dict ;;
    auth) echo tests/fuzz/auth.dict ;;
    *) echo tests/fuzz/json.dict ;;
  esac
}

if [ "${1:-}" = "--dict-of" ]; then
  dict_of "$2"
  exit 0
fi

TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
SECONDS_PER_TARGET=${YM_FUZZ_SECONDS:-600}
RUNS=${YM_FUZZ_RUNS:--1}
JOBS=${YM_FUZZ_JOBS:-1}

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$(nproc)" --target "${TARGETS[@]/%/_fuzz}"

for t in "${TARGETS[@]}"; do
  bin=./build/fuzz/tests/${t}_fuzz
  corpus=tests/fuzz/corpus/$t
  work=$(mktemp -d)
  seed=${YM_FUZZ_SEED:-$(( (RANDOM << 15) | RANDOM ))}
  echo "=== ${t}_fuzz: seed $seed, ${SECONDS_PER_TARGET}s or $RUNS runs, $(ls "$corpus" | wc -l) corpus inputs"
  # Parallel jobs (YM_FUZZ_JOBS > 1) write their logs to build/fuzz/fuzz-N.log.
  parallel=()
  [ "$JOBS" -gt 1 ] && parallel=(-jobs="$JOBS" -workers="$JOBS")
  # New inputs go to $work; the checked-in corpus is only read.
  (cd build/fuzz && ../../"$bin" -seed="$seed" -max_total_time="$SECONDS_PER_TARGET" \
    -runs="$RUNS" -timeout=10 -rss_limit_mb=2048 -dict="../../$(dict_of "$t")" \
    "${parallel[@]}" -print_final_stats=1 -artifact_prefix="${t}-" "$work" "../../$corpus") 2>&1 |
    grep -E '^(#[0-9]+ +DONE|stat::)|ERROR|SUMMARY|property failed|runtime error' || true
  before=$(ls "$corpus" | wc -l)
  # Keep only what adds coverage, minimized, and name files by content hash.
  "$bin" -merge=1 "$corpus" "$work" 2>&1 | grep -E 'MERGE-OUTER: [0-9]+ new files' || true
  echo "${t}_fuzz corpus: $before -> $(ls "$corpus" | wc -l) inputs"
  rm -rf "$work"
done
