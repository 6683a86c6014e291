#!/usr/bin/env bash
# alone: calls that fail at once, and probes of 100 ms, are timed
# A retry storm, and what bounds it. 50 threads of one process connect to a
# dead port, each a call 100 ms after its last one ended, for 10 s
# (build/bin/storm). The connect attempts are counted outside the shim, by
# strace (-ff: one file per thread): every connect() to the port, less the
# shim's reaping of a failed non-blocking attempt (ECONNABORTED), which sends
# nothing. Every call gets ECONNREFUSED, with and without the shim.
#  - Without the shim: attempts = calls, each refused at once.
#  - With the shim (defaults): attempts at most 1.3 x the app's calls; the
#    breaker opens (reshim stats --json: the destination's breaker open or
#    half-open, skipped_breaker > 0), and in the second half of the run calls
#    fail at once: only the breaker's half-open probes take 100 ms or more (a
#    retried call waits at least one backoff, 125 ms; a loaded machine can
#    delay a plain refusal by tens of ms).
#  - With the breaker off (RESHIM_BREAKER=0): the retry budget alone keeps
#    attempts within 1.3 x calls (20 % of calls, a burst of 100, 3 calls on
#    the floor).
source "$(dirname "$0")/lib.sh"

command -v strace >/dev/null || skip "strace is not installed"
need "$BIN/storm"
RESHIM="$ROOT/build/reshim"
THREADS=50 GAP=100 SECS=10
port=$(free_port)

# run NAME [VAR=VALUE...]: the storm under strace, the shim preloaded when
# VARs are given (or NAME is not "plain"); the figures to $TMP/NAME.out.
run() {
    local name=$1; shift
    local envs=()
    if [ "$name" != plain ]; then
        envs=(-E "LD_PRELOAD=$SHIM" -E "RESHIM_RUN_DIR=$TMP/run")
        for v in "$@"; do envs+=(-E "$v"); done
    fi
    mkdir -p "$TMP/$name"
    strace -f -ff -qq --seccomp-bpf -e trace=connect -o "$TMP/$name/st" "${envs[@]}" \
        "$BIN/storm" $THREADS $GAP $SECS "$port" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    local tracer=$!
    if [ "$name" = shim ]; then
        # Wait (bounded) for the breaker to be open, as the stats socket says.
        local pid="" end=$((SECONDS + 15))
        while [ -z "$pid" ] && [ $SECONDS -lt $end ]; do
            pid=$(pgrep -P "$tracer" storm || true); [ -n "$pid" ] || sleep 0.05
        done
        : >"$TMP/breaker.json"
        while [ -n "$pid" ] && [ $SECONDS -lt $end ] && kill -0 "$pid" 2>/dev/null; do
            if RESHIM_RUN_DIR="$TMP/run" "$RESHIM" stats "$pid" --json >"$TMP/stats.json" 2>/dev/null &&
                "$PY" - "$TMP/stats.json" "$port" >"$TMP/breaker.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for x in d["net"]["destinations"]:
    if x["dest"] == "127.0.0.1:" + sys.argv[2] and x["breaker"] in ("open", "half-open") \
            and x["skipped_breaker"] > 0:
        print(json.dumps(x)); sys.exit(0)
sys.exit(1)
PYEOF
            then break; fi
            sleep 0.2
        done
    fi
    wait "$tracer" || fail "$name: strace/storm exited $?: $(tail -n 3 "$TMP/$name.err")"
    # connect() calls to the port, less the reaping ones (ECONNABORTED).
    grep -h "htons($port)" "$TMP/$name"/st.* | grep -vc "ECONNABORTED" >"$TMP/$name.attempts" || true
}
field() { tr ' ' '\n' <"$TMP/$1.out" | sed -n "s/^$2=//p"; }

run plain
calls=$(field plain calls); attempts=$(cat "$TMP/plain.attempts")
[ "$(field plain other)" = 0 ] || fail "without the shim: $(cat "$TMP/plain.out")"
[ "$attempts" = "$calls" ] || fail "without the shim: $attempts attempts for $calls calls: the count is wrong"
[ "$(field plain slow)" -le $((calls / 100)) ] || fail "without the shim many refusals were slow: $(cat "$TMP/plain.out")"
pass "without the shim: $calls calls, $attempts connect attempts, all refused at once"

check_bound() { # NAME WHAT
    local c a
    c=$(field "$1" calls); a=$(cat "$TMP/$1.attempts")
    [ "$(field "$1" other)" = 0 ] || fail "$2: not every call got ECONNREFUSED: $(cat "$TMP/$1.out")"
    [ "$c" -gt 500 ] || fail "$2: only $c calls"
    awk -v a="$a" -v c="$c" 'BEGIN { exit !(a <= 1.3 * c) }' ||
        fail "$2: $a connect attempts for $c calls: more than 1.3 x"
    ratio=$(awk -v a="$a" -v c="$c" 'BEGIN { printf "%.3f", a / c }')
}

run shim
check_bound shim "with the shim"
[ -s "$TMP/breaker.json" ] || fail "with the shim: the stats never showed the breaker open"
late=$(field shim late_calls); late_slow=$(field shim late_slow)
[ "$late" -gt 200 ] || fail "with the shim: only $late calls in the second half"
[ "$late_slow" -le 6 ] || fail "with the shim: $late_slow of $late calls in the second half took 100 ms or more: the breaker did not stop retries"
pass "with the shim: $(field shim calls) calls, $(cat "$TMP/shim.attempts") attempts (x$ratio); breaker seen open ($(sed 's/.*"skipped_breaker": *\([0-9]*\).*/skipped_breaker=\1/' "$TMP/breaker.json")); second half: $late calls, $late_slow slow (probes)"

run nobreaker RESHIM_BREAKER=0
check_bound nobreaker "with the shim, breaker off"
pass "with the shim, breaker off: $(field nobreaker calls) calls, $(cat "$TMP/nobreaker.attempts") attempts (x$ratio): the budget alone bounds them"
