#!/usr/bin/env bash
# One formatter for `config` (shim/config_show.c): the answer of a live
# python3 under the shim to the stats socket's `config` request and
# `reshim config --json` run in the same environment are the same JSON,
# byte for byte, for the defaults and for settings in every unit (sizes,
# durations, percentages, names, destination rules, an invalid value with
# what was given). Before, the library said RESHIM_HEAP_SAMPLE "524288"
# where the CLI said "512K".
source "$(dirname "$0")/lib.sh"

RESHIM="$ROOT/build/reshim"
CLIENT="$ROOT/tests/integration/stats_client.py"
for f in "$SHIM" "$RESHIM"; do [ -e "$f" ] || fail "$f is missing (make all)"; done
RUN="$TMP/run"
mkdir -m 0700 "$RUN"

cat >"$TMP/app.py" <<'PYEOF'
import os, sys, time
time.sleep(0.15)                        # past the shim's 100 ms: the stats thread starts
print("ready", os.getpid(), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
PYEOF

# compare NAME VAR=VALUE...: the app's `config` answer and the CLI's, same environment.
compare() {
    local name=$1 i=0 pid sock
    shift
    local -a envs=(env -u LD_PRELOAD RESHIM_RUN_DIR="$RUN" "$@")
    "${envs[@]}" LD_PRELOAD="$SHIM" "$PY" "$TMP/app.py" "$TMP/stop.$name" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    CHILDREN+=($!)
    until grep -q '^ready ' "$TMP/$name.out"; do
        i=$((i + 1)); [ $i -gt 500 ] && { cat "$TMP/$name.err" >&2; fail "$name: app.py never got ready"; }
        sleep 0.02
    done
    pid=$(awk '/^ready/ {print $2}' "$TMP/$name.out")
    sock=$RUN/$pid.sock
    i=0
    until [ -S "$sock" ]; do i=$((i + 1)); [ $i -gt 250 ] && fail "$name: no stats socket"; sleep 0.02; done
    "$PY" "$CLIENT" "$sock" config >"$TMP/$name.lib" || fail "$name: config request failed"
    touch "$TMP/stop.$name"
    "${envs[@]}" "$RESHIM" config --json >"$TMP/$name.cli" 2>"$TMP/$name.cli.err" ||
        fail "$name: reshim config --json exited $?"
    "$PY" -c 'import json,sys; json.load(open(sys.argv[1])); json.load(open(sys.argv[2]))' \
        "$TMP/$name.lib" "$TMP/$name.cli" || fail "$name: an answer is not JSON"
    diff "$TMP/$name.lib" "$TMP/$name.cli" >&2 || fail "$name: the library's config answer and the CLI's differ"
}
# Clean of the caller's RESHIM_ settings.
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^RESHIM_' || true)

compare defaults
grep -q '"RESHIM_HEAP_SAMPLE":{"value":"512K","source":"default"}' "$TMP/defaults.lib" ||
    fail "defaults: RESHIM_HEAP_SAMPLE not 512K: $(cat "$TMP/defaults.lib")"
pass "defaults: the app's answer and reshim config --json are the same ($(wc -c <"$TMP/defaults.lib") bytes; RESHIM_HEAP_SAMPLE 512K)"

compare set RESHIM_RETRIES=7 RESHIM_BACKOFF_BASE=250ms RESHIM_BACKOFF_MAX=120s RESHIM_MEM_BUDGET=768M \
    RESHIM_MEM_WARN=62.5% RESHIM_HEAP_SAMPLE=64K RESHIM_DNS_STALE=10min RESHIM_JITTER=full \
    RESHIM_DEST=127.0.0.0/8 RESHIM_BREAKER=lots RESHIM_LOG=error
for want in '"RESHIM_BACKOFF_MAX":{"value":"2min","source":"env"}' \
    '"RESHIM_MEM_BUDGET":{"value":"768M","source":"env"}' \
    '"RESHIM_MEM_WARN":{"value":"62.5%","source":"env"}' \
    '"RESHIM_BREAKER":{"value":"5","source":"invalid","given":"lots"}' \
    '"RESHIM_DEST":{"value":"127.0.0.0/8","source":"env"}'; do
    grep -qF "$want" "$TMP/set.lib" || fail "set: $want not in $(cat "$TMP/set.lib")"
done
pass "11 settings (sizes, durations, percentages, names, rules, an invalid value): the same JSON from both"
