#!/usr/bin/env bash
# alone: it works in the shared run directories (/tmp/reshim-UID, abstract names) that other tests' processes use
# Who may reach the stats socket, and where it is made. Needs root (other
# uids are played with setpriv).
#   - A run directory that is a symlink, owned by another uid, mode 0755,
#     not a directory, or not creatable, and a socket path too long for
#     sun_path: each refused with one warning line naming the path and the
#     reason; the app runs on and answers on @reshim-<uid>/<pid>.
#   - A symlink or a file planted at <pid>.sock is never followed or removed
#     (abstract instead); a stale socket there is replaced.
#   - SO_PEERCRED: on the abstract socket (reachable by anyone in the network
#     namespace) a client of another uid gets {"error":"permission denied"};
#     the same uid and root are served. Through the 0700 run directory another
#     uid cannot even connect.
#   - With umask 000 the directory is still created 0700 and the socket 0600.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || skip "needs root (other uids are played with setpriv)"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
CLIENT_DIR="$ROOT/tests/integration"
NOBODY=65534
OTHER=65533
chmod 711 "$TMP"   # other uids may reach the files they are given below

cat > "$TMP/app.py" <<'PYEOF'
import os, select, socket, sys, time
time.sleep(0.15)                  # past 100 ms: the next network call starts the thread
socket.socket().close()
print('ready', os.getpid(), flush=True)
while not os.path.exists(sys.argv[1]):
    select.select([], [], [], 0.05)
PYEOF
chmod 644 "$TMP/app.py"

# as_uid UID CMD...: runs CMD as that uid and gid, no groups.
as_uid() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
AS_NOBODY=(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups)  # for start_app: a command, not a function

APP_PID=""; APP_N=0
# start_app NAME [COMMAND PREFIX...]: starts the app (as its own process: $! is the app), sets APP_PID; logs in $TMP/NAME.err.
start_app() {
    local name=$1; shift
    APP_N=$((APP_N + 1))
    rm -f "$TMP/quit.$name"
    "$@" env LD_PRELOAD="$SHIM" "$PY" "$TMP/app.py" "$TMP/quit.$name" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    CHILDREN+=($!)
    local i=0
    while ! grep -q '^ready' "$TMP/$name.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 300 ] && { cat "$TMP/$name.err" >&2; fail "$name: the app did not start"; }
        sleep 0.02
    done
    APP_PID=$(sed -n 's/^ready //p' "$TMP/$name.out")
}
stop_app() { touch "$TMP/quit.$1"; }

# ask WHERE REQUEST [as_uid UID]: prints the answer (or the connect error) of one request.
ask() {
    local where=$1 req=$2; shift 2
    "$@" "$PY" -c '
import sys
sys.path.insert(0, sys.argv[1])
import stats_client as sc
try:
    sys.stdout.write(sc.request(sys.argv[2], sys.argv[3]).decode())
except OSError as e:
    print("connect error: %s" % type(e).__name__)
' "$CLIENT_DIR" "$where" "$req"
}
# warning NAME: the one stats-socket warning of that app.
warning() { grep "stats socket" "$TMP/$1.err" || true; }

# ---- run directories that are refused ----
mkdir -m 700 "$TMP/real"; ln -s "$TMP/real" "$TMP/link"
mkdir -m 700 "$TMP/theirs"; chown "$NOBODY:$NOBODY" "$TMP/theirs"
mkdir -m 755 "$TMP/open"
echo x > "$TMP/file"
long="$TMP/$(printf 'd%.0s' $(seq 100))"; mkdir -m 700 "$long"
cases=(
    "symlink|env RESHIM_RUN_DIR=$TMP/link|$TMP/link|it is a symbolic link"
    "theirs|env RESHIM_RUN_DIR=$TMP/theirs|$TMP/theirs|it is owned by uid $NOBODY, not by uid 0"
    "open|env RESHIM_RUN_DIR=$TMP/open|$TMP/open|its mode 0755 lets other users in (0700 is required)"
    "file|env RESHIM_RUN_DIR=$TMP/file|$TMP/file|it is not a directory"
    "noparent|env RESHIM_RUN_DIR=$TMP/none/deeper|$TMP/none/deeper|it cannot be created (ENOENT)"
    "toolong|env -u RESHIM_RUN_DIR XDG_RUNTIME_DIR=$long|$long/reshim|the socket path would not fit a unix socket address"
)
for c in "${cases[@]}"; do
    IFS='|' read -r name envs dir reason <<<"$c"
    # shellcheck disable=SC2086
    start_app "$name" $envs
    wait_abstract 0 "$APP_PID" || { cat "$TMP/$name.err" >&2; fail "$name: no abstract socket @reshim-0/$APP_PID"; }
    w=$(warning "$name")
    [ "$(printf '%s\n' "$w" | grep -c .)" = 1 ] || fail "$name: expected one warning line, got: $w"
    case "$w" in
    *"reshim[$APP_PID]: warn: stats socket: not using the run directory $dir: $reason"*"serving on the abstract socket @reshim-0/$APP_PID instead"*) ;;
    *) fail "$name: warning line does not name $dir and '$reason': $w" ;;
    esac
    ans=$(ask "@reshim-0/$APP_PID" stats)
    case "$ans" in "{\"pid\":$APP_PID,"*) ;; *) fail "$name: the abstract socket answered: ${ans:0:100}" ;; esac
    stop_app "$name"
    echo "    $name: $(printf '%s' "$w" | sed 's/^reshim\[[0-9]*\]: //')"
done
[ -z "$(ls -A "$TMP/real")" ] || fail "something was created through the symlink: $(ls "$TMP/real")"
[ -z "$(ls -A "$TMP/theirs")" ] && [ -z "$(ls -A "$TMP/open")" ] || fail "a socket was made in a refused directory"
[ "$(stat -c %a "$TMP/open")" = 755 ] || fail "the shim changed the mode of a directory it does not own"
[ ! -e "$TMP/none" ] || fail "the shim created missing parents"
pass "run dir refused (symlink, another uid's, 0755, a file, no parent, path too long): one warning each naming it and why; served on @reshim-0/<pid>; nothing made through the symlink or in the refused dirs"

# ---- things planted at <pid>.sock ----
RUN="$TMP/run"; mkdir -m 700 "$RUN"
echo precious > "$TMP/victim"
# The pid is known in advance: sh plants them, then execs the app (same pid).
plant() {  # plant NAME SHELL-SNIPPET (with $D the run dir and $$ the future pid)
    local name=$1 snippet=$2
    rm -f "$TMP/quit.$name"
    D="$RUN" sh -c "$snippet; exec env LD_PRELOAD='$SHIM' RESHIM_RUN_DIR='$RUN' '$PY' '$TMP/app.py' '$TMP/quit.$name'" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    CHILDREN+=($!)
    local i=0
    while ! grep -q '^ready' "$TMP/$name.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 300 ] && { cat "$TMP/$name.err" >&2; fail "$name: the app did not start"; }
        sleep 0.02
    done
    APP_PID=$(sed -n 's/^ready //p' "$TMP/$name.out")
}
plant symlinked 'ln -s "'"$TMP"'/victim" "$D/$$.sock"'
wait_abstract 0 "$APP_PID" || { cat "$TMP/symlinked.err" >&2; fail "planted symlink: no abstract socket"; }
[ -L "$RUN/$APP_PID.sock" ] || fail "the planted symlink was removed"
[ "$(cat "$TMP/victim")" = precious ] && [ -f "$TMP/victim" ] || fail "the symlink's target was changed"
grep -q "$RUN/$APP_PID.sock exists and is not a socket (left alone)" "$TMP/symlinked.err" || fail "planted symlink: no warning: $(cat "$TMP/symlinked.err")"
stop_app symlinked; wait_until 10 gone "$APP_PID" || fail "symlinked: the app did not exit"
[ -L "$RUN/$APP_PID.sock" ] && [ "$(cat "$TMP/victim")" = precious ] || fail "the symlink or its target changed at exit"
rm -f "$RUN/$APP_PID.sock"
plant dangling 'ln -s "'"$TMP"'/made-through-link" "$D/$$.sock"'
wait_abstract 0 "$APP_PID" || fail "planted dangling symlink: no abstract socket"
[ ! -e "$TMP/made-through-link" ] || fail "a socket was made through a dangling symlink"
stop_app dangling; rm -f "$RUN/$APP_PID.sock"
plant planted-file 'echo mine > "$D/$$.sock"'
wait_abstract 0 "$APP_PID" || fail "planted file: no abstract socket"
[ "$(cat "$RUN/$APP_PID.sock")" = mine ] || fail "the planted file was changed"
stop_app planted-file; rm -f "$RUN/$APP_PID.sock"
pass "a symlink (to a file, dangling) or a file at <pid>.sock: never followed, never removed; abstract socket instead, with a warning"

plant stale "'$PY' -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \"\$D/\$\$.sock\""
i=0; while ! ask "$RUN/$APP_PID.sock" version 2>/dev/null | grep -q '^reshim'; do
    i=$((i + 1)); [ $i -gt 250 ] && { cat "$TMP/stale.err" >&2; fail "stale socket: not replaced"; }; sleep 0.02
done
[ -z "$(warning stale)" ] || fail "stale socket: a warning: $(warning stale)"
stop_app stale
pass "a stale socket left at <pid>.sock by a dead process: replaced, served there"

# ---- peer credentials ----
start_app refusedir env RESHIM_RUN_DIR="$TMP/link"      # abstract: anyone can connect
wait_abstract 0 "$APP_PID" || fail "no abstract socket"
ans=$(ask "@reshim-0/$APP_PID" stats as_uid $NOBODY)
[ "$ans" = '{"error":"permission denied"}' ] || fail "uid $NOBODY on root's abstract socket: ${ans:0:100}"
ans=$(ask "@reshim-0/$APP_PID" version)
[ "$ans" = "reshim $VERSION" ] || fail "root on its own abstract socket: $ans"
stop_app refusedir
pass "abstract socket of a root app: uid $NOBODY gets {\"error\":\"permission denied\"} (SO_PEERCRED), root is served"

start_app nobody-abs "${AS_NOBODY[@]}" env RESHIM_RUN_DIR=/nonexistent/run
wait_abstract $NOBODY "$APP_PID" || { cat "$TMP/nobody-abs.err" >&2; fail "no @reshim-$NOBODY/$APP_PID"; }
[ "$(ask "@reshim-$NOBODY/$APP_PID" version as_uid $NOBODY)" = "reshim $VERSION" ] || fail "uid $NOBODY on its own abstract socket"
[ "$(ask "@reshim-$NOBODY/$APP_PID" version)" = "reshim $VERSION" ] || fail "root on uid $NOBODY's abstract socket"
ans=$(ask "@reshim-$NOBODY/$APP_PID" version as_uid $OTHER)
[ "$ans" = '{"error":"permission denied"}' ] || fail "uid $OTHER on uid $NOBODY's abstract socket: $ans"
stop_app nobody-abs
pass "abstract socket of a uid $NOBODY app: the same uid and root are served, uid $OTHER is refused"

mkdir -m 700 "$TMP/nobody"; chown $NOBODY:$NOBODY "$TMP/nobody"
start_app nobody-path "${AS_NOBODY[@]}" env RESHIM_RUN_DIR="$TMP/nobody/run"
S="$TMP/nobody/run/$APP_PID.sock"
i=0; while [ ! -S "$S" ]; do i=$((i + 1)); [ $i -gt 250 ] && { cat "$TMP/nobody-path.err" >&2; fail "no $S"; }; sleep 0.02; done
[ "$(stat -c '%u %a' "$TMP/nobody/run")" = "$NOBODY 700" ] || fail "uid $NOBODY's run dir: $(stat -c '%u %a' "$TMP/nobody/run")"
[ "$(stat -c '%u %a' "$S")" = "$NOBODY 600" ] || fail "uid $NOBODY's socket: $(stat -c '%u %a' "$S")"
[ "$(ask "$S" version as_uid $NOBODY)" = "reshim $VERSION" ] || fail "uid $NOBODY on its own socket"
[ "$(ask "$S" version)" = "reshim $VERSION" ] || fail "root on uid $NOBODY's socket"
ans=$(ask "$S" version as_uid $OTHER)
[ "$ans" = "connect error: PermissionError" ] || fail "uid $OTHER reached uid $NOBODY's socket: $ans"
stop_app nobody-path
pass "socket of a uid $NOBODY app in its own 0700 dir (socket 0600): the same uid and root are served; uid $OTHER cannot connect"

# ---- umask 000 ----
RUN4="$TMP/run-umask"
start_app umask sh -c 'umask 000; exec "$@"' sh env RESHIM_RUN_DIR="$RUN4"
i=0; while [ ! -S "$RUN4/$APP_PID.sock" ]; do i=$((i + 1)); [ $i -gt 250 ] && fail "umask 000: no socket"; sleep 0.02; done
[ "$(stat -c %a "$RUN4")" = 700 ] && [ "$(stat -c %a "$RUN4/$APP_PID.sock")" = 600 ] ||
    fail "umask 000: dir $(stat -c %a "$RUN4"), socket $(stat -c %a "$RUN4/$APP_PID.sock")"
stop_app umask
pass "umask 000: run dir created 0700, socket 0600"
