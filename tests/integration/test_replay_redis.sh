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
PUSH=$TMP/push.sock
"$PY" -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind('$PUSH'); s.settimeout(30)
out = open('$TMP/push.log', 'ab')
while True:
    out.write(s.recv(1 << 20) + b'\n'); out.flush()
" & CHILDREN+=($!)
for i in $(seq 100); do [ -S "$PUSH" ] && break; sleep 0.05; done
start
redis-cli -p "$port" SET k 0 >/dev/null
for side in none shim; do
    redis-cli -p "$port" CLIENT PAUSE 5000 ALL >/dev/null
    if [ $side = shim ]; then
        env LD_PRELOAD="$SHIM" RESHIM_PUSH="$PUSH" redis-cli -p "$port" INCR k >"$TMP/$side.out" 2>&1 &
    else
        redis-cli -p "$port" INCR k >"$TMP/$side.out" 2>&1 &
    fi
    cli=$!
    sleep 0.5   # the INCR is read, not run
    kill -9 "$srv"; wait "$srv" 2>/dev/null || true
    start       # at once: a replay would land here
    rc=0; wait "$cli" || rc=$?
    echo "rc=$rc" >>"$TMP/$side.out"
    v=$(redis-cli -p "$port" GET k)
    [ "$v" = 0 ] || fail "$side: k = $v after the killed INCR (it ran on the new server)"
done
diff "$TMP/none.out" "$TMP/shim.out" >/dev/null ||
    fail "redis-cli's outcome differs: without '$(tr '\n' ' ' <"$TMP/none.out")', with '$(tr '\n' ' ' <"$TMP/shim.out")'"
sleep 0.3
"$PY" - "$TMP/push.log" <<'PYEOF' || fail "the shim's stats"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], 'rb') if l.strip()]
r = rows[-1]['net']['replay']
n = r['nothing_sent'] + r['tls_hello'] + r['http_request']
if n: sys.exit('%d replays counted: %r' % (n, r))
PYEOF
pass "INCR on a redis-server killed mid-command: k stays 0 and redis-cli says '$(head -n 1 "$TMP/none.out")' ($(tail -n 1 "$TMP/none.out")) both ways; no replay counted"
