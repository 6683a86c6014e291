#!/usr/bin/env bash
# Debian's redis-server (jemalloc as its malloc) and redis-cli/redis-benchmark
# (hiredis) run unchanged under reshim: commands answer as without it, the
# benchmark completes, the server shuts down cleanly and its final stats
# count its reads and writes. Then redis-cli started ~1 s before the server
# listens: hiredis connects non-blocking (O_NONBLOCK, connect -> EINPROGRESS,
# poll, connect again -> ECONNREFUSED), which reshim does not retry (README:
# "Non-blocking connects ... not yet retried"), so reshim must leave that
# outcome exactly as it is ("Could not connect ...", exit 1).
source "$(dirname "$0")/lib.sh"

for p in redis-server redis-cli redis-benchmark; do
    command -v "$p" >/dev/null || skip "$p is not installed (apt-get install redis-server redis-tools)"
done

port=$(free_port)
cd "$TMP"
push_start
RESHIM_LOG=info "$PUSHED" redis-server --port "$port" --bind 127.0.0.1 --save '' \
    --appendonly no --daemonize no --dir "$TMP" >"$TMP/server.out" 2>"$TMP/server.err" &
server=$!
CHILDREN+=("$server")
wait_port "$port" 20 || { cat "$TMP/server.out" "$TMP/server.err" >&2; fail "redis-server did not start under the shim"; }
ldd "$(command -v redis-server)" | grep -q jemalloc && pass "redis-server (jemalloc) listening under the shim on port $port"

# The same command sequence, without and with the shim on the client.
cli_session() {   # cli_session PREFIX: key names made unique per run
    local k=$1
    redis-cli -p "$port" SET "$k:str" "hello world"
    redis-cli -p "$port" GET "$k:str"
    redis-cli -p "$port" INCR "$k:n"
    redis-cli -p "$port" INCR "$k:n"
    redis-cli -p "$port" INCRBY "$k:n" 40
    redis-cli -p "$port" LPUSH "$k:list" a b c
    redis-cli -p "$port" LRANGE "$k:list" 0 -1
    redis-cli -p "$port" GET "$k:missing"
    redis-cli -p "$port" NOSUCHCOMMAND
    redis-cli -p "$port" PING
}
expected='OK
hello world
1
2
42
3
c
b
a

ERR unknown command '"'"'NOSUCHCOMMAND'"'"', with args beginning with: 

PONG'
cli_session plain >"$TMP/cli0" 2>&1 || true
push_mark
RESHIM_LOG=info RESHIM_PUSH="$PUSH" LD_PRELOAD="$SHIM" cli_session shim >"$TMP/cli1" 2>"$TMP/cli1.err" || true
[ "$(cat "$TMP/cli0")" = "$expected" ] || { diff <(echo "$expected") "$TMP/cli0" >&2; fail "redis-cli without the shim answered differently from expected"; }
diff "$TMP/cli0" "$TMP/cli1" >&2 || fail "redis-cli answers differ with the shim"
ncli=$(stat_count redis-cli)
[ "$ncli" -eq 10 ] || fail "expected stats from 10 redis-cli runs under the shim, got $ncli"
grep -E "reshim\[[0-9]+\]: (warn|error)" "$TMP/cli1.err" && fail "reshim warned in redis-cli"
pass "redis-cli SET/GET/INCR/INCRBY/LPUSH/LRANGE/unknown command/PING: identical without and with the shim (${ncli} cli runs)"

# redis-benchmark under the shim.
RESHIM_LOG=info timeout 60 "$PUSHED" redis-benchmark -p "$port" -n 20000 -q -t set,get \
    >"$TMP/bench.out" 2>"$TMP/bench.err" || { cat "$TMP/bench.out" "$TMP/bench.err" >&2; fail "redis-benchmark failed under the shim"; }
tr '\r' '\n' <"$TMP/bench.out" | grep -E "^(SET|GET): " | grep "requests per second" >"$TMP/rates" || true
set_rate=$(sed -n 's/^SET: \([0-9.]*\) requests per second.*/\1/p' "$TMP/rates" | tail -n 1)
get_rate=$(sed -n 's/^GET: \([0-9.]*\) requests per second.*/\1/p' "$TMP/rates" | tail -n 1)
awk -v s="${set_rate:-0}" -v g="${get_rate:-0}" 'BEGIN { exit !(s > 0 && g > 0) }' ||
    { cat "$TMP/bench.out" >&2; fail "redis-benchmark rates missing or zero (SET=${set_rate:-?} GET=${get_rate:-?})"; }
bsend=$(stat_field net.send.calls "$TMP/bench.err")
pass "redis-benchmark -n 20000 under the shim: SET $set_rate req/s, GET $get_rate req/s (client send calls=$bsend)"

# Clean shutdown; the server's final stats count its socket reads and writes.
redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
wait_until 10 gone "$server" ||
    fail "redis-server still running 10 s after SHUTDOWN NOSAVE"
rc=0; wait "$server" || rc=$?
[ "$rc" = 0 ] || { tail -n 20 "$TMP/server.out" "$TMP/server.err" >&2; fail "redis-server exited with $rc"; }
grep -q "is now ready to exit, bye bye" "$TMP/server.out" || fail "redis-server did not log its clean exit"
grep -E "reshim\[[0-9]+\]: (warn|error)" "$TMP/server.err" && fail "reshim warned in redis-server"
echo "    server: recv $(stat_field net.recv "$server"); send $(stat_field net.send "$server")"
srecv=$(stat_field net.recv.calls "$server")
ssend=$(stat_field net.send.calls "$server")
[ "${srecv:-0}" -gt 0 ] && [ "${ssend:-0}" -gt 0 ] || fail "server: recv calls=${srecv:-?} send calls=${ssend:-?}"
# The benchmark alone sent 40000 commands; the server read each in some read().
[ "$srecv" -ge 1000 ] || fail "server recv calls=$srecv: fewer than expected for 40000 commands"
pass "redis-server shut down cleanly (rc 0), final stats recv calls=$srecv send calls=$ssend"

# redis-cli started ~1 s before the server listens.
early() {   # early OUT [env...]: redis-cli PING, the server starting 1 s later
    local out=$1; shift
    local p2; p2=$(free_port)
    env "$@" redis-cli -p "$p2" PING >"$out" 2>&1 &
    local cli=$!
    sleep 1
    redis-server --port "$p2" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        --dir "$TMP" >"$out.server" 2>&1 &
    local srv=$!
    CHILDREN+=("$srv")
    local rc=0; wait "$cli" || rc=$?
    echo "rc=$rc" >>"$out"
    wait_port "$p2" 20 || true
    redis-cli -p "$p2" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    wait "$srv" || true
    sed -i "s/:$p2:/:PORT:/" "$out"
}
early "$TMP/early0"
grep -q "Could not connect to Redis at 127.0.0.1:PORT: Connection refused" "$TMP/early0" ||
    fail "without the shim, an early redis-cli did not fail as expected: $(cat "$TMP/early0")"
pass "early redis-cli without the shim: $(head -n 1 "$TMP/early0") ($(tail -n 1 "$TMP/early0"))"
early "$TMP/early1" RESHIM_LOG=info "$PUSHED"
echo "    early cli: connect $(stat_field net.connect "$TMP/early1")"
if grep -q "^PONG" "$TMP/early1"; then
    pass "early redis-cli with the shim: PONG (non-blocking connects are retried now)"
else
    diff <(cat "$TMP/early0") <(grep -v "^reshim\[" "$TMP/early1") >&2 ||
        fail "early redis-cli: output or exit code differs with the shim"
    [ "$(stat_field net.connect.retries "$TMP/early1")" = 0 ] || fail "retries counted for a connect that was not retried"
    [ "$(stat_field net.connect.failures "$TMP/early1")" -ge 1 ] || fail "the refused non-blocking connect was not counted as a failure"
    pass "early redis-cli with the shim: identical failure (hiredis connects non-blocking; not retried yet), failures counted"
fi
# With non-blocking retries off, reshim must be transparent whatever comes later.
early "$TMP/early2" LD_PRELOAD="$SHIM" RESHIM_NONBLOCK=off
diff "$TMP/early0" "$TMP/early2" >&2 || fail "early redis-cli with RESHIM_NONBLOCK=off differs from without the shim"
pass "early redis-cli with the shim and RESHIM_NONBLOCK=off: identical to without"
