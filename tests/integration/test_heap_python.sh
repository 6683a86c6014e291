#!/usr/bin/env bash
# `reshim heap` in a CPython process, in the app's own words:
#  - heap_hold.py holds ~60, 30 and 10 MB from three functions of one module
#    (a list of large bytes objects, a dict of large strings, a list of small
#    strings that live in the interpreter's own arenas and never reach
#    malloc): `reshim heap PID --by python --json` names the three functions
#    with their file and line, ranked right, each estimate within 3 of its
#    stated standard deviations of the size the program reports it holds
#    (sys.getsizeof); once more in a fresh process when not (a 3-sd miss
#    happens in ~1 % of runs: two in a row are a defect, not chance); the
#    same with the three in thread-pool workers; the table shows them too;
#    once the program drops its small strings, hold_small's estimate falls
#    below 1 MB (the frees of sampled small objects are seen);
#  - RESHIM_HEAP_PYTHON=off: no Python frame, and the small strings unseen;
#  - finalization: a python3 whose four daemon threads allocate all the time
#    (every 4 KiB sampled, Python frames read) exits while they run: no
#    crash, no hang, in HEAP_PY_EXITS runs (50 here; 200 in make check-full).
# HEAP_PY=/path/to/python3 runs it all with another CPython (3.9 and newer:
# checked by hand with 3.9, 3.10, 3.12 and 3.13; before 3.11 the innermost
# frame of a comprehension is named <listcomp>, without its function).
source "$(dirname "$0")/lib.sh"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
source "$(dirname "$0")/heap_lib.sh"
HOLD="$ROOT/tests/integration/heap_hold.py"
PY=${HEAP_PY:-$PY}
EXITS=${HEAP_PY_EXITS:-$(sized 50 200)}

check_py() { # JSON READY-LINE: the three groups vs the truth
    "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
truth = json.loads(sys.argv[2].split(" ", 2)[2])
groups = d["groups"]
errs, found, out = [], {}, []
for name, t in truth.items():
    g = [x for x in groups if x.get("file", "").endswith("/heap_hold.py") and x.get("line") == t["line"]
         and (x.get("function", "").split(".")[0] == name or x.get("function", "") in ("<listcomp>", "<dictcomp>"))]
    if not g:
        errs.append("%s (heap_hold.py:%d) not named" % (name, t["line"]))
        continue
    g = g[0]
    found[name] = g
    est, sd = g["live_bytes"], g["live_bytes_sd"]
    z = (est - t["bytes"]) / sd if sd else float("inf")
    out.append("%s (heap_hold.py:%d) %.1f MB +- %.1f (held %.1f, %+.1f sd)" % (g["function"], g["line"], est / 1e6, sd / 1e6, t["bytes"] / 1e6, z))
    if abs(z) > 3:
        errs.append("%s: %.2f MB estimated +- %.2f, %.2f held" % (name, est / 1e6, sd / 1e6, t["bytes"] / 1e6))
if len(found) == 3:
    order = sorted(found, key=lambda k: -found[k]["live_bytes"])
    if order != sorted(truth, key=lambda k: -truth[k]["bytes"]) or groups[:3] != [found[k] for k in order]:
        errs.append("ranked %s; top rows %s" % (order, [x.get("function", x["site"][:40]) for x in groups[:3]]))
print("; ".join(out))
if errs:
    print("; ".join(errs), file=sys.stderr); sys.exit(1)
PYEOF
}

run_hold() { # TAG MODE: one process; RETRY set when an estimate is off
    local tag=$1 mode=$2
    LD_PRELOAD="$SHIM" "$PY" "$HOLD" $mode >"$TMP/$tag.out" 2>"$TMP/$tag.err" &
    local runner=$!
    CHILDREN+=($runner)
    local pid; pid=$(ready_pid "$TMP/$tag.out" "$TMP/$tag.err" "heap_hold.py $mode") || exit 1 # (no set -e under &&)
    "$CLI" heap "$pid" --by python --top 10 --json >"$TMP/$tag.json" || fail "$tag: reshim heap --by python failed"
    "$CLI" heap "$pid" --by python --top 3 >"$TMP/$tag.table" || fail "$tag: reshim heap --by python (table) failed"
    "$CLI" heap "$pid" --json >"$TMP/$tag.raw" || fail "$tag: reshim heap --json failed"
    kill -USR1 "$pid"
    wait_line "$TMP/$tag.out" freed || fail "$tag: no 'freed'"
    "$CLI" heap "$pid" --by python --top 10 --json >"$TMP/$tag.freed.json" || fail "$tag: reshim heap after the free failed"
    kill "$pid" 2>/dev/null || true
    wait "$runner" 2>/dev/null || true
    out=$(check_py "$TMP/$tag.json" "$(grep ready "$TMP/$tag.out")" 2>&1) || { RETRY="$out"; return 1; }
    for f in hold_bytes hold_dict hold_small; do
        grep -q "$f.*heap_hold.py:[0-9]" "$TMP/$tag.table" || { cat "$TMP/$tag.table" >&2; fail "$tag: the table does not name $f with its line"; }
    done
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d.get("python") != "CPython allocator hooked")' "$TMP/$tag.raw" ||
        fail "$tag: the process says python: $(grep -o '"python":"[^"]*"' "$TMP/$tag.raw" | tail -n 1)"
    left=$("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(sum(g["live_bytes"] for g in d["groups"] if g.get("function", "").startswith("hold_small")))' "$TMP/$tag.freed.json")
    [ "$left" -lt 1000000 ] || fail "$tag: hold_small still holds $left bytes after the program dropped its strings"
    pass "$tag: $out; after the drop hold_small holds $left bytes"
}

for mode in one pool; do
    RETRY=""
    run_hold "$mode" "$([ $mode = pool ] && echo pool)" && continue
    echo "    $mode: $RETRY; a second run with new random draws:"
    RETRY=""
    run_hold "$mode-2" "$([ $mode = pool ] && echo pool)" || fail "$mode, second run: $RETRY"
done

# Python frames off: the same program, no Python frame anywhere, and the
# small strings (pymalloc) not seen.
RESHIM_HEAP_PYTHON=off LD_PRELOAD="$SHIM" "$PY" "$HOLD" >"$TMP/off.out" 2>"$TMP/off.err" &
CHILDREN+=($!)
pid=$(ready_pid "$TMP/off.out" "$TMP/off.err" "heap_hold.py (Python frames off)")
"$CLI" heap "$pid" --top 50 --json >"$TMP/off.json" || fail "reshim heap failed (Python frames off)"
kill "$pid"
out=$("$PY" - "$TMP/off.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
py = [s for s in d["sites"] if s.get("python")]
small = sum(s["live_bytes"] for s in d["sites"] if any("PyUnicode_Format" in f for f in s["stack"]))
print("%d sites, %d with Python frames; %.1f MB under PyUnicode_Format; python: %s" % (len(d["sites"]), len(py), small / 1e6, d["python"]))
sys.exit(1 if py or small > 2e6 or not d["python"].startswith("off") else 0)
PYEOF
) || fail "RESHIM_HEAP_PYTHON=off: $out"
pass "RESHIM_HEAP_PYTHON=off: $out"

# Finalization: exits while daemon threads allocate, sampled every 4 KiB.
cat >"$TMP/exit.py" <<'PYEOF'
import threading
def churn(k):
    x = []
    while True:
        x.append(bytes(3000)); x.append("s%d" % len(x)); x.append({"k": k})
        if len(x) > 3000:
            x.clear()
for k in range(4):
    threading.Thread(target=churn, args=(k,), daemon=True).start()
y = ["%d" % i for i in range(30000)]
PYEOF
bad=0; start=$(date +%s)
for i in $(seq 1 "$EXITS"); do
    rc=0
    RESHIM_HEAP_SAMPLE=4K timeout -k 2 20 env LD_PRELOAD="$SHIM" "$PY" "$TMP/exit.py" >"$TMP/exit.out" 2>&1 || rc=$?
    if [ "$rc" != 0 ]; then
        bad=$((bad + 1))
        echo "    run $i: rc $rc ($([ $rc = 124 ] && echo hung || echo crashed)): $(tail -n 3 "$TMP/exit.out")"
    fi
done
[ "$bad" = 0 ] || fail "finalization: $bad of $EXITS runs failed"
pass "finalization: $EXITS runs of python3 exiting while 4 threads allocate (every 4 KiB sampled): all exit 0, none hung ($(( $(date +%s) - start )) s)"
