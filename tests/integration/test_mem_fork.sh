#!/usr/bin/env bash
# fork and vfork with memory counting on: build/bin/mem_forker (mem_forker.c)
# forks 200 times while 4 threads allocate and free without pause; every
# child (it allocates a little, then exit(0)) must finish (none hangs on a
# lock another thread held at fork time), and its final stats must show
# counters that started fresh (a few hundred allocations, not the parent's
# millions) while heap_live still holds the 8 MiB block it inherited. Then
# python3 runs 1000 subprocesses (/bin/true; subprocess uses vfork): all
# succeed, in about the time they take without the shim, and the parent's
# final stats are sane.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
need "$BIN/mem_forker"
MiB=1048576

# 1. Without the shim.
timeout 60 "$BIN/mem_forker" 200 4 >"$TMP/out0" 2>"$TMP/err0" || { cat "$TMP/out0" "$TMP/err0" >&2; fail "mem_forker failed without the shim"; }
pass "without the shim: $(head -n 1 "$TMP/out0"), $(tail -n 1 "$TMP/out0")"

# 2. With the shim.
rc=0
push_mark
RESHIM_LOG=info timeout 60 env "$PUSHED" "$BIN/mem_forker" 200 4 >"$TMP/out1" 2>"$TMP/err1" || rc=$?
[ "$rc" = 124 ] && fail "mem_forker did not finish within 60 s under the shim (a child or the parent hung)"
[ "$rc" = 0 ] || { cat "$TMP/out1" >&2; grep -v "exit summary" "$TMP/err1" | tail -n 20 >&2; fail "mem_forker failed under the shim (rc $rc)"; }
grep -q "^children 200 ok 200$" "$TMP/out1" || fail "not every child exited 0: $(cat "$TMP/out1")"
pops=$(sed -n 's/^parent ops //p' "$TMP/out1")
parent=$(cat "$TMP/err1.pid")
# Every process's final stats: pid allocs frees heap_live.
stat_table mem.allocs mem.frees mem.heap_live_bytes >"$TMP/procs"
nproc=$(wc -l <"$TMP/procs")
[ "$nproc" = 201 ] || fail "expected final stats from 201 processes (parent and 200 children), got $nproc"
worst=0; minlive=$((1 << 62)); nchild=0
while read -r pid a f l; do
    [ -n "$a" ] && [ -n "$f" ] && [ -n "$l" ] || fail "stats without mem allocs/frees/heap_live: pid $pid"
    if [ "$pid" = "$parent" ]; then
        [ "$a" -ge "$pops" ] || fail "the parent counts $a allocations, fewer than its threads' $pops"
        continue
    fi
    nchild=$((nchild + 1))
    [ "$a" -gt "$worst" ] && worst=$a
    [ "$l" -lt "$minlive" ] && minlive=$l
done <"$TMP/procs"
echo "    parent: mem $(stat_field mem "$parent")"
echo "    a child: $(grep -v "^$parent " "$TMP/procs" | head -n 1 | awk '{print "pid " $1 ": allocs=" $2 " frees=" $3 " heap_live_bytes=" $4}')"
[ "$nchild" = 200 ] || fail "final stats from $nchild children"
[ "$worst" -le 1000 ] || fail "a child's stats count $worst allocations: counters not fresh after fork"
[ "$minlive" -ge $((8 * MiB)) ] || fail "a child's heap_live=$minlive: less than the 8 MiB block it inherited"
pass "with the shim: 200 children exit 0 while 4 threads churn; parent allocs >= $pops, each child allocs <= $worst (fresh) and heap_live >= 8 MiB (inherited, min $minlive)"

# 3. python3 and 1000 subprocesses (vfork underneath).
cat >"$TMP/spawn.py" <<'PYEOF'
import subprocess, sys, time
t0 = time.monotonic()
bad = 0
for i in range(1000):
    if subprocess.run(["/bin/true"]).returncode != 0:
        bad += 1
r = subprocess.run(["/bin/echo", "hello"], capture_output=True)
assert r.stdout == b"hello\n", r.stdout
print("spawned 1000, failed %d, %.2f s" % (bad, time.monotonic() - t0), flush=True)
sys.exit(1 if bad else 0)
PYEOF
timeout 60 "$PY" "$TMP/spawn.py" >"$TMP/out2" 2>"$TMP/err2" || { cat "$TMP/out2" "$TMP/err2" >&2; fail "spawn.py failed without the shim"; }
rc=0
push_mark
RESHIM_LOG=info timeout 120 env "$PUSHED" "$PY" "$TMP/spawn.py" >"$TMP/out3" 2>"$TMP/err3" || rc=$?
[ "$rc" = 0 ] || { cat "$TMP/out3" >&2; grep -v "exit summary" "$TMP/err3" | tail -n 20 >&2; fail "spawn.py failed under the shim (rc $rc)"; }
echo "    python parent: mem $(stat_field mem "$TMP/err3")"
nproc=$(stat_pids | wc -l)
[ "$nproc" -ge 1001 ] || fail "expected final stats from >= 1001 processes (1000 /bin/true, echo, python), got $nproc"
pa=$(stat_field mem.allocs "$TMP/err3"); pl=$(stat_field mem.heap_live_bytes "$TMP/err3")
[ "${pa:-0}" -ge 1000 ] || fail "python parent allocs=${pa:-?}"
[ -n "$pl" ] && [ "$pl" -gt 0 ] && [ "$pl" -lt $((200 * MiB)) ] || fail "python parent heap_live=${pl:-?} not sane"
grep -E "reshim\[[0-9]+\]: (warn|error)" "$TMP/err3" | head -n 3 && fail "reshim warned during the spawns"
pass "python3 spawning 1000 subprocesses: without the shim $(sed 's/.*, //' "$TMP/out2"), with it $(sed 's/.*, //' "$TMP/out3"); all succeed; parent allocs=$pa heap_live=$pl"
