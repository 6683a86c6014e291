#!/usr/bin/env bash
# Sampled blocks are marked (shim/alloc.c, glibc): allocated 16 bytes larger
# (their alignment for the aligned ones), the app's address that far in, and
# free, realloc and malloc_usable_size find the mark in the words before it.
# RESHIM_HEAP_SAMPLE=1 samples (and marks) every allocation:
#  1. build/bin/mem_stress (mem_stress.c: every function of the malloc family,
#     data, calloc zeroing, alignment and malloc_usable_size checked by the
#     program itself) passes with every block marked, and the exit summaries
#     of 0 and many operations show the same heap_live and allocs - frees;
#  2. the marks are really there (glibc's own in-use count) and the shim's:
#     live bytes count what the app sees, whichever blocks were sampled;
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

# 2. The marks are there, and they are the shim's, not the app's. glibc's own
# count of the bytes in use (mallinfo2's uordblks) grows by 16 more per block
# with every block marked, while malloc_usable_size (what the app sees)
# stays the same; and live bytes do not depend on which blocks were sampled:
# mem_stress's residue after 0 operations is the same with every block
# marked as at the default rate, 524288 (a block live at exit counts the same,
# sampled or not; the unwinder both load is the same too).
code='import ctypes
libc = ctypes.CDLL(None)
class MI(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
libc.mallinfo2.restype = MI
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.malloc_usable_size.restype = ctypes.c_size_t
libc.malloc_usable_size.argtypes = [ctypes.c_void_p]
N = 4000
ps = (ctypes.c_void_p * N)()
before = libc.mallinfo2().uordblks
for i in range(N):
    ps[i] = libc.malloc(1016)
after = libc.mallinfo2().uordblks
print(after - before, sum(libc.malloc_usable_size(ps[i]) for i in range(N)))'
RESHIM_HEAP_SAMPLE=0 with_shim "$PY" -c "$code" >"$TMP/mi.off" 2>&1 || { cat "$TMP/mi.off" >&2; fail "python3 mallinfo2 failed (sampling off)"; }
RESHIM_HEAP_SAMPLE=1 with_shim "$PY" -c "$code" >"$TMP/mi.on" 2>&1 || { cat "$TMP/mi.on" >&2; fail "python3 mallinfo2 failed (every block marked)"; }
read -r goff uoff <"$TMP/mi.off"; read -r gon uon <"$TMP/mi.on"
# (a block may be a little larger than asked where glibc reuses a free chunk)
d=$((uon - uoff)); d=${d#-}
[ "$uon" -ge $((4000 * 1016)) ] && [ "$d" -lt $((16 * 4000 / 10)) ] ||
    fail "malloc_usable_size of 4000 blocks of 1016 B: $uoff sampling off, $uon every block marked (the app sees the marks?)"
[ "$gon" -ge $((goff + 16 * 4000)) ] || fail "glibc's bytes in use grew by $gon with every block marked, $goff with sampling off: not 16 more a block, no marks?"
pass "4000 blocks of 1016 B: glibc's in-use bytes grew by $goff with sampling off and $gon with every block marked; malloc_usable_size $uoff and $uon"
run rate1 1 4 0
run ratedef 524288 4 0
l1=$(field rate1 heap_live); ld=$(field ratedef heap_live)
[ -n "$l1" ] && [ "$l1" = "$ld" ] || fail "mem_stress's heap_live after 0 operations: $l1 with every block marked, $ld at the default rate"
pass "mem_stress's heap_live after 0 operations: $l1 with every block marked and at the default rate"

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
