#!/usr/bin/env bash
# Error bars of `reshim heap`: each site's live_bytes_sd (one standard
# deviation of the Poisson byte sampling) must mean what it says. 30 fresh
# runs of build/bin/heap_sites (60, 30 and 10 MiB live from hold_big,
# hold_mid and hold_small) at the default rate, in both profiles (2-5 MiB
# blocks; 64 B - 256 KiB blocks, where the sd is about sqrt(R x live)): the
# interval the CLI states, estimate +- 3 sd, covers the true size of each
# site in at least 90 % of the runs (printed, with the +- 2 sd coverage and
# the stated against the seen spread, for information).
source "$(dirname "$0")/lib.sh"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
source "$(dirname "$0")/heap_lib.sh"
RUNS=${HEAP_BARS_RUNS:-30}

for prof in big small; do
    : >"$TMP/$prof.list"
    for i in $(seq 1 "$RUNS"); do
        LD_PRELOAD="$SHIM" "$BIN/heap_sites" "$prof" one >"$TMP/$prof.$i.out" 2>"$TMP/$prof.$i.err" &
        runner=$!
        CHILDREN+=($runner)
        pid=$(ready_pid "$TMP/$prof.$i.out" "$TMP/$prof.$i.err" "heap_sites $prof run $i")
        "$CLI" heap "$pid" --top 50 --json >"$TMP/$prof.$i.json" || fail "reshim heap failed ($prof run $i)"
        echo "$TMP/$prof.$i.json" >>"$TMP/$prof.list"
        kill "$pid" 2>/dev/null || true
        wait "$runner" 2>/dev/null || true
    done
    out=$("$PY" - "$TMP/$prof.list" <<'PYEOF'
import json, math, sys
want = {"hold_big": 60 << 20, "hold_mid": 30 << 20, "hold_small": 10 << 20}
files = open(sys.argv[1]).read().split()
cov3 = dict.fromkeys(want, 0); cov2 = dict.fromkeys(want, 0)
sd_sum = dict.fromkeys(want, 0.0); d2 = dict.fromkeys(want, 0.0)
for f in files:
    d = json.load(open(f))
    est = dict.fromkeys(want, 0.0); var = dict.fromkeys(want, 0.0)
    for s in d["sites"]:
        for k in want:
            if any(fr.startswith(k + "+") for fr in s["stack"]):
                est[k] += s["live_bytes"]; var[k] += s["live_bytes_sd"] ** 2
    for k, w in want.items():
        sd = math.sqrt(var[k]); err = abs(est[k] - w)
        cov3[k] += err <= 3 * sd; cov2[k] += err <= 2 * sd
        sd_sum[k] += sd; d2[k] += (est[k] - w) ** 2
n = len(files); bad = []
for k in want:
    print("%s: +-3 sd covered %d/%d, +-2 sd %d/%d; stated sd %.0f KiB, seen %.0f KiB"
          % (k, cov3[k], n, cov2[k], n, sd_sum[k] / n / 1024, math.sqrt(d2[k] / n) / 1024))
    if cov3[k] < 0.9 * n:
        bad.append(k)
sys.exit(1 if bad else 0)
PYEOF
    ) || fail "$prof blocks: $out"
    pass "$prof blocks, $RUNS runs at the default rate:"
    echo "$out" | sed 's/^/      /'
done
