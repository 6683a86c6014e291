#!/usr/bin/env bash
# Live heap accounting is exact: build/bin/mem_stress (mem_stress.c) runs 4
# threads through every function of the malloc family (malloc, calloc,
# realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc,
# pvalloc, malloc(0), realloc(p, 0), failing calls) with random sizes up to
# 1 MiB, checking its data, calloc zeroing and alignment, and frees
# everything at the end. Run with 0 operations and with 5 million under
# RESHIM_LOG=info: the exit summaries must show exactly the same heap_live
# and the same allocs - frees, and the big run at least as many more allocs
# and frees as the calls the program itself counted. The same program passes
# its own checks without the shim.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
need "$BIN/mem_stress"
THREADS=4
OPS=1250000   # per thread

# 1. Without the shim: the program's own checks.
"$BIN/mem_stress" "$THREADS" "$OPS" >"$TMP/out0" 2>"$TMP/err0" || { cat "$TMP/err0" >&2; fail "mem_stress failed without the shim"; }
pass "without the shim: $(cat "$TMP/out0"), data, zeroing and alignment checked"

# 2. With the shim, 0 operations and many.
run() {   # run OPS TAG
    local rc=0
    RESHIM_LOG=info pushed "$BIN/mem_stress" "$THREADS" "$1" >"$TMP/out.$2" 2>"$TMP/err.$2" || rc=$?
    [ "$rc" = 0 ] || { grep -v "exit summary" "$TMP/err.$2" >&2; fail "mem_stress $THREADS $1 failed under the shim (rc $rc)"; }
    stat_field pid "$TMP/err.$2" >/dev/null || fail "no stats pushed from mem_stress $THREADS $1"
    echo "    $1 ops/thread: mem $(stat_field mem "$TMP/err.$2")"
}
run 0 zero
start=$(date +%s%N)
run "$OPS" big
secs=$(( ($(date +%s%N) - start) / 1000000 ))
field() { stat_field "mem.$2" "$TMP/err.$1"; }   # of its final stats
live0=$(field zero heap_live_bytes); live1=$(field big heap_live_bytes)
a0=$(field zero allocs); f0=$(field zero frees); a1=$(field big allocs); f1=$(field big frees)
for v in live0 live1 a0 f0 a1 f1; do [ -n "${!v}" ] || fail "$v missing from the stats"; done
read -r _ _ _ ops _ calls _ fcalls <"$TMP/out.big"
[ "$live0" = "$live1" ] || fail "heap_live differs: $live0 after 0 ops, $live1 after $ops ops ($((live1 - live0)) bytes)"
pass "heap_live identical after 0 and $ops operations: $live1 bytes"
[ $((a0 - f0)) = $((a1 - f1)) ] || fail "allocs - frees differs: $((a0 - f0)) after 0 ops, $((a1 - f1)) after $ops ops"
pass "allocs - frees identical: $((a1 - f1))"
[ $((a1 - a0)) -ge "$calls" ] || fail "allocs grew by $((a1 - a0)), fewer than the $calls allocating calls the program made"
[ $((f1 - f0)) -ge "$fcalls" ] || fail "frees grew by $((f1 - f0)), fewer than the $fcalls blocks the program gave back"
pass "allocs grew by $((a1 - a0)) for $calls allocating calls, frees by $((f1 - f0)) for $fcalls ($ops ops, ${secs} ms under the shim)"
peak=$(field big heap_peak_bytes)
[ "${peak:-0}" -gt "$live1" ] || fail "heap_peak=${peak:-?} not above the final heap_live"
pass "heap_peak $peak > heap_live $live1"
