#!/usr/bin/env bash
# `reshim heap PID`: sampled allocation sites, symbolized, with unbiased
# estimates. build/bin/heap_sites (heap_sites.c) keeps 60, 30 and 10 MiB
# live from hold_big, hold_mid and hold_small:
#  - at the default 512 KiB rate, mostly 2-5 MiB blocks (+0.3 % small ones):
#    `reshim heap PID --json` ranks the three sites right and each estimate
#    is within 15 % (its sigma is <= 2.5 %: the estimate of a site of small
#    blocks has sigma about sqrt(R / live bytes), 22 % for 10 MiB at 512 KiB,
#    so small blocks are checked at a lower rate instead);
#  - 64 B - 256 KiB blocks at RESHIM_HEAP_SAMPLE=8K, the same checks;
#  - one thread per site with two threads churning, the same checks;
#  - after SIGUSR1 the program frees hold_mid's blocks: that site drops away;
#  - after fork, the child's table is the parent's (it holds the same
#    blocks): the same checks in the child, and the child's frees count;
# then python3 (a list of 50000 bytes objects built in one function), and
# redis-server (jemalloc) filled by redis-benchmark (the sampled estimate
# within 3 standard deviations of the counted bytes); RESHIM_HEAP_SAMPLE=0
# answers a clear error; the table is readable.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
source "$(dirname "$0")/heap_lib.sh"

# check FILE EXPECT...: EXPECT is name=MiB (0: absent); ranks and 15 %.
check() {
    "$PY" - "$@" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
want = dict((a.split("=")[0], float(a.split("=")[1])) for a in sys.argv[2:])
got = {k: 0.0 for k in want}
for s in d["sites"]:
    for k in want:
        if any(f.startswith(k + "+") for f in s["stack"]):
            got[k] += s["live_bytes"] / 1048576.0
errs = []
for k, w in want.items():
    if w == 0:
        if got[k] > 0:
            errs.append("%s still holds %.1f MiB" % (k, got[k]))
    elif abs(got[k] - w) > 0.15 * w:
        errs.append("%s: %.2f MiB estimated, %.0f live" % (k, got[k], w))
order = sorted((k for k in want if want[k] > 0), key=lambda k: -got[k])
if order != sorted((k for k in want if want[k] > 0), key=lambda k: -want[k]):
    errs.append("ranked %s" % order)
print(" ".join("%s %.2f MiB (%+.1f%%)" % (k, got[k], (got[k] / want[k] - 1) * 100 if want[k] else 0)
               for k in want), "| dropped %d" % d["dropped"])
sys.exit(1 if errs else 0) if not errs else (print("; ".join(errs), file=sys.stderr), sys.exit(1))
EOF
}

# scenario TAG PROFILE MODE [ENV...]: once more in a fresh process when an
# estimate is off. The estimates are random: a block of n bytes is missed with
# probability exp(-n/R), 1.8 % for a 2 MiB block at 512 KiB, and missing one
# of hold_small's three or four blocks puts that site 20-50 % low (seen about
# once in 30 runs). Two such runs in a row are a defect, not chance.
scenario() {
    local tag=$1
    RETRY=""; scenario_once "$@" && return 0
    [ "$RETRY" ] || exit 1
    echo "    $tag: $RETRY; a second run with new random draws:"
    RETRY=""; scenario_once "$tag-2" "${@:2}" && return 0
    fail "$tag, second run: $RETRY"
}
scenario_once() {
    local tag=$1 prof=$2 mode=$3; shift 3
    env "$@" LD_PRELOAD="$SHIM" "$BIN/heap_sites" "$prof" "$mode" >"$TMP/$tag.out" 2>"$TMP/$tag.err" &
    local runner=$!
    CHILDREN+=($runner)
    local pid; pid=$(ready_pid "$TMP/$tag.out" "$TMP/$tag.err" "$tag: heap_sites") || exit 1 # (no set -e under &&)
    CHILDREN+=($pid)
    "$CLI" heap "$pid" --top 50 --json >"$TMP/$tag.json" || fail "$tag: reshim heap failed"
    out=$(check "$TMP/$tag.json" hold_big=60 hold_mid=30 hold_small=10 2>&1) ||
        { RETRY="$tag: $out"; kill "$pid" 2>/dev/null; wait "$runner" 2>/dev/null; return 1; }
    pass "$tag: $out"
    if [ "$tag" = default ]; then
        # The table: file:line of each site's frames from the DWARF (libdw,
        # opened by the CLI), the static take_block named; the line numbers
        # are those of the calls in heap_sites.c.
        "$CLI" heap "$pid" --top 3 >"$TMP/table" || fail "reshim heap (table) failed"
        src="$ROOT/tests/integration/heap_sites.c"
        line_of() { grep -n "$1" "$src" | head -n 1 | cut -d: -f1; }
        for want in "take_block (heap_sites.c:$(line_of 'void \*q = zeroed ? calloc'))" \
            "fill (heap_sites.c:$(line_of 'void \*q = take_block'))" \
            "hold_big (heap_sites.c:$(line_of '^__attribute__((noinline)) void hold_big'))" \
            "hold_mid (heap_sites.c:$(line_of '^__attribute__((noinline)) void hold_mid'))" \
            "hold_small (heap_sites.c:$(line_of '^__attribute__((noinline)) void hold_small'))"; do
            grep -qF "$want" "$TMP/table" || { cat "$TMP/table" >&2; fail "the table does not show '$want'"; }
        done
        pass "table: file:line for every site, the static take_block named: $(sed -n 2p "$TMP/table" | grep -o 'take_block.*hold_big ([^)]*)')"
        # Without libdw (the static musl CLI cannot dlopen): the frames as
        # the library named them, and a note saying what is missing.
        if [ -x "$ROOT/build/reshim-static" ]; then
            "$ROOT/build/reshim-static" heap "$pid" --top 3 >"$TMP/table.static" || fail "reshim-static heap failed"
            grep -q "hold_big+0x" "$TMP/table.static" && grep -q "^note: libdw.so.1 .*cannot be loaded" "$TMP/table.static" ||
                { cat "$TMP/table.static" >&2; fail "reshim-static heap: no module+offset frames or no note"; }
            pass "without libdw: $(grep '^note:' "$TMP/table.static" | cut -c1-110)..."
        fi
    kill -USR1 "$pid"
    wait_line "$TMP/$tag.out" freed || fail "$tag: no 'freed'"
    "$CLI" heap "$pid" --top 50 --json >"$TMP/$tag.2.json" || fail "$tag: reshim heap failed after the free"
    out=$(check "$TMP/$tag.2.json" hold_big=60 hold_mid=0 hold_small=10 2>&1) ||
        { RETRY="$tag after the free: $out"; kill "$pid" 2>/dev/null; wait "$runner" 2>/dev/null; return 1; }
    pass "$tag, hold_mid freed: $out"
        res=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["profiler_resident_bytes"])' "$TMP/$tag.json")
        pass "profiler tables resident: $((res / 1024)) KiB"
    fi
    kill "$pid" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
}

scenario default big one
scenario small-blocks-8K small one RESHIM_HEAP_SAMPLE=8K
scenario threads big mt
scenario threads-small-8K small mt RESHIM_HEAP_SAMPLE=8K
scenario fork-child big fork

# Sampling off: a clear error, exit 1.
RESHIM_HEAP_SAMPLE=0 LD_PRELOAD="$SHIM" "$BIN/heap_sites" big one >"$TMP/off.out" 2>&1 &
CHILDREN+=($!)
wait_line "$TMP/off.out" ready || fail "heap_sites (sampling off) did not get ready"
pid=$(awk '/ready/{print $2}' "$TMP/off.out")
wait_sock "$pid" || fail "no stats socket (sampling off)"
rc=0; "$CLI" heap "$pid" >"$TMP/off.ans" 2>&1 || rc=$?
[ "$rc" = 1 ] && grep -q "sampling is off" "$TMP/off.ans" || { cat "$TMP/off.ans" >&2; fail "RESHIM_HEAP_SAMPLE=0: rc $rc"; }
pass "RESHIM_HEAP_SAMPLE=0: $(head -c 120 "$TMP/off.ans")"
kill "$pid"

# python3: 50000 bytes objects of 1000 bytes (1033 with the header, from
# malloc: pymalloc takes only <= 512), built in one function.
RESHIM_HEAP_SAMPLE=64K LD_PRELOAD="$SHIM" "$PY" -c '
import os, sys, time
def hold():
    return [bytes(1000) for i in range(50000)]
keep = hold()
print("ready", os.getpid(), flush=True)
time.sleep(60)
' >"$TMP/py.out" 2>"$TMP/py.err" &
CHILDREN+=($!)
wait_line "$TMP/py.out" ready || { cat "$TMP/py.err" >&2; fail "python3 did not get ready"; }
pid=$(awk '/ready/{print $2}' "$TMP/py.out")
wait_sock "$pid" || fail "no stats socket (python3)"
"$CLI" heap "$pid" --top 5 --json >"$TMP/py.json" || fail "reshim heap (python3) failed"
out=$("$PY" - "$TMP/py.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
top = d["sites"][0]
want = 50000 * 1033
ok = abs(top["live_bytes"] - want) <= 0.15 * want and any("PyEval" in f or "_PyObject_MakeTpCall" in f for f in top["stack"])
print("top site %.2f MiB (%+.1f%%), %d frames, innermost named %s" % (top["live_bytes"] / 1048576, (top["live_bytes"] / want - 1) * 100, len(top["stack"]), next((f for f in top["stack"] if "(" in f), "?")))
sys.exit(0 if ok else 1)
EOF
) || fail "python3: $out"
pass "python3 at 64K: $out"
kill "$pid"

# redis-server (jemalloc as its malloc): 20000 values of 4000 bytes.
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
    port=$(free_port)
    LD_PRELOAD="$SHIM" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        >"$TMP/redis.out" 2>&1 &
    rpid=$!
    CHILDREN+=($rpid)
    wait_port "$port" 20 || fail "redis-server did not start under the shim"
    wait_sock "$rpid" || fail "no stats socket (redis-server)"
    redis-benchmark -p "$port" -q -t set -n 20000 -r 20000 -d 4000 -c 4 >/dev/null 2>&1 || true
    "$CLI" heap "$rpid" --top 5 --json >"$TMP/redis.json" || fail "reshim heap (redis) failed"
    "$CLI" stats "$rpid" --json >"$TMP/redis.stats" 2>/dev/null || true
    out=$("$PY" - "$TMP/redis.json" "$TMP/redis.stats" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
try:
    live = json.load(open(sys.argv[2]))["mem"]["heap_live_bytes"]
except Exception:
    live = 0
est = d["sampled_live_bytes"]
# The sampled estimate within 3 of its standard deviations (every site's
# variance summed) of the counted bytes, and 5 % more: the count is of the
# allocator's usable sizes (jemalloc's size classes), the estimate of the
# sizes asked for.
sd = sum(s["live_bytes_sd"] ** 2 for s in d["sites"]) ** 0.5
ok = d["sites"] and est > 40e6 and (not live or abs(est - live) <= 3 * sd + 0.05 * live)
print("%d sites, sampled %.1f +- %.1f MiB vs counted %.1f MiB; top: %.1f MiB at %s" % (len(d["sites"]), est / 1048576, sd / 1048576, live / 1048576, d["sites"][0]["live_bytes"] / 1048576 if d["sites"] else 0, " < ".join(d["sites"][0]["stack"][:3]) if d["sites"] else "-"))
sys.exit(0 if ok else 1)
EOF
    ) || fail "redis: $out"
    pass "redis-server: $out"
    kill "$rpid"
else
    echo "  (redis-server or redis-benchmark not installed: redis part skipped)"
fi
