#!/usr/bin/env bash
# RESHIM_MEM_POLICY=enforce turns running out of memory into an error the app
# handles: python3 (mem_hog.py) appends small objects to a list. Without the
# shim nothing stops it (it stops itself at 350 MB here; in a container that
# is the OOM kill, see test_mem_cgroup.sh); with a 200M budget and policy warn
# it is not stopped either, but each state crossing is logged once. With
# policy enforce it gets a MemoryError, drops the list, carries on (allocates
# again) and exits 0, its peak RSS (its stats' rss_peak, /usr/bin/time's
# max RSS, its own VmHWM) stays near the budget, and the denials are counted.
# Then one 300 MB bytearray under a 200M budget: MemoryError, not the memory.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
HOG="$ROOT/tests/integration/mem_hog.py"
MiB=1048576
BUDGET=200
LIMIT=$(( (BUDGET + 15) * MiB ))   # the peak may pass the budget by this much (file pages, one poll)

# state_lines LOGFILE STATE: the logged state crossings into STATE
# ("memory state STATE: ..." or "memory state STATE again: ..."), once the
# "reshim[pid]: level:" prefix is cut off.
state_lines() {
    sed -n 's/^reshim\[[0-9]*\]: [a-z]*: //p' "$1" | grep -E -- "^memory state $2( again)?:" || true
}
mb() { echo $(( ${1:-0} / MiB )); }

# 1. Without the shim: grows until its own safety bound.
"$PY" "$HOG" small --bound-mb 350 >"$TMP/out0" 2>"$TMP/err0" || { cat "$TMP/err0" >&2; fail "mem_hog failed without the shim"; }
grep -q "^bound reached" "$TMP/out0" || fail "without the shim: $(cat "$TMP/out0")"
pass "without the shim: $(head -n 1 "$TMP/out0"): nothing stops the growth"

# 2. Policy warn: not stopped, but warn, critical and over are each logged once.
RESHIM_LOG=info RESHIM_MEM_BUDGET=${BUDGET}M RESHIM_MEM_POLICY=warn \
    pushed "$PY" "$HOG" small --bound-mb 350 >"$TMP/out1" 2>"$TMP/err1" ||
    { cat "$TMP/err1" >&2; fail "mem_hog failed under the shim with policy warn"; }
grep -q "^bound reached" "$TMP/out1" || { cat "$TMP/out1" "$TMP/err1" >&2; fail "policy warn stopped the program"; }
grep -i "memory" "$TMP/err1" | grep -iv "exit summary" | sed 's/^/    /'
# Rising, each state is entered once; the program frees its list at exit, so
# warn and critical may be named once more on the way down.
for st in warn critical over; do
    n=$(state_lines "$TMP/err1" "$st" | wc -l)
    max=2; [ "$st" = over ] && max=1
    [ "$n" -ge 1 ] && [ "$n" -le "$max" ] || fail "policy warn: expected 1..$max log lines naming state $st, got $n"
done
stat_field pid "$TMP/err1" >/dev/null || fail "no stats pushed under policy warn"
echo "    mem $(stat_field mem "$TMP/err1")"
[ "$(stat_field mem.budget_bytes "$TMP/err1")" = $((BUDGET * MiB)) ] || fail "budget is not ${BUDGET}M"
[ "$(stat_field mem.budget_source "$TMP/err1")" = env ] || fail "budget_source is not env"
[ "$(stat_field mem.enomem "$TMP/err1")" = 0 ] || fail "policy warn denied allocations"
pass "policy warn, budget ${BUDGET}M: $(head -n 1 "$TMP/out1"); warn/critical/over logged, enomem=0"

# 3. Policy enforce: MemoryError, recovery, peak near the budget.
timefmt=()
[ -x /usr/bin/time ] && timefmt=(/usr/bin/time -f "maxrss_kb %M" -o "$TMP/time2")
rc=0
"${timefmt[@]}" env RESHIM_LOG=info RESHIM_MEM_BUDGET=${BUDGET}M RESHIM_MEM_POLICY=enforce \
    "$PUSHED" "$PY" "$HOG" small --bound-mb 400 --again-mb 20 >"$TMP/out2" 2>"$TMP/err2" || rc=$?
sed 's/^/    /' "$TMP/out2"
grep -i "memory" "$TMP/err2" | grep -v "exit summary" | sed 's/^/    /'
echo "    mem $(stat_field mem "$TMP/err2")"
[ "$rc" = 0 ] || { tail -n 20 "$TMP/err2" >&2; fail "mem_hog exited with $rc under policy enforce"; }
grep -q "^bound reached" "$TMP/out2" && fail "policy enforce did not stop the program before 400 MB"
grep -q "^caught MemoryError at [0-9]* items" "$TMP/out2" || fail "no MemoryError under policy enforce"
grep -q "^recovered" "$TMP/out2" || fail "no recovery after the MemoryError"
grep -q "^allocated 20 MB again" "$TMP/out2" || fail "could not allocate again after recovering"
enomem=$(stat_field mem.enomem "$TMP/err2")
[ "${enomem:-0}" -ge 1 ] || fail "enomem=${enomem:-?} in its stats"
grep -i "memory" "$TMP/err2" | grep -v "exit summary" | grep -iq "budget" || fail "no memory/budget line logged"
peak=$(stat_field mem.rss_peak_bytes "$TMP/err2")
hwm=$(( $(sed -n 's/^peak rss \([0-9]*\) MB$/\1/p' "$TMP/out2") * MiB ))
[ "${peak:-0}" -gt $((100 * MiB)) ] || fail "rss_peak=${peak:-?}: the program never came near the budget"
[ "$peak" -le "$LIMIT" ] || fail "rss_peak $(mb "$peak") MB > $(mb "$LIMIT") MB"
[ "$hwm" -le "$LIMIT" ] || fail "the program's own VmHWM $(mb "$hwm") MB > $(mb "$LIMIT") MB"
tpeak=""
if [ -s "$TMP/time2" ]; then
    tpeak=$(( $(sed -n 's/^maxrss_kb \([0-9]*\)$/\1/p' "$TMP/time2") * 1024 ))
    [ "$tpeak" -le "$LIMIT" ] || fail "/usr/bin/time max RSS $(mb "$tpeak") MB > $(mb "$LIMIT") MB"
fi
pass "policy enforce, budget ${BUDGET}M: MemoryError caught, recovered, allocated again, exit 0; peak RSS $(mb "$peak") MB (its stats), $(mb "$hwm") MB (VmHWM)${tpeak:+, $(mb "$tpeak") MB (/usr/bin/time)} <= $(mb "$LIMIT") MB; enomem=$enomem"

# 4. One allocation larger than the whole budget.
rc=0
RESHIM_LOG=info RESHIM_MEM_BUDGET=${BUDGET}M RESHIM_MEM_POLICY=enforce \
    pushed "$PY" "$HOG" big --size 300000000 --again-mb 20 >"$TMP/out3" 2>"$TMP/err3" || rc=$?
sed 's/^/    /' "$TMP/out3"
echo "    mem $(stat_field mem "$TMP/err3")"
[ "$rc" = 0 ] || { tail -n 20 "$TMP/err3" >&2; fail "mem_hog big exited with $rc under policy enforce"; }
grep -q "^caught MemoryError for one allocation of 300000000 bytes" "$TMP/out3" ||
    fail "bytearray(300_000_000) under a ${BUDGET}M budget did not raise MemoryError: $(head -n 1 "$TMP/out3")"
grep -q "^allocated 20 MB again" "$TMP/out3" || fail "could not allocate again after the big MemoryError"
[ "$(stat_field mem.enomem "$TMP/err3")" -ge 1 ] || fail "the big denial was not counted"
peak=$(stat_field mem.rss_peak_bytes "$TMP/err3")
[ "${peak:-0}" -le "$LIMIT" ] || fail "rss_peak $(mb "$peak") MB after a denied big allocation"
pass "policy enforce: bytearray(300_000_000) raises MemoryError, the program carries on (rss_peak $(mb "$peak") MB)"
# The same without the shim is simply allocated.
"$PY" "$HOG" big --size 300000000 >"$TMP/out4" 2>&1 || fail "mem_hog big failed without the shim"
grep -q "^allocated 300000000 bytes" "$TMP/out4" || fail "without the shim: $(cat "$TMP/out4")"
pass "without the shim: $(head -n 1 "$TMP/out4")"
