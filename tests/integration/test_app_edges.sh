#!/usr/bin/env bash
# Programs that do unusual but legal things around the shim's own thread and
# descriptors (build/bin/app_edges, from app_edges.c) run first without the
# shim, then with it, and must behave the same:
#   1. a SIGALRM handler (every 100 us) calls socket()+close() while its
#      thread hammers malloc/free: 50 runs, none may hang (timeout 5 s
#      each), and the stats thread still starts afterwards (its socket
#      appears once the program idles in poll());
#   2. an app closes every fd above 2 (the shim's too), puts its own
#      eventfds and a pipe on the freed numbers: their values stay intact
#      1.3 s later (one full turn of the stats thread), and a fork child's
#      writes to them succeed;
#   3. a daemon that closed 0, 1 and 2 writes a secret line to fd 2 while a
#      stats client watches: the client never receives it, write(2) fails
#      with EBADF as without the shim, and none of 0, 1, 2 is the shim's;
#   4. errno stays EBADF across successful mallocs (300 x 4 KiB and 2 MiB)
#      when the cgroup files cannot be read (/sys/fs/cgroup hidden under a
#      tmpfs in a private mount namespace; needs root, else this case is
#      skipped);
#   5. an 8 GiB MAP_NORESERVE mapping under a 200M enforced budget succeeds,
#      10 MB of it can be touched, and a 2 MiB malloc and a 4 MiB mmap made
#      while it is there succeed too;
#   6. with a budget (the monitor keeps /proc/self/statm open) an app closes
#      every fd above 2, fills the numbers with pipes and forks: the child's
#      pipe ends are all open and its writes arrive.
# Every case runs even when an earlier one failed; the test fails when any
# did. RESHIM_TEST_SHIM=/path/libreshim.so runs it against another build.
source "$(dirname "$0")/lib.sh"
SHIM=${RESHIM_TEST_SHIM:-$SHIM}

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
APP="$BIN/app_edges"
[ -x "$APP" ] || fail "$APP is missing (make build/bin/app_edges)"
for v in $(env | sed -n 's/^\(RESHIM_[A-Z0-9_]*\)=.*/\1/p'); do unset "$v"; done
unset APP_EDGES_STATS APP_EDGES_CLEAN
export RESHIM_RUN_DIR="$TMP/run"   # private: created by the shim
SIG_RUNS=${SIG_RUNS:-50}
echo "  shim: $SHIM"

# plain OUT ARGS...: the helper without the shim (10 s at most).
plain() { local out=$1; shift; timeout -k 1 10 "$APP" "$@" >"$out" 2>&1; }
# shimmed OUT ARGS...: the helper with the shim (10 s at most); env before it passes through.
shimmed() { local out=$1; shift; timeout -k 1 10 env LD_PRELOAD="$SHIM" "$APP" "$@" >"$out" 2>&1; }
# show FILE: its lines, indented, on stderr.
show() { sed 's/^/      | /' "$1" >&2; }

# ---- 1. a signal handler's socket() while its thread is inside malloc ----
case_signal() {
    plain "$TMP/sig.plain" sigstorm || { show "$TMP/sig.plain"; fail "signal: the storm program fails without the shim"; }
    local i rc start worst=0 ms
    for i in $(seq 1 "$SIG_RUNS"); do
        rc=0
        start=$(date +%s%N)
        APP_EDGES_STATS=1 timeout -k 1 5 env LD_PRELOAD="$SHIM" "$APP" sigstorm >"$TMP/sig.out" 2>&1 || rc=$?
        ms=$((($(date +%s%N) - start) / 1000000))
        [ $ms -gt $worst ] && worst=$ms
        case $rc in
        0) ;;
        124 | 137) show "$TMP/sig.out"; fail "signal: run $i of $SIG_RUNS hung under the shim (killed by timeout after 5 s; without the shim: $(cat "$TMP/sig.plain"))" ;;
        4) show "$TMP/sig.out"; fail "signal: run $i of $SIG_RUNS: the stats thread never started after the storm" ;;
        *) show "$TMP/sig.out"; fail "signal: run $i of $SIG_RUNS exited $rc under the shim (0 without it)" ;;
        esac
    done
    pass "signal: without the shim: $(sed -n 's/^sigstorm: //p' "$TMP/sig.plain");" \
        "with it, $SIG_RUNS runs all exited 0 (slowest ${worst} ms), the stats socket appeared after the storm each time" \
        "(last: $(sed -n 's/^stats: socket .* there \(.*\)/\1/p' "$TMP/sig.out"))"
}

# ---- 2. the app's own eventfds on the numbers the shim had ----
case_eventfd() {
    plain "$TMP/efd.plain" efd || { show "$TMP/efd.plain"; fail "eventfd: the program fails without the shim"; }
    local rc=0
    APP_EDGES_STATS=1 shimmed "$TMP/efd.shim" efd || rc=$?
    [ $rc = 4 ] && { show "$TMP/efd.shim"; fail "eventfd: the stats thread did not start (no socket)"; }
    grep -q "fds above 2 before closing: none" "$TMP/efd.shim" &&
        { show "$TMP/efd.shim"; fail "eventfd: the shim had no descriptors open: the case shows nothing"; }
    [ $rc = 0 ] || { show "$TMP/efd.shim"; fail "eventfd: under the shim the app's own eventfds lost their values or a fork child could not write to them (exit $rc; without the shim: all intact)"; }
    pass "eventfd: $(sed -n 's/^efd: fds above 2 before closing: /shim fds /p' "$TMP/efd.shim") closed by the app;" \
        "$(sed -n 's/^efd: app //p' "$TMP/efd.shim");" \
        "$(sed -n 's/^efd: after 1.3 s: //p' "$TMP/efd.shim"); $(sed -n 's/^efd: fork child //p' "$TMP/efd.shim")" \
        "(as without the shim: $(sed -n 's/^efd: after 1.3 s: //p' "$TMP/efd.plain"))"
}

# ---- 3. a daemon with 0, 1 and 2 closed, and a stats client ----
cat >"$TMP/watcher.py" <<'PYEOF'
import socket, sys, time
import os
sock, go, recvfile, release = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sock)
s.sendall(b"watch 100\n")
buf = b""
try:
    while b"\n" not in buf:          # the first frame: we are being served
        d = s.recv(65536)
        if not d:
            break
        buf += d
except socket.timeout:
    pass
open(go, "w").close()                # the app writes its secret now, 10 x 30 ms
end = time.monotonic() + 1.0
while time.monotonic() < end:
    s.settimeout(max(0.01, end - time.monotonic()))
    try:
        d = s.recv(65536)
    except socket.timeout:
        break
    if not d:
        break
    buf += d
open(recvfile + ".tmp", "wb").write(buf)
os.rename(recvfile + ".tmp", recvfile)
end = time.monotonic() + 10         # still connected while the test looks at the app's fds
while not os.path.exists(release) and time.monotonic() < end:
    time.sleep(0.02)
s.close()
PYEOF

# run_daemon NAME plain|shim: runs the daemon, a watcher (with the shim),
# records the app's fds 0..2 in $TMP/NAME.fds and what the watcher got in
# $TMP/NAME.recv.
run_daemon() {
    local n=$1 out="$TMP/$1.out" go="$TMP/$1.go" quit="$TMP/$1.quit" app pid fd watcher="" i
    if [ "$2" = shim ]; then
        APP_EDGES_STATS=1 timeout -k 1 20 env LD_PRELOAD="$SHIM" "$APP" daemon "$go" "$quit" >"$out" 2>"$TMP/$n.err" &
    else
        timeout -k 1 20 "$APP" daemon "$go" "$quit" >"$out" 2>"$TMP/$n.err" &
    fi
    app=$!
    CHILDREN+=("$app")
    wait_line "$out" '^ready' 8 || { show "$out"; fail "daemon ($2): the app did not get ready"; }
    pid=$(sed -n 's/^ready //p' "$out")
    if [ "$2" = shim ]; then
        "$PY" "$TMP/watcher.py" "$RESHIM_RUN_DIR/$pid.sock" "$go" "$TMP/$n.recv" "$quit" 2>"$TMP/$n.werr" &
        watcher=$!
        CHILDREN+=("$watcher")
        wait_until 5 test -e "$TMP/$n.recv" || true
        [ -e "$TMP/$n.recv" ] || { touch "$quit"; show "$TMP/$n.werr"; fail "daemon: the stats client could not watch $RESHIM_RUN_DIR/$pid.sock"; }
    else
        touch "$go"
        : >"$TMP/$n.recv"
    fi
    wait_line "$out" '^wrote' 8 || { touch "$quit"; show "$out"; fail "daemon ($2): the app did not write its secret"; }
    # The app's fds now, the stats client still connected.
    : >"$TMP/$n.fds"
    for fd in 0 1 2; do
        echo "$fd $(readlink "/proc/$pid/fd/$fd" 2>/dev/null || echo closed)" >>"$TMP/$n.fds"
    done
    ls -l "/proc/$pid/fd" 2>/dev/null | sed -n 's/.* \([0-9]*\) -> \(.*\)/\1=\2/p' | tr '\n' ' ' >"$TMP/$n.all"
    touch "$quit"
    [ -z "$watcher" ] || wait "$watcher" || { show "$TMP/$n.werr"; fail "daemon: the stats client failed"; }
    wait "$app" || { show "$out"; fail "daemon ($2): the app exited non-zero"; }
}

case_daemon() {
    run_daemon dplain plain
    run_daemon dshim shim
    local why=() wrote_plain wrote_shim frames
    wrote_plain=$(sed -n 's/^wrote: //p' "$TMP/dplain.out")
    wrote_shim=$(sed -n 's/^wrote: //p' "$TMP/dshim.out")
    frames=$(tr -cd '\n' <"$TMP/dshim.recv" | wc -c)
    [ "$frames" -gt 0 ] || why+=("the stats client got no watch frame (it was not served)")
    grep -q "app-secret-line" "$TMP/dshim.recv" &&
        why+=("the stats client received the app's stderr: $(grep -a -c app-secret-line "$TMP/dshim.recv") secret line(s)")
    [ "$wrote_shim" = "$wrote_plain" ] || why+=("write(2): '$wrote_shim' under the shim, '$wrote_plain' without it")
    if grep -Eq "socket:|pipe:|anon_inode:" "$TMP/dshim.fds"; then
        why+=("fds 0..2 of the app under the shim: $(tr '\n' ';' <"$TMP/dshim.fds") (without the shim: $(tr '\n' ';' <"$TMP/dplain.fds"))")
    fi
    if [ ${#why[@]} -gt 0 ]; then
        local w
        for w in "${why[@]}"; do echo "    daemon: $w" >&2; done
        fail "daemon: the shim's descriptors took the daemon's 0, 1, 2"
    fi
    pass "daemon: 0, 1, 2 closed: $wrote_shim, as without the shim;" \
        "the watch client got $frames frames and no secret; fds 0..2 under the shim: $(tr '\n' ';' <"$TMP/dshim.fds")" \
        "open: $(cat "$TMP/dshim.all")"
}

# ---- 4. errno after a successful malloc, the cgroup files unreadable ----
# hidden CMD...: CMD in a private mount namespace with a tmpfs over /sys/fs/cgroup.
hidden() { unshare -m sh -c 'mount -t tmpfs reshim-test /sys/fs/cgroup && exec "$@"' sh "$@"; }
case_errno() {
    [ "$(id -u)" = 0 ] || skip "errno: needs root (unshare -m and a tmpfs over /sys/fs/cgroup): case skipped"
    hidden true 2>"$TMP/hide.err" || skip "errno: cannot hide /sys/fs/cgroup ($(head -c 200 "$TMP/hide.err")): case skipped"
    [ -z "$(hidden ls -A /sys/fs/cgroup)" ] || fail "errno: /sys/fs/cgroup still shows files in the namespace"
    hidden timeout -k 1 10 "$APP" errno >"$TMP/errno.plain" 2>&1 || { show "$TMP/errno.plain"; fail "errno: fails without the shim"; }
    hidden timeout -k 1 10 env LD_PRELOAD="$SHIM" "$APP" errno >"$TMP/errno.shim" 2>&1 ||
        { show "$TMP/errno.shim"; fail "errno: under the shim, with /sys/fs/cgroup hidden: $(sed -n 's/^errno: //p' "$TMP/errno.shim") (without the shim: $(sed -n 's/^errno: //p' "$TMP/errno.plain"))"; }
    pass "errno: /sys/fs/cgroup hidden, default budget (auto): $(sed -n 's/^errno: //p' "$TMP/errno.shim"), as without the shim"
}

# ---- 5. MAP_NORESERVE under an enforced budget ----
case_noreserve() {
    plain "$TMP/nr.plain" noreserve || { show "$TMP/nr.plain"; fail "noreserve: fails without the shim"; }
    RESHIM_MEM_BUDGET=200M RESHIM_MEM_POLICY=enforce shimmed "$TMP/nr.shim" noreserve ||
        { show "$TMP/nr.shim"; fail "noreserve: under RESHIM_MEM_BUDGET=200M RESHIM_MEM_POLICY=enforce: $(sed -n 's/^noreserve: //p' "$TMP/nr.shim") (without the shim: $(sed -n 's/^noreserve: //p' "$TMP/nr.plain"))"; }
    pass "noreserve: budget 200M enforced: $(sed -n 's/^noreserve: //p' "$TMP/nr.shim"), as without the shim"
}

# ---- 6. fork while the monitor keeps /proc/self/statm open ----
case_statm() {
    plain "$TMP/statm.plain" statm || { show "$TMP/statm.plain"; fail "statm: fails without the shim"; }
    local rc=0
    RESHIM_MEM_BUDGET=1G shimmed "$TMP/statm.shim" statm || rc=$?
    grep -q "kept statm fd -1" "$TMP/statm.shim" &&
        { show "$TMP/statm.shim"; fail "statm: the shim kept no statm fd open: the case shows nothing"; }
    [ $rc = 0 ] || { show "$TMP/statm.shim"; fail "statm: under RESHIM_MEM_BUDGET=1G the fork child lost the app's pipe ends (exit $rc; without the shim: $(sed -n 's/^statm: \([0-9]* pipes\)/\1/p' "$TMP/statm.plain"))"; }
    pass "statm: budget 1G: $(sed -n 's/^statm: kept statm fd \([0-9]*\);.*/kept statm fd \1/p' "$TMP/statm.shim") closed by the app;" \
        "$(sed -n 's/^statm: \([0-9]* pipes\)/\1/p' "$TMP/statm.shim") (without the shim: $(sed -n 's/^statm: \([0-9]* pipes\)/\1/p' "$TMP/statm.plain"))"
}

FAILED=() SKIPPED=()
run_case() {
    local rc=0
    set +e
    (set -e; trap 'for p in "${CHILDREN[@]:-}"; do [ -z "$p" ] || kill "$p" 2>/dev/null || true; done; wait || true' EXIT; "case_$1")
    rc=$?
    set -e
    case $rc in
    0) ;;
    77) SKIPPED+=("$1") ;;
    *) FAILED+=("$1") ;;
    esac
}
for c in signal eventfd daemon errno noreserve statm; do run_case "$c"; done
[ ${#SKIPPED[@]} -eq 0 ] || echo "  skipped: ${SKIPPED[*]}"
[ ${#FAILED[@]} -eq 0 ] || fail "${#FAILED[@]} of 6 cases failed: ${FAILED[*]}"
