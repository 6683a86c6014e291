#!/usr/bin/env bash
# A unix-socket stream server whose socket file appears 1 s late
# (peers/unix_late.py). A python3 AF_UNIX client (connect, send a line, read
# the answer) fails with ENOENT (FileNotFoundError) without the shim; with the
# shim its connect is retried until the socket exists, and it gets the answer.
source "$(dirname "$0")/lib.sh"

DELAY=1
cat > "$TMP/client.py" <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect failed: %s %s" % (type(e).__name__, e), file=sys.stderr)
    sys.exit(1)
s.sendall(b"hello unix\n")
data = b""
while not data.endswith(b"\n"):
    chunk = s.recv(100)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
PYEOF

# Without the shim.
sock="$TMP/late-a.sock"
spawn "$PY" "$PEERS/unix_late.py" "$sock" "$DELAY" "$(date +%s.%N)" >"$TMP/server-a" 2>&1
rc=0; "$PY" "$TMP/client.py" "$sock" >"$TMP/out" 2>"$TMP/err" || rc=$?
[ $rc -ne 0 ] || fail "the client succeeded without the shim"
grep -q "FileNotFoundError" "$TMP/err" || fail "without the shim, expected FileNotFoundError (ENOENT): $(cat "$TMP/err")"
pass "without the shim: $(cat "$TMP/err")"
# The socket does appear later, and then the same client works.
wait_until 5 test -S "$sock" || true
[ -S "$sock" ] || fail "the late server never created $sock"
"$PY" "$TMP/client.py" "$sock" >"$TMP/out" 2>"$TMP/err" || fail "client fails even once the socket exists: $(cat "$TMP/err")"
[ "$(cat "$TMP/out")" = "echo: hello unix" ] || fail "wrong answer: $(cat "$TMP/out")"
pass "without the shim, once the socket exists: $(cat "$TMP/out")"

# With the shim: a fresh late server.
sock="$TMP/late-b.sock"
spawn "$PY" "$PEERS/unix_late.py" "$sock" "$DELAY" "$(date +%s.%N)" >"$TMP/server-b" 2>&1
t0=$(date +%s%N)
rc=0; RESHIM_LOG=info pushed "$PY" "$TMP/client.py" "$sock" >"$TMP/out" 2>"$TMP/err" || rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 0 ] || { sed 's/^/    | /' "$TMP/err"; fail "with the shim: rc $rc after ${ms} ms"; }
[ "$(cat "$TMP/out")" = "echo: hello unix" ] || fail "with the shim: wrong answer: $(cat "$TMP/out")"
grep -q "recovered after" "$TMP/err" || { sed 's/^/    | /' "$TMP/err"; fail "no 'recovered' log line"; }
recovered=$(stat_field net.connect.recovered "$TMP/err")
retries=$(stat_field net.connect.retries "$TMP/err")
[ "$recovered" = 1 ] || fail "connect recovered=$recovered, expected 1: $(stat_field net.connect "$TMP/err")"
[ "${retries:-0}" -ge 1 ] || fail "connect retries=$retries, expected >= 1"
pass "with the shim: '$(cat "$TMP/out")' after ${ms} ms; connect retries=$retries recovered=$recovered"
grep "recovered after" "$TMP/err" | sed 's/^/    /'
