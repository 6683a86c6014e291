#!/usr/bin/env bash
# Runs every tests/integration/test_*.sh (or those named on the command line)
# with a time limit each; prints a line per test and "N passed, N failed".
cd "$(dirname "$0")"
pass=0; fail=0; skip=0; failed=(); report=""
tests=("$@"); [ ${#tests[@]} -eq 0 ] && tests=(test_*.sh)
for t in "${tests[@]}"; do
    name=${t%.sh}; name=${name#test_}
    start=$(date +%s%N)
    out=$(timeout -k 5 240 bash "$t" 2>&1); rc=$?
    ds=$(( ($(date +%s%N) - start) / 100000000 )); secs="$((ds / 10)).$((ds % 10))"
    case $rc in
    0) pass=$((pass + 1)); printf 'integration %-28s ok    (%ss)\n' "$name" "$secs"
       [ -n "${VERBOSE:-}" ] && printf '%s\n' "$out" | sed 's/^/    /' ;;
    77) skip=$((skip + 1)); printf 'integration %-28s skip  (%s)\n' "$name" "$(printf '%s' "$out" | tail -n 1)" ;;
    *) fail=$((fail + 1)); failed+=("$name"); printf 'integration %-28s FAIL  (rc %s, %ss)\n' "$name" "$rc" "$secs"
       tailout=$(printf '%s\n' "$out" | tail -n 40 | sed 's/^/    | /')
       printf '%s\n' "$tailout"
       report+="--- $name (rc $rc)"$'\n'"$tailout"$'\n' ;;
    esac
done
# A CI log is often read from its end: repeat what failed there.
[ -n "$report" ] && printf 'failed tests, last lines of each:\n%s' "$report"
echo "integration: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
