#!/bin/bash
# tests/fuzz/run.sh MODE SECONDS NAME... : runs the libFuzzer harnesses
# build/fuzz/fuzz_NAME over their kept corpus tests/fuzz/corpus/NAME.
#   check: every corpus input once, then SECONDS of fuzzing; new inputs go to
#          a temporary directory (the kept corpus is not touched).
#   fuzz:  SECONDS of fuzzing each; new inputs go to build/fuzz/new/NAME
#          (`make fuzz-merge` adds those that bring coverage to the corpus).
# Any crash, leak, sanitizer report or failed check fails the run; its input
# is kept as build/fuzz/artifacts/NAME-crash-*. Prints one line per harness
# (executions, exec/s, cov:, ft:, corpus size) and a table at the end.
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
        snapjson) echo 65536 ;; # a stats line with many destinations
        *) echo 4096 ;;
    esac
}

fail=0
table=""
for name in "$@"; do
    bin=$B/fuzz_$name
    corpus=$ROOT/tests/fuzz/corpus/$name
    log=$B/logs/$name.log
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is missing" >&2
        exit 1
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
    rc=$?
    [ "$mode" = check ] && rm -rf "$work"
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    seeds=$(find "$corpus" -type f | wc -l)
    if [ $rc -ne 0 ] || grep -qE '^(==[0-9]+==ERROR|SUMMARY: |fuzz check failed)' "$log"; then
        echo "fuzz[$mode] $name: FAILED (exit $rc); log $log" >&2
        grep -E 'ERROR|SUMMARY|fuzz check failed|Test unit written' "$log" | head -5 >&2
        fail=1
    else
        echo "fuzz[$mode] $name: ok: ${runs:-?} runs, ${eps:-?} exec/s, cov: ${cov:-?} ft: ${ft:-?}," \
            "corpus ${corp:-?} (seeds $seeds), ${secs} s"
    fi
    table+=$(printf '| fuzz_%-9s | %9s | %7s | %5s | %6s | %5s |' "$name" "${runs:-?}" \
        "${eps:-?}" "${cov:-?}" "${ft:-?}" "$seeds")$'\n'
done
if [ "$mode" = fuzz ]; then
    echo
    echo "| harness        |      runs |  exec/s |  cov: |    ft: | seeds |"
    echo "|----------------|-----------|---------|-------|--------|-------|"
    printf '%s' "$table"
fi
exit $fail
