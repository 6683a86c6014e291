#!/usr/bin/env bash
# Runs every tests/integration/test_*.sh (or those named on the command line)
# with a time limit each; prints a line per test as it ends and "N passed,
# N failed".
#
# JOBS=N (make check: 3) runs up to N tests at once: most of them wait on
# servers that restart, backoffs and timeouts, not on the CPU. A test whose
# head has a line "# alone: WHY" (timing it judges, which a neighbour's load
# could upset) runs after those, with nothing beside it.
cd "$(dirname "$0")"
pass=0; fail=0; skip=0; report=""
tests=("$@"); [ ${#tests[@]} -eq 0 ] && tests=(test_*.sh)
JOBS=${JOBS:-1}
OUT=$(mktemp -d /tmp/reshim-run.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

# start TEST: in the background, its output and exit code to $OUT/NAME.*.
declare -A started_at=()
start() {
    local t=$1
    started_at[$t]=$(date +%s%N)
    (timeout -k 5 240 bash "$t" >"$OUT/$t.out" 2>&1; echo $? >"$OUT/$t.rc") &
    pids[$!]=$t
}

# finish TEST: its line (and, on failure, its last 40 lines).
finish() {
    local t=$1 name rc out ds secs tailout
    name=${t%.sh}; name=${name#test_}
    rc=$(cat "$OUT/$t.rc" 2>/dev/null || echo 1)
    ds=$(( ($(date +%s%N) - ${started_at[$t]}) / 100000000 )); secs="$((ds / 10)).$((ds % 10))"
    out=$(cat "$OUT/$t.out")
    case $rc in
    0) pass=$((pass + 1)); printf 'integration %-28s ok    (%ss)\n' "$name" "$secs"
       [ -n "${VERBOSE:-}" ] && printf '%s\n' "$out" | sed 's/^/    /' ;;
    77) skip=$((skip + 1)); printf 'integration %-28s skip  (%s)\n' "$name" "$(printf '%s' "$out" | tail -n 1)" ;;
    *) fail=$((fail + 1)); printf 'integration %-28s FAIL  (rc %s, %ss)\n' "$name" "$rc" "$secs"
       tailout=$(printf '%s\n' "$out" | tail -n 40 | sed 's/^/    | /')
       printf '%s\n' "$tailout"
       report+="--- $name (rc $rc)"$'\n'"$tailout"$'\n' ;;
    esac
}

# run_all LANES TEST...: at most LANES at once, each reported as it ends.
run_all() {
    local lanes=$1 t done_pid; shift
    declare -A pids=()
    for t in "$@"; do
        while [ ${#pids[@]} -ge "$lanes" ]; do
            wait -n -p done_pid "${!pids[@]}"
            finish "${pids[$done_pid]}"; unset "pids[$done_pid]"
        done
        start "$t"
    done
    while [ ${#pids[@]} -gt 0 ]; do
        wait -n -p done_pid "${!pids[@]}"
        finish "${pids[$done_pid]}"; unset "pids[$done_pid]"
    done
}

shared=(); alone=()
for t in "${tests[@]}"; do
    if grep -q '^# alone:' "$t"; then alone+=("$t"); else shared+=("$t"); fi
done
[ ${#shared[@]} -gt 0 ] && run_all "$JOBS" "${shared[@]}"
[ ${#alone[@]} -gt 0 ] && run_all 1 "${alone[@]}"
# A CI log is often read from its end: repeat what failed there.
[ -n "$report" ] && printf 'failed tests, last lines of each:\n%s' "$report"
echo "integration: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
