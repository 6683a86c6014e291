#!/bin/bash
# tests/fuzz/run.sh MODE SECONDS NAME... : runs the libFuzzer harnesses
# build/fuzz/fuzz_NAME over their kept corpus tests/fuzz/corpus/NAME.
#   check: every corpus input once, then SECONDS of fuzzing; new inputs go to
#          a temporary directory (the kept corpus is not touched).
#   fuzz:  SECONDS of fuzzing each; new inputs go to build/fuzz/new/NAME
#          (`make fuzz-merge` adds those that bring coverage to the corpus).
# Any crash, leak, sanitizer report or failed check fails the run; its input
# is kept as build/fuzz/artifacts/NAME-crash-*. Prints one line per harness
# (executions, exec/s, cov:, ft:, corpus size) and, for fuzz, a table.
# check runs FUZZ_JOBS (default 2) harnesses at a time, fuzz one at a time.
set -u
mode=$1 secs=$2
shift 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
B=$ROOT/build/fuzz
mkdir -p "$B/artifacts" "$B/logs"

max_len() {
    case $1 in
        config) echo 4096 ;;   # an environment block: 21 variables and their values
        dest) echo 1024 ;;     # rules (a few hundred bytes), a glob pair, an address
        request) echo 8192 ;;  # a few lines; one up to the server's 4096-byte limit
        encode) echo 8192 ;;   # 2 snapshots of up to 5 destinations, every field full
        json) echo 16384 ;;    # CLI answers: errors, config, heap sites
        snapjson) echo 204800 ;; # a stats line with more destinations than fit (520)
        *) echo 4096 ;;
    esac
}

# One harness; its summary line goes to $B/logs/NAME.result, its table row
# to $B/logs/NAME.row; returns non-zero on any failure.
run_one() {
    local name=$1 bin=$B/fuzz_$1 corpus=$ROOT/tests/fuzz/corpus/$1 log=$B/logs/$1.log work
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is missing" >"$B/logs/$name.result"
        return 1
    fi
    if [ "$mode" = check ]; then
        work=$(mktemp -d "$B/check-$name.XXXXXX")
    else
        work=$B/new/$name
        mkdir -p "$work"
    fi
    # -rss_limit_mb: ASan's own overhead included; -timeout: one input.
    "$bin" "$work" "$corpus" -max_total_time="$secs" -max_len="$(max_len "$name")" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -detect_leaks=1 \
        -artifact_prefix="$B/artifacts/$name-" >"$log" 2>&1
    local rc=$?
    [ "$mode" = check ] && rm -rf "$work"
    local last cov ft corp runs eps seeds
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    seeds=$(find "$corpus" -type f | wc -l)
    printf '| fuzz_%-9s | %9s | %7s | %5s | %6s | %5s |\n' "$name" "${runs:-?}" "${eps:-?}" \
        "${cov:-?}" "${ft:-?}" "$seeds" >"$B/logs/$name.row"
    if [ $rc -ne 0 ] || grep -qE '^(==[0-9]+==ERROR|SUMMARY: |fuzz check failed)' "$log"; then
        { echo "fuzz[$mode] $name: FAILED (exit $rc); log $log"
          grep -E 'ERROR|SUMMARY|fuzz check failed|Test unit written' "$log" | head -5; } \
            >"$B/logs/$name.result"
        return 1
    fi
    echo "fuzz[$mode] $name: ok: ${runs:-?} runs, ${eps:-?} exec/s, cov: ${cov:-?} ft: ${ft:-?}," \
        "corpus ${corp:-?} (kept $seeds), ${secs} s" >"$B/logs/$name.result"
}

# check: FUZZ_JOBS harnesses at a time (the time limit is wall-clock time);
# fuzz: one at a time, so that each has a core and its exec/s mean something.
jobs=1
[ "$mode" = check ] && jobs=${FUZZ_JOBS:-2}
fail=0
running=0
for name in "$@"; do
    if [ $running -ge "$jobs" ]; then
        wait -n || fail=1
        running=$((running - 1))
    fi
    run_one "$name" &
    running=$((running + 1))
done
while [ $running -gt 0 ]; do
    wait -n || fail=1
    running=$((running - 1))
done
for name in "$@"; do
    if grep -q FAILED "$B/logs/$name.result" 2>/dev/null || [ ! -s "$B/logs/$name.result" ]; then
        cat "$B/logs/$name.result" >&2 2>/dev/null
        fail=1
    else
        cat "$B/logs/$name.result"
    fi
done
if [ "$mode" = fuzz ]; then
    echo
    echo "| harness        |      runs |  exec/s |  cov: |    ft: |  kept |"
    echo "|----------------|-----------|---------|-------|--------|-------|"
    for name in "$@"; do cat "$B/logs/$name.row"; done
fi
exit $fail
