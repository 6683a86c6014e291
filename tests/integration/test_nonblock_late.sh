#!/usr/bin/env bash
# Non-blocking connects to a backend that starts listening 1.5 s late
# (peers/late_http.py, a fresh server per client run). Five unmodified clients
# that all connect without blocking, each waiting in its own way:
#   urllib   python3 urllib.request.urlopen(url, timeout=5)  (poll)
#   curl     curl -sS URL, its own retries off by default    (poll)
#   node     peers/nb_node_get.js: http.get                  (libuv, epoll)
#   asyncio  peers/nb_asyncio_get.py: asyncio.open_connection + GET (epoll)
#   java     peers/nb_java_get.java: new Socket(); connect(addr, 5000) + GET
#            (NioSocketImpl, poll), compiled with javac into $TMP
# Without the shim each fails with "connection refused" (and, once the server
# is up, the same client works: the failure was only the late start). With
# the shim (default settings) each gets the body, and its stats (pushed at exit) show
# connect recovered=1 with retries >= 1, and the log names the recovery.
# A client that is not installed is skipped with a note (java: default-jdk-
# headless, node: nodejs); the others still run.
source "$(dirname "$0")/lib.sh"
push_start   # $PUSHED runs the shimmed clients

DELAY=1.5
NODE=/usr/bin/node
server_pid=
client_pid=
skipped=()

# launch_late PORT: a fresh late server; it listens DELAY s after now.
launch_late() {
    spawn "$PY" "$PEERS/late_http.py" "$1" "$DELAY" "$(date +%s.%N)" "late body $1" >"$TMP/server.$1" 2>&1
    server_pid=$!
}
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }

# Does client NAME print "connecting" just before it connects? Those are
# started first, and their late server is launched once they are about to
# connect (the JVM may take seconds to start on a loaded machine).
announces() { case $1 in node | asyncio | java) return 0 ;; *) return 1 ;; esac; }

# start_client NAME PORT SHIM(0|1): runs the client in the background (its
# stdout in $TMP/out, stderr in $TMP/err); client_pid is the client's own pid
# (pushed.sh execs it: the pid of its reshim log lines and of its stats).
start_client() {
    local name=$1 port=$2 url="http://127.0.0.1:$2/" shim=() cmd=()
    [ "$3" = 1 ] && shim=("$PUSHED")
    case $name in
    urllib) cmd=("$PY" -c "import sys, urllib.request
sys.stdout.write(urllib.request.urlopen('$url', timeout=5).read().decode())") ;;
    curl) cmd=(curl -sS "$url") ;;
    node) cmd=("$NODE" "$PEERS/nb_node_get.js" "$port") ;;
    asyncio) cmd=("$PY" "$PEERS/nb_asyncio_get.py" "$port") ;;
    java) cmd=(java -cp "$TMP/java" nb_java_get "$port") ;;
    esac
    RESHIM_LOG=info "${shim[@]}" "${cmd[@]}" >"$TMP/out" 2>"$TMP/err" &
    client_pid=$!
    CHILDREN+=("$client_pid")
}

# run_client NAME PORT SHIM: a fresh late server and the client against it;
# sets rc and ms (from the launch of the server to the client's exit).
run_client() {
    local name=$1 port=$2 i=0
    if announces "$name"; then
        start_client "$name" "$port" "$3"
        while ! grep -q '^connecting' "$TMP/err" 2>/dev/null; do
            i=$((i + 1))
            if [ $i -gt 600 ] || ! kill -0 "$client_pid" 2>/dev/null; then
                grep -q '^connecting' "$TMP/err" 2>/dev/null && break
                fail "$name never got to its connect: $(tail -n 3 "$TMP/err")"
            fi
            sleep 0.05
        done
        launch_late "$port"
    else
        launch_late "$port"
        start_client "$name" "$port" "$3"
    fi
    t0=$(date +%s%N)
    rc=0; wait "$client_pid" || rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
}

have() {
    case $1 in
    node) [ -x "$NODE" ] ;;
    java) command -v java >/dev/null && command -v javac >/dev/null ;;
    *) command -v "$1" >/dev/null || [ "$1" = urllib ] || [ "$1" = asyncio ] ;;
    esac
}

for name in urllib curl node asyncio java; do
    if ! have "$name"; then
        case $name in
        java) note="java/javac not installed (Debian: default-jdk-headless)" ;;
        node) note="node not installed at $NODE (Debian: nodejs)" ;;
        *) note="$name not installed" ;;
        esac
        echo "  note: $name part skipped: $note" >&2
        skipped+=("$name")
        continue
    fi
    if [ "$name" = java ]; then
        mkdir -p "$TMP/java"
        javac -d "$TMP/java" "$PEERS/nb_java_get.java" 2>"$TMP/javac.err" ||
            fail "cannot compile peers/nb_java_get.java: $(head -n 5 "$TMP/javac.err")"
    fi

    # Without the shim: refused, because the server is not listening yet.
    port=$(free_port)
    run_client "$name" "$port" 0
    [ $rc -ne 0 ] || fail "$name: succeeded without the shim (server up after ${ms} ms?)"
    case $name in
    urllib) want="Connection refused" ;;
    curl) want="Failed to connect" ;;
    node) want="error: ECONNREFUSED" ;;
    asyncio) want="error: ConnectionRefusedError" ;;
    java) want="error: java.net.ConnectException: Connection refused" ;;
    esac
    grep -q "$want" "$TMP/err" || fail "$name without the shim: rc $rc, expected \"$want\": $(tail -n 2 "$TMP/err")"
    [ "$name" != curl ] || [ $rc -eq 7 ] || fail "curl without the shim: rc $rc, expected 7 (failed to connect)"
    grep -q "reshim\[" "$TMP/err" && fail "$name without the shim: reshim log lines?"
    # The same server does come up, and then the same client works.
    wait_port "$port" 10 || fail "late server on $port never listened"
    start_client "$name" "$port" 0
    rc2=0; wait "$client_pid" || rc2=$?
    [ $rc2 -eq 0 ] || fail "$name fails even once the server listens: $(tail -n 3 "$TMP/err")"
    [ "$(cat "$TMP/out")" = "late body $port" ] || fail "$name: wrong body from the late server: $(cat "$TMP/out")"
    stop_server
    pass "$name without the shim: refused ${ms} ms after the late server's launch (rc $rc, \"$want\"), before it listened"

    # With the shim: a fresh late server; the non-blocking connect is retried.
    port=$(free_port)
    run_client "$name" "$port" 1
    pid=$client_pid
    [ $rc -eq 0 ] || { sed 's/^/    | /' "$TMP/err" >&2; fail "$name with the shim: rc $rc after ${ms} ms"; }
    [ "$(cat "$TMP/out")" = "late body $port" ] || fail "$name with the shim: wrong body: $(cat "$TMP/out")"
    # The client's own log lines (a JVM or node might run helpers of its own).
    grep "^reshim\[$pid\]: " "$TMP/err" >"$TMP/log" || true
    stat_field pid "$pid" >/dev/null ||
        { sed 's/^/    | /' "$TMP/err" >&2; fail "$name: no stats from pid $pid (was the shim loaded?)"; }
    # Java connects an AF_INET6 socket to the v4-mapped address.
    grep -Eq "connect to (127\.0\.0\.1|\[::ffff:127\.0\.0\.1\]):$port recovered after [0-9]+ retr" "$TMP/log" ||
        { sed 's/^/    | /' "$TMP/err" >&2; fail "$name: no 'recovered' log line"; }
    recovered=$(stat_field net.connect.recovered "$pid")
    retries=$(stat_field net.connect.retries "$pid")
    gave_up=$(stat_field net.connect.gave_up "$pid")
    [ "$recovered" = 1 ] || fail "$name: connect recovered=$recovered, expected 1: $(stat_field net.connect "$pid")"
    [ "${retries:-0}" -ge 1 ] || fail "$name: connect retries=$retries, expected >= 1"
    [ "$gave_up" = 0 ] || fail "$name: connect gave_up=$gave_up, expected 0"
    grep -Eq "reshim\[[0-9]+\]: (warn|error)" "$TMP/err" && fail "$name: reshim warned: $(grep -E 'reshim\[[0-9]+\]: (warn|error)' "$TMP/err" | head -n 2)"
    stop_server
    pass "$name with the shim: got the body ${ms} ms after the late server's launch; connect retries=$retries recovered=$recovered"
done
[ ${#skipped[@]} -lt 5 ] || skip "no client installed"
[ ${#skipped[@]} -eq 0 ] || echo "  note: skipped: ${skipped[*]} (see above)"
