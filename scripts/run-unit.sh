#!/bin/sh
# Runs cmocka unit test programs; prints one line per program and a summary.
# usage: run-unit.sh LABEL PROGRAM...
label=$1; shift
pass=0; fail=0
for t in "$@"; do
    if out=$("$t" 2>&1); then
        pass=$((pass + 1))
        printf 'unit[%s] %s: ok\n' "$label" "$(basename "$t")"
    else
        fail=$((fail + 1))
        printf 'unit[%s] %s: FAILED\n%s\n' "$label" "$(basename "$t")" "$out"
    fi
done
printf 'unit[%s]: %d passed, %d failed\n' "$label" "$pass" "$fail"
[ "$fail" -eq 0 ]
