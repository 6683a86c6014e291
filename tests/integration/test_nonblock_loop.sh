#!/usr/bin/env bash
# alone: event-loop lag is judged
# Event loops keep running while reshim retries their non-blocking connects.
# One program per runtime, unmodified apart from measuring itself, runs on a
# single event loop (epoll): a 10 ms periodic timer, a connect to a port that
# never opens, a GET to a server that starts listening 1.5 s late, and GETs to
# a healthy local server every 50 ms (a new connection each):
#   asyncio  peers/nb_asyncio_loop.py (asyncio.open_connection, call_at timer)
#   node     peers/nb_node_loop.js    (net.connect, http.get, setInterval)
# Without the shim both connects fail at once (ECONNREFUSED). With the shim
# (default settings: 3 retries, 0.5 s base): the late GET succeeds, the dead
# connect ends with the same error (ConnectionRefusedError / ECONNREFUSED),
# only later (> 0.5 s), and meanwhile the timer keeps firing (worst lag
# < 100 ms, at least half the ticks due), every healthy fetch succeeds (at
# least half of those due while the dead connect was pending), and the
# process does not spin while waiting out backoffs (user+sys CPU of the whole
# run < 0.5 s for asyncio, < 0.8 s for node, for about 3 s of wall time).
# With RESHIM_NONBLOCK=off the asyncio program fails at once again, and the
# shim counts the failures without retrying.
source "$(dirname "$0")/lib.sh"
push_start   # $PUSHED runs the shimmed programs

NODE=/usr/bin/node
DELAY=1.5
MAX_LAG_MS=100
late_pid=

# A healthy server for the whole test.
healthy=$(free_port)
spawn "$PY" "$PEERS/late_http.py" "$healthy" 0 "" "healthy $healthy" >"$TMP/healthy.log" 2>&1
wait_port "$healthy" 10 || fail "healthy server on $healthy never listened"

# field NAME: a field of the program's JSON line ($TMP/out), as text.
field() {
    "$PY" -c 'import json, sys
v = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])[sys.argv[2]]
print("null" if v is None else v)' "$TMP/out" "$1"
}
# fcmp EXPR: a float comparison, e.g. fcmp "1.2 < 3".
fcmp() { "$PY" -c "import sys; sys.exit(0 if ($1) else 1)"; }

# run_loop PROG SHIM(0|1|off): a fresh dead port and late server, then the
# program; its JSON in $TMP/out, stderr in $TMP/err.
run_loop() {
    local prog=$1 dead late shim=() nb=on cmd=()
    dead=$(free_port)
    late=$(free_port)
    [ "$late" != "$dead" ] || late=$(free_port)
    spawn "$PY" "$PEERS/late_http.py" "$late" "$DELAY" "$(date +%s.%N)" "late body" >"$TMP/late.log" 2>&1
    late_pid=$!
    case $2 in 1) shim=("$PUSHED") ;; off) shim=("$PUSHED") nb=off ;; esac
    case $prog in
    asyncio) cmd=("$PY" "$PEERS/nb_asyncio_loop.py") ;;
    node) cmd=("$NODE" "$PEERS/nb_node_loop.js") ;;
    esac
    rc=0
    timeout 60 env RESHIM_LOG=info RESHIM_NONBLOCK=$nb "${shim[@]}" "${cmd[@]}" "$dead" "$late" "$healthy" \
        >"$TMP/out" 2>"$TMP/err" || rc=$?
    kill "$late_pid" 2>/dev/null || true
    wait "$late_pid" 2>/dev/null || true
    [ $rc -eq 0 ] && [ -s "$TMP/out" ] ||
        { sed 's/^/    | /' "$TMP/err" >&2; fail "$prog (shim=$2): rc $rc, no result"; }
    DEAD_PORT=$dead
}

for prog in asyncio node; do
    if [ "$prog" = node ] && [ ! -x "$NODE" ]; then
        echo "  note: node part skipped: node not installed at $NODE (Debian: nodejs)" >&2
        continue
    fi
    case $prog in
    asyncio) refused=ConnectionRefusedError max_cpu=0.5 ;;
    node) refused=ECONNREFUSED max_cpu=0.8 ;;
    esac

    # Without the shim: both connects fail at once.
    run_loop "$prog" 0
    [ "$(field dead_error)" = "$refused" ] || fail "$prog without the shim: dead connect ended with $(field dead_error), expected $refused"
    fcmp "$(field dead_s) < 0.5" || fail "$prog without the shim: the refused connect took $(field dead_s) s"
    [ "$(field late_ok)" != True ] && [ "$(field late_ok)" != true ] ||
        fail "$prog without the shim: the late server answered (it listened after $(field late_s) s?)"
    grep -q "reshim\[" "$TMP/err" && fail "$prog without the shim: reshim log lines?"
    pass "$prog without the shim: dead port $(field dead_error) after $(field dead_s) s, late server refused ($(field late_error))"

    # With the shim: the late one is rescued, the dead one fails later, the loop runs on.
    run_loop "$prog" 1
    out=$(cat "$TMP/out")
    dead_s=$(field dead_s) late_s=$(field late_s) lag=$(field max_lag_ms)
    cpu=$("$PY" -c "print(round($(field cpu_user_s) + $(field cpu_sys_s), 3))")
    [ "$(field dead_error)" = "$refused" ] || fail "$prog with the shim: dead connect ended with $(field dead_error), expected $refused: $out"
    fcmp "$dead_s > 0.5" || fail "$prog with the shim: the dead connect failed after $dead_s s: not retried? $out"
    fcmp "$dead_s < 10.5" || fail "$prog with the shim: the dead connect took $dead_s s (deadline 10 s)"
    [ "$(field late_ok)" = True ] || [ "$(field late_ok)" = true ] ||
        fail "$prog with the shim: the late GET failed: $(field late_error)"
    [ "$(field late_body)" = "late body" ] || fail "$prog with the shim: late body $(field late_body)"
    fcmp "$lag < $MAX_LAG_MS" ||
        fail "$prog with the shim: the 10 ms timer was $lag ms late (at $(field worst_lag_at_s) s): the loop was blocked: $out"
    fcmp "$(field ticks_during) >= $dead_s * 100 / 2" ||
        fail "$prog with the shim: only $(field ticks_during) timer ticks in the $dead_s s the dead connect was pending: $out"
    [ "$(field healthy_fail)" = 0 ] || fail "$prog with the shim: $(field healthy_fail) healthy fetches failed: $(field healthy_errors)"
    fcmp "$(field healthy_ok_during) >= $dead_s * 20 / 2" ||
        fail "$prog with the shim: only $(field healthy_ok_during) healthy fetches while the dead connect was pending ($dead_s s): $out"
    fcmp "$cpu < $max_cpu" ||
        fail "$prog with the shim: $cpu s of CPU for $(field wall_s) s (limit $max_cpu s): spinning while waiting out a backoff? $out"
    grep -q "connect to 127.0.0.1:$DEAD_PORT gave up after 5 retries" "$TMP/err" ||
        { sed 's/^/    | /' "$TMP/err" >&2; fail "$prog with the shim: no 'gave up after 5 retries' line for the dead port"; }
    grep -Eq "reshim\[[0-9]+\]: (warn|error)" "$TMP/err" && fail "$prog with the shim: reshim warned: $(grep -E 'reshim\[[0-9]+\]: (warn|error)' "$TMP/err" | head -n 2)"
    recovered=$(stat_field net.connect.recovered "$TMP/err")
    gave_up=$(stat_field net.connect.gave_up "$TMP/err")
    retries=$(stat_field net.connect.retries "$TMP/err")
    [ "$recovered" = 1 ] && [ "$gave_up" = 1 ] && [ "${retries:-0}" -ge 4 ] ||
        fail "$prog with the shim: connect $(stat_field net.connect "$TMP/err"), expected recovered=1 gave_up=1 retries>=4"
    pass "$prog with the shim: late GET ok after $late_s s; dead port $refused after $dead_s s; timer worst lag $lag ms ($(field ticks_during) ticks meanwhile); $(field healthy_ok_during) healthy fetches ok meanwhile, $(field healthy_ok) in all, 0 failed; CPU $cpu s for $(field wall_s) s; connect retries=$retries recovered=$recovered gave_up=$gave_up"
done

# RESHIM_NONBLOCK=off: counted, never retried: both fail at once, as without the shim.
run_loop asyncio off
[ "$(field dead_error)" = ConnectionRefusedError ] || fail "RESHIM_NONBLOCK=off: dead connect ended with $(field dead_error)"
fcmp "$(field dead_s) < 0.5" || fail "RESHIM_NONBLOCK=off: the refused connect took $(field dead_s) s: retried?"
[ "$(field late_ok)" = False ] || fail "RESHIM_NONBLOCK=off: the late GET succeeded: retried?"
[ "$(stat_field net.connect.retries "$TMP/err")" = 0 ] || fail "RESHIM_NONBLOCK=off: retries=$(stat_field net.connect.retries "$TMP/err")"
[ "$(stat_field net.connect.failures "$TMP/err")" -ge 2 ] ||
    fail "RESHIM_NONBLOCK=off: the two refused connects were not counted: $(stat_field net.connect "$TMP/err")"
pass "asyncio with RESHIM_NONBLOCK=off: both refused at once ($(field dead_s) s), counted, not retried (connect $(stat_field net.connect "$TMP/err"))"
