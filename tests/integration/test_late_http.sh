#!/usr/bin/env bash
# A backend that starts listening 1.5 s late (peers/late_http.py): a blocking
# connect made before it listens is refused. Three unmodified clients, each
# against a freshly launched late server: python3 urllib (no timeout), wget -t 1
# (its own retries off) and build/bin/blocking_client. Without the shim each
# fails with "connection refused"; with the shim (defaults) each gets the body,
# and its stats (pushed at exit) show connect recovered=1 and retries>=1.
source "$(dirname "$0")/lib.sh"

need "$BIN/blocking_client"
command -v wget >/dev/null || skip "wget not installed"

DELAY=1.5
server_pid=

# launch_late PORT: a fresh late server; it listens DELAY s after now.
launch_late() {
    spawn "$PY" "$PEERS/late_http.py" "$1" "$DELAY" "$(date +%s.%N)" "late body $1" >"$TMP/server.$1" 2>&1
    server_pid=$!
}
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }

# client_cmd NAME PORT: CLIENT=(the command of client NAME against
# 127.0.0.1:PORT; stdout: the body). client NAME PORT runs it.
client_cmd() {
    case $1 in
    urllib) CLIENT=("$PY" -c "import sys, urllib.request
sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:$2/').read().decode())") ;;
    wget) CLIENT=(wget -q -O - -t 1 "http://127.0.0.1:$2/") ;;
    c) CLIENT=("$BIN/blocking_client" "$2") ;;
    esac
}
client() { client_cmd "$@"; "${CLIENT[@]}"; }

for name in urllib wget c; do
    # Without the shim: refused, because the server is not listening yet.
    port=$(free_port)
    launch_late "$port"
    t0=$(date +%s%N)
    rc=0; client "$name" "$port" >"$TMP/out" 2>"$TMP/err" || rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $rc -ne 0 ] || fail "$name: succeeded without the shim (server up after ${ms} ms?)"
    case $name in
    urllib) grep -q "Connection refused" "$TMP/err" || fail "urllib without the shim: $(tail -n 1 "$TMP/err")" ;;
    wget) [ $rc -eq 4 ] || fail "wget without the shim: rc $rc, expected 4 (network failure)" ;;
    c) grep -q "ECONNREFUSED" "$TMP/err" || fail "blocking_client without the shim: $(cat "$TMP/err")" ;;
    esac
    # The same server does come up, and then the same client works.
    wait_port "$port" 10 || fail "late server on $port never listened"
    client "$name" "$port" >"$TMP/out" 2>"$TMP/err" || fail "$name fails even once the server listens: $(tail -n 3 "$TMP/err")"
    [ "$(cat "$TMP/out")" = "late body $port" ] || fail "$name: wrong body from the late server: $(cat "$TMP/out")"
    stop_server
    pass "$name without the shim: refused after ${ms} ms (rc $rc) while the server was not yet listening"

    # With the shim: a fresh late server; the client's connect is retried.
    port=$(free_port)
    launch_late "$port"
    t0=$(date +%s%N)
    client_cmd "$name" "$port"
    rc=0; RESHIM_LOG=info pushed "${CLIENT[@]}" >"$TMP/out" 2>"$TMP/err" || rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ $rc -eq 0 ] || { sed 's/^/    | /' "$TMP/err"; fail "$name with the shim: rc $rc after ${ms} ms"; }
    [ "$(cat "$TMP/out")" = "late body $port" ] || fail "$name with the shim: wrong body: $(cat "$TMP/out")"
    grep -q "connect to 127.0.0.1:$port recovered after" "$TMP/err" ||
        { sed 's/^/    | /' "$TMP/err"; fail "$name: no 'recovered' log line"; }
    recovered=$(stat_field net.connect.recovered "$TMP/err")
    retries=$(stat_field net.connect.retries "$TMP/err")
    [ "$recovered" = 1 ] || fail "$name: connect recovered=$recovered, expected 1: $(stat_field net.connect "$TMP/err")"
    [ "${retries:-0}" -ge 1 ] || fail "$name: connect retries=$retries, expected >= 1"
    stop_server
    pass "$name with the shim: got the body after ${ms} ms; connect retries=$retries recovered=$recovered"
done
