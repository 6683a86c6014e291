#!/usr/bin/env bash
# Sampled blocks are marked (shim/alloc.c, glibc): allocated 16 bytes larger
# (their alignment for the aligned ones), the app's address that far in, and
# free, realloc and malloc_usable_size find the mark in the words before it.
# RESHIM_HEAP_SAMPLE=1 samples (and marks) every allocation:
#  1. build/bin/mem_stress (mem_stress.c: every function of the malloc family,
#     data, calloc zeroing, alignment and malloc_usable_size checked by the
#     program itself) passes with every block marked, and the exit summaries
#     of 0 and many operations show the same heap_live and allocs - frees;
#  2. the marks are really there: the heap peak of the same single-threaded
#     run (the same sequence of sizes) is higher with every block marked than
#     with sampling off (16 bytes or more a live block);
#  3. python3 growing bytearrays (realloc of marked blocks), building and
#     sorting a dict prints the same as without the shim.
source "$(dirname "$0")/lib.sh"

need "$SHIM" "$BIN/mem_stress"

run() { # run TAG RATE THREADS OPS: mem_stress under the shim, its exit summary in $TMP/err.TAG
    local rc=0
    RESHIM_HEAP_SAMPLE=$2 RESHIM_LOG=info with_shim "$BIN/mem_stress" "$3" "$4" >"$TMP/out.$1" 2>"$TMP/err.$1" || rc=$?
    [ "$rc" = 0 ] || { grep -v "exit summary" "$TMP/err.$1" >&2; fail "mem_stress $3 $4 failed with RESHIM_HEAP_SAMPLE=$2 (rc $rc)"; }
    grep -q "exit summary" "$TMP/err.$1" || fail "no exit summary from mem_stress $3 $4 (RESHIM_HEAP_SAMPLE=$2)"
}
field() { summary_field "$TMP/err.$1" mem "$2"; }

# 1. Every block marked, 4 threads.
run zero 1 4 0
run big 1 4 300000
live0=$(field zero heap_live); live1=$(field big heap_live)
a0=$(field zero allocs); f0=$(field zero frees); a1=$(field big allocs); f1=$(field big frees)
for v in live0 live1 a0 f0 a1 f1; do [ -n "${!v}" ] || fail "$v missing from the summary"; done
read -r _ _ _ ops _ calls _ _ <"$TMP/out.big"
[ "$live0" = "$live1" ] || fail "every block marked: heap_live $live0 after 0 ops, $live1 after $ops ($((live1 - live0)) bytes)"
[ $((a0 - f0)) = $((a1 - f1)) ] || fail "every block marked: allocs - frees $((a0 - f0)) after 0 ops, $((a1 - f1)) after $ops"
[ $((a1 - a0)) -ge "$calls" ] || fail "allocs grew by $((a1 - a0)), fewer than the program's $calls allocating calls"
pass "every block marked (RESHIM_HEAP_SAMPLE=1): mem_stress's own checks pass over $ops ops, heap_live $live1 and allocs - frees $((a1 - f1)) as after 0 ops"

# 2. The marks take room: the same sequence, marked and not.
run off1 0 1 100000
run on1 1 1 100000
poff=$(field off1 heap_peak); pon=$(field on1 heap_peak)
if [ -z "$poff" ] || [ -z "$pon" ]; then fail "heap_peak missing from the summaries"; fi
[ "$pon" -gt $((poff + 16 * 1000)) ] || fail "heap_peak with every block marked ($pon) is not above sampling off ($poff): no marks?"
pass "one thread, the same sizes: heap_peak $poff with sampling off, $pon with every block marked"

# 3. python3: realloc of marked blocks (bytearray growth), dicts, sorting.
code='b = bytearray()
for i in range(20000):
    b += bytes([i % 251]) * (i % 97)
d = {str(i) * 3: bytes(i % 300) for i in range(60000)}
l = sorted(d, key=lambda k: (len(d[k]), k))
print(len(b), sum(b) % 1000003, len(d), l[:3], l[-1], sum(len(v) for v in d.values()))'
"$PY" -c "$code" >"$TMP/py0" 2>&1 || { cat "$TMP/py0" >&2; fail "python3 failed without the shim"; }
RESHIM_HEAP_SAMPLE=1 with_shim "$PY" -c "$code" >"$TMP/py1" 2>&1 || { cat "$TMP/py1" >&2; fail "python3 failed with every block marked"; }
diff "$TMP/py0" "$TMP/py1" >&2 || fail "python3 printed otherwise with every block marked"
pass "python3 (bytearray growth, a 60k dict, sorted) prints the same with every block marked: $(cut -c1-60 "$TMP/py1")"
