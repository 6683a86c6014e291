#!/usr/bin/env bash
# The heap profiler's two unwinders give the same answer: build/bin/heap_sites
# (60, 30 and 10 MiB live from hold_big, hold_mid and hold_small, one thread,
# and one thread per site) under RESHIM_HEAP_UNWINDER=libgcc and =libunwind:
# each names the unwinder it used, the three sites rank the same, and the
# stacks of the top three sites are the same frames, frame for frame.
source "$(dirname "$0")/lib.sh"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
source "$(dirname "$0")/heap_lib.sh"
[ -e /usr/lib/x86_64-linux-gnu/libunwind.so.8 ] || ls /usr/lib/*/libunwind.so.8 >/dev/null 2>&1 ||
    skip "libunwind.so.8 is not installed (Debian package libunwind8)"

for mode in one mt; do
    for u in libgcc libunwind; do
        RESHIM_HEAP_UNWINDER=$u LD_PRELOAD="$SHIM" "$BIN/heap_sites" big "$mode" >"$TMP/$mode.$u.out" 2>"$TMP/$mode.$u.err" &
        runner=$!
        CHILDREN+=($runner)
        pid=$(ready_pid "$TMP/$mode.$u.out" "$TMP/$mode.$u.err" "heap_sites ($u, $mode)")
        "$CLI" heap "$pid" --top 50 --json >"$TMP/$mode.$u.json" || fail "reshim heap failed ($u)"
        kill "$pid" 2>/dev/null || true
        wait "$runner" 2>/dev/null || true
    done
    out=$("$PY" - "$TMP/$mode.libgcc.json" "$TMP/$mode.libunwind.json" <<'PYEOF'
import json, sys
names = ("hold_big", "hold_mid", "hold_small")
def load(f):
    d = json.load(open(f))
    est = dict.fromkeys(names, 0.0); stacks = {}
    for s in d["sites"]:
        for k in names:
            if any(fr.startswith(k + "+") for fr in s["stack"]):
                est[k] += s["live_bytes"]
                # The innermost frames of the site's biggest stack, to main.
                if k not in stacks or s["live_bytes"] > stacks[k][0]:
                    stacks[k] = (s["live_bytes"], s["stack"][:s["stack"].index(next(fr for fr in s["stack"] if fr.startswith(k + "+"))) + 1])
    return d["unwinder"], est, {k: v[1] for k, v in stacks.items()}
ua, ea, sa = load(sys.argv[1]); ub, eb, sb = load(sys.argv[2])
errs = []
if "libgcc" not in ua or "libunwind" not in ub:
    errs.append("unwinders used: %r and %r" % (ua, ub))
ra = sorted(names, key=lambda k: -ea[k]); rb = sorted(names, key=lambda k: -eb[k])
if ra != list(names) or rb != list(names):
    errs.append("ranks: libgcc %s, libunwind %s" % (ra, rb))
for k in names:
    if sa.get(k) != sb.get(k):
        errs.append("%s: libgcc %s vs libunwind %s" % (k, sa.get(k), sb.get(k)))
print("; ".join("%s %.1f/%.1f MiB" % (k, ea[k] / 2**20, eb[k] / 2**20) for k in names),
      "| %s" % " < ".join(sa["hold_big"]))
if errs:
    print("; ".join(errs), file=sys.stderr); sys.exit(1)
PYEOF
    ) || fail "$mode: $out"
    pass "$mode thread(s): libgcc and libunwind agree (libgcc/libunwind): $out"
done
