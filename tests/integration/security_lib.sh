# shellcheck shell=bash disable=SC2034
# security_lib.sh: helpers of the test_security_*.sh tests (sourced after
# lib.sh). Needs root: other uids are played with setpriv.
NOBODY=65534
OTHER=65533
CLIENT_DIR="$ROOT/tests/integration"

security_require_root() {
    [ "$(id -u)" = 0 ] || skip "needs root (other uids are played with setpriv)"
    command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
    [ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
    chmod 711 "$TMP"   # other uids may reach the files they are given
}

# as_uid UID CMD...: runs CMD as that uid and gid, no supplementary groups.
as_uid() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }

# The app: a real python3 that makes a network call after 150 ms (the stats
# thread starts), allocates a little, and waits for its quit file.
security_write_app() {
    cat > "$TMP/app.py" <<'PYEOF'
import os, select, socket, sys, time
time.sleep(0.15)
socket.socket().close()
keep = [bytearray(4096) for _ in range(2000)]   # some heap, for heap/trim
print('ready', os.getpid(), flush=True)
n = 0
while not os.path.exists(sys.argv[1]):
    select.select([], [], [], 0.05)
    n += 1
print('done', len(keep), flush=True)
PYEOF
    chmod 644 "$TMP/app.py"
}

APP_PID=""
# launch_app NAME [PREFIX...]: starts the app under the shim (PREFIX may be
# env VAR=... or setpriv ...), without waiting. Output in $TMP/NAME.out/.err.
launch_app() {
    local name=$1; shift
    rm -f "$TMP/quit.$name"
    "$@" env LD_PRELOAD="$SHIM" "$PY" "$TMP/app.py" "$TMP/quit.$name" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    CHILDREN+=($!)
}
# start_app NAME [PREFIX...]: launch_app, then wait_app.
start_app() { launch_app "$@"; wait_app "$1"; }
# wait_app NAME: until it is ready; sets APP_PID.
wait_app() {
    local name=$1
    local i=0
    while ! grep -q '^ready' "$TMP/$name.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 500 ] && { cat "$TMP/$name.err" >&2; fail "$name: the app did not start"; }
        sleep 0.02
    done
    APP_PID=$(sed -n 's/^ready //p' "$TMP/$name.out")
    echo "$APP_PID" > "$TMP/$name.pid"
}
# stop_app NAME: asks it to quit, waits until it printed "done" and exited
# (the shim removes its socket file in its exit path).
stop_app() {
    touch "$TMP/quit.$1"
    local i=0 pid
    pid=$(cat "$TMP/$1.pid" 2>/dev/null || true)
    while ! grep -q '^done' "$TMP/$1.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 1000 ] && fail "$1: the app did not finish"
        sleep 0.02
    done
    # (a zombie counts as exited: it is the test's child, reaped at the end)
    while [ -n "$pid" ] && [ -e "/proc/$pid" ] && [ "$(awk '/^State/ {print $2}' "/proc/$pid/status" 2>/dev/null)" != Z ]; do
        i=$((i + 1)); [ $i -gt 1000 ] && fail "$1: the app did not exit"
        sleep 0.02
    done
}

# wait_sock PATH: until it is a socket.
wait_sock() { wait_socket "$1" 5; }

# ask WHERE REQUEST [PREFIX...]: prints the answer (or the connect error) of
# one request; REQUEST is a python bytes literal body (escapes allowed).
ask() {
    local where=$1 req=$2; shift 2
    "$@" "$PY" -c '
import ast, sys
sys.path.insert(0, sys.argv[1])
import stats_client as sc
req = ast.literal_eval("b\"" + sys.argv[3] + "\"")
try:
    sys.stdout.write(sc.request(sys.argv[2], req).decode(errors="replace"))
except OSError as e:
    print("connect error: %s" % type(e).__name__)
' "$CLIENT_DIR" "$where" "$req"
}
