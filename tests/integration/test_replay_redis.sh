#!/usr/bin/env bash
# Never replayed: a redis INCR whose server dies mid-command. redis-server
# (Debian's, AOF with appendfsync always) holds k = 0 and is paused (CLIENT
# PAUSE ALL: it reads the INCR but does not run it); redis-cli sends INCR k;
# the server is killed (SIGKILL) and started again at once from its AOF,
# well within the time reshim's retries would take. A replay would run the
# INCR on the new server. Without and with the shim: redis-cli fails the same
# way, k is still 0 (the server ran INCR as often as without the shim: never),
# and the shim counts no replay (stats pushed at exit).
source "$(dirname "$0")/lib.sh"
for p in redis-server redis-cli; do
    command -v "$p" >/dev/null || skip "$p is not installed (make deps)"
done
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
cd "$TMP"
port=$(free_port)
srv=
start() {
    redis-server --port "$port" --bind 127.0.0.1 --dir "$TMP" --appendonly yes \
        --appendfsync always --save '' --daemonize no --logfile "$TMP/redis.log" &
    srv=$!; CHILDREN+=("$srv")
    wait_port "$port" 20 || fail "redis-server did not listen"
}
# incr_read: one connection to the server whose client side has its bytes
# acknowledged, and nothing left unread on the server's side.
incr_read() {
    ss -Htni state established "( dport = :$port )" | grep -q 'bytes_acked:[1-9]' &&
        [ "$(ss -Htn state established "( sport = :$port )" | awk '{s += $1} END {print s + 0}')" = 0 ]
}
push_start
start
redis-cli -p "$port" SET k 0 >/dev/null
for side in none shim; do
    redis-cli -p "$port" CLIENT PAUSE 5000 ALL >/dev/null
    if [ $side = shim ]; then
        pushed redis-cli -p "$port" INCR k >"$TMP/$side.out" 2>&1 &
    else
        redis-cli -p "$port" INCR k >"$TMP/$side.out" 2>&1 &
    fi
    cli=$!
    # The INCR is read, not run: the client's bytes are acknowledged and
    # the server's receive queue is empty (ss).
    wait_until 10 incr_read || fail "$side: redis-server did not read the INCR"
    kill -9 "$srv"; wait "$srv" 2>/dev/null || true
    start       # at once: a replay would land here
    rc=0; wait "$cli" || rc=$?
    echo "rc=$rc" >>"$TMP/$side.out"
    v=$(redis-cli -p "$port" GET k)
    [ "$v" = 0 ] || fail "$side: k = $v after the killed INCR (it ran on the new server)"
done
diff "$TMP/none.out" "$TMP/shim.out" >/dev/null ||
    fail "redis-cli's outcome differs: without '$(tr '\n' ' ' <"$TMP/none.out")', with '$(tr '\n' ' ' <"$TMP/shim.out")'"
# The shim's final figures (pushed at exit; stat_field waits for them).
n=0
for c in nothing_sent tls_hello http_request; do
    n=$((n + $(stat_field net.replay.$c "$TMP/shim.out")))
done
[ "$n" = 0 ] || fail "$n replays counted by the shim: $(stat_field net.replay "$TMP/shim.out")"
pass "INCR on a redis-server killed mid-command: k stays 0 and redis-cli says '$(head -n 1 "$TMP/none.out")' ($(tail -n 1 "$TMP/none.out")) both ways; no replay counted"
