#!/usr/bin/env bash
# The heap profiler's unwinders give the same answer: build/bin/heap_sites
# (60, 30 and 10 MiB live from hold_big, hold_mid and hold_small, one thread,
# and one thread per site) under RESHIM_HEAP_UNWINDER=libgcc, =libunwind and
# =auto (cfiwalk: libgcc's tables, rules cached): each names the unwinder it
# used, the three sites rank the same, and the stacks of the top three sites
# are the same frames, frame for frame; auto walked every stack with its
# cached rules (stacks_cached, stacks_full: none left to libgcc's).
source "$(dirname "$0")/lib.sh"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
source "$(dirname "$0")/heap_lib.sh"
[ -e /usr/lib/x86_64-linux-gnu/libunwind.so.8 ] || ls /usr/lib/*/libunwind.so.8 >/dev/null 2>&1 ||
    skip "libunwind.so.8 is not installed (Debian package libunwind8)"

for mode in one mt; do
    for u in libgcc libunwind auto; do
        RESHIM_HEAP_UNWINDER=$u LD_PRELOAD="$SHIM" "$BIN/heap_sites" big "$mode" >"$TMP/$mode.$u.out" 2>"$TMP/$mode.$u.err" &
        runner=$!
        CHILDREN+=($runner)
        pid=$(ready_pid "$TMP/$mode.$u.out" "$TMP/$mode.$u.err" "heap_sites ($u, $mode)")
        "$CLI" heap "$pid" --top 50 --json >"$TMP/$mode.$u.json" || fail "reshim heap failed ($u)"
        kill "$pid" 2>/dev/null || true
        wait "$runner" 2>/dev/null || true
    done
    out=$("$PY" - "$TMP/$mode.libgcc.json" "$TMP/$mode.libunwind.json" "$TMP/$mode.auto.json" <<'PYEOF'
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
    return d["unwinder"], est, {k: v[1] for k, v in stacks.items()}, d
ua, ea, sa, _ = load(sys.argv[1]); ub, eb, sb, _ = load(sys.argv[2]); uc, ec, sc, dc = load(sys.argv[3])
errs = []
if "libgcc" not in ua or "libunwind" not in ub or "cfiwalk" not in uc:
    errs.append("unwinders used: %r, %r and %r" % (ua, ub, uc))
if dc["stacks_cached"] == 0 or dc["stacks_full"] != 0:
    errs.append("auto: %d stacks walked with cached rules, %d by libgcc's unwinder"
                % (dc["stacks_cached"], dc["stacks_full"]))
for u, e in (("libgcc", ea), ("libunwind", eb), ("auto", ec)):
    r = sorted(names, key=lambda k: -e[k])
    if r != list(names):
        errs.append("ranks: %s %s" % (u, r))
for k in names:
    if not (sa.get(k) == sb.get(k) == sc.get(k)):
        errs.append("%s: libgcc %s vs libunwind %s vs auto %s" % (k, sa.get(k), sb.get(k), sc.get(k)))
print("; ".join("%s %.1f/%.1f/%.1f MiB" % (k, ea[k] / 2**20, eb[k] / 2**20, ec[k] / 2**20) for k in names),
      "| auto: %d stacks cached, %d full" % (dc["stacks_cached"], dc["stacks_full"]),
      "| %s" % " < ".join(sa["hold_big"]))
if errs:
    print("; ".join(errs), file=sys.stderr); sys.exit(1)
PYEOF
    ) || fail "$mode: $out"
    pass "$mode thread(s): libgcc, libunwind and cfiwalk agree (libgcc/libunwind/auto): $out"
done
