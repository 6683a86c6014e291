#!/usr/bin/env bash
# Policy trim gives free heap back to the OS: python3 allocates ~300 MB as
# bytes objects of 2000-4000 bytes (above pymalloc's 512 bytes, so glibc's
# malloc serves them from its heap), frees 63 in 64 and watches its RSS for
# 2.5 s. glibc does not give that memory back by itself (the kept 1 in 64 pin
# the top of the heap): without the shim, and with the shim under policy warn,
# RSS stays where it was. Under policy trim with a 320M budget (the peak
# passes 90 %, the critical state), the shim's thread calls malloc_trim(0)
# and RSS falls by far more than 100 MB; its stats count trims >= 1 and
# trimmed >= 100 MB, and the kept objects are intact.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
MiB=1048576
mb() { echo $(( ${1:-0} / MiB )); }

cat >"$TMP/churn.py" <<'PYEOF'
import os, random, time
MB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE
rnd = random.Random(7)
objs, total = [], 0
while total < 300 * MB:
    n = rnd.randint(2000, 4000)
    objs.append((b"%08d" % len(objs)) * (n // 8))
    total += n
peak = rss()
print("peak %d MB in %d objects" % (peak // MB, len(objs)), flush=True)
keep = [(k, objs[k]) for k in range(0, len(objs), 64)]
objs = None
freed = rss()
print("after free %d MB (kept %d)" % (freed // MB, len(keep)), flush=True)
low = freed
t0 = time.monotonic()
while time.monotonic() - t0 < 2.5:
    time.sleep(0.25)
    low = min(low, rss())
    print("t=%.2f rss %d MB" % (time.monotonic() - t0, rss() // MB), flush=True)
for k, b in keep:
    if b != (b"%08d" % k) * (len(b) // 8):
        raise SystemExit("kept object %d corrupted" % k)
print("kept objects intact", flush=True)
print("final peak %d freed %d low %d" % (peak, freed, low), flush=True)
PYEOF

figures() {   # figures OUTFILE: "PEAK FREED LOW" in bytes
    sed -n 's/^final peak \([0-9]*\) freed \([0-9]*\) low \([0-9]*\)$/\1 \2 \3/p' "$1"
}

# 1. Without the shim: RSS stays up.
"$PY" "$TMP/churn.py" >"$TMP/out0" 2>"$TMP/err0" || { cat "$TMP/err0" >&2; fail "churn.py failed without the shim"; }
read -r peak0 freed0 low0 <<<"$(figures "$TMP/out0")"
[ -n "${low0:-}" ] || fail "no figures from churn.py: $(cat "$TMP/out0")"
grep -q "kept objects intact" "$TMP/out0" || fail "kept objects corrupted without the shim"
echo "    without the shim: peak $(mb "$peak0") MB, after free $(mb "$freed0") MB, lowest in 2.5 s $(mb "$low0") MB"
[ $((peak0 - low0)) -lt $((100 * MiB)) ] ||
    echo "    note: glibc gave back $(mb $((peak0 - low0))) MB by itself on this machine"
pass "without the shim: RSS $(mb "$peak0") MB -> $(mb "$low0") MB after freeing 63/64 of the heap (glibc keeps it)"

# 2. Policy warn: state logged, no trim, RSS stays up.
RESHIM_LOG=info RESHIM_MEM_BUDGET=320M RESHIM_MEM_POLICY=warn pushed "$PY" "$TMP/churn.py" \
    >"$TMP/out1" 2>"$TMP/err1" || { cat "$TMP/err1" >&2; fail "churn.py failed under policy warn"; }
read -r peak1 freed1 low1 <<<"$(figures "$TMP/out1")"
echo "    mem $(stat_field mem "$TMP/err1")"
[ "$(stat_field mem.trims "$TMP/err1")" = 0 ] || fail "policy warn trimmed"
grep -v "exit summary" "$TMP/err1" | grep -i memory | grep -i budget | grep -iq critical ||
    fail "policy warn: the critical state was not logged (peak $(mb "$peak1") MB of 320 MB)"
[ $((peak1 - low1)) -lt $((100 * MiB)) ] || fail "policy warn: RSS fell from $(mb "$peak1") to $(mb "$low1") MB without a trim"
pass "policy warn, budget 320M: critical logged, trims=0, RSS $(mb "$peak1") MB -> $(mb "$low1") MB"

# 3. Policy trim.
RESHIM_LOG=info RESHIM_MEM_BUDGET=320M RESHIM_MEM_POLICY=trim pushed "$PY" "$TMP/churn.py" \
    >"$TMP/out2" 2>"$TMP/err2" || { cat "$TMP/out2" "$TMP/err2" >&2; fail "churn.py failed under policy trim"; }
sed 's/^/    /' "$TMP/out2"
grep -v "exit summary" "$TMP/err2" | grep -i memory | sed 's/^/    /'
echo "    mem $(stat_field mem "$TMP/err2")"
read -r peak2 freed2 low2 <<<"$(figures "$TMP/out2")"
grep -q "kept objects intact" "$TMP/out2" || fail "kept objects corrupted after the trim"
[ "$peak2" -gt $((288 * MiB)) ] || fail "the peak $(mb "$peak2") MB did not pass 90 % of the budget; test set-up wrong"
trims=$(stat_field mem.trims "$TMP/err2")
trimmed=$(stat_field mem.trimmed_bytes "$TMP/err2")
[ "${trims:-0}" -ge 1 ] || fail "policy trim: trims=${trims:-?}"
[ "${trimmed:-0}" -ge $((100 * MiB)) ] || fail "policy trim: trimmed=${trimmed:-?} bytes (< 100 MB)"
[ $((peak2 - low2)) -gt $((100 * MiB)) ] ||
    fail "policy trim: RSS only went from $(mb "$peak2") MB to $(mb "$low2") MB"
[ "$(stat_field mem.state "$TMP/err2")" = ok ] || echo "    note: state at exit $(stat_field mem.state "$TMP/err2")"
pass "policy trim, budget 320M: RSS $(mb "$peak2") MB -> $(mb "$low2") MB within 2.5 s of the free; trims=$trims trimmed=$(mb "$trimmed") MB"
