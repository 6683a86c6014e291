#!/usr/bin/env bash
# What the shim maps for itself is never counted as the app's memory
# (shim/sys.h): a python3 that registers a socket in an epoll set makes the
# shim map its table of epoll registrations (epreg.c: one entry per
# possible fd, ~58 MiB of address space, NORESERVE); `mmap_anon_bytes` in
# the stats JSON must be the same as for the same python3 that does not
# register it. That the table was mapped at all is read outside the shim:
# VmSize in /proc/PID/status, larger by the table's size.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
CLIENT="$ROOT/tests/integration/stats_client.py"
RUN="$TMP/run"

cat >"$TMP/app.py" <<'PYEOF'
import os, select, socket, sys, time
time.sleep(0.15)                       # past the shim's 100 ms: the stats thread starts
a, b = socket.socketpair()
ep = select.epoll()
if sys.argv[2] == "epoll":
    ep.register(a.fileno(), select.EPOLLIN)
a.sendall(b"x")
b.recv(1)
print("ready", os.getpid(), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
PYEOF

# measure KIND: writes "MMAP_ANON_BYTES VMSIZE_KB" of a live app.py KIND to $TMP/KIND.fig.
measure() {
    local kind=$1 out=$TMP/app.$1 stop=$TMP/stop.$1 pid i sock
    RESHIM_RUN_DIR=$RUN with_shim "$PY" "$TMP/app.py" "$stop" "$kind" >"$out" 2>"$out.err" &
    CHILDREN+=($!)
    i=0
    until grep -q '^ready ' "$out"; do
        i=$((i + 1)); [ $i -gt 500 ] && { cat "$out.err" >&2; fail "$kind: app.py never got ready"; }
        sleep 0.02
    done
    pid=$(awk '/^ready/ {print $2}' "$out")
    sock=$RUN/$pid.sock
    i=0
    until [ -S "$sock" ]; do i=$((i + 1)); [ $i -gt 250 ] && fail "$kind: no stats socket $sock"; sleep 0.02; done
    local json vm
    json=$("$PY" "$CLIENT" "$sock" stats) || fail "$kind: stats request failed"
    vm=$(awk '/^VmSize:/ {print $2}' "/proc/$pid/status")
    touch "$stop"
    echo "$(printf '%s' "$json" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["mem"]["mmap_anon_bytes"])') $vm" >"$TMP/$kind.fig"
}
measure plain
measure epoll
read -r plain_anon plain_vm <"$TMP/plain.fig"
read -r ep_anon ep_vm <"$TMP/epoll.fig"
for v in plain_anon ep_anon plain_vm ep_vm; do [ -n "${!v}" ] || fail "$v missing"; done
echo "    without the registration: mmap_anon_bytes=$plain_anon VmSize=${plain_vm} kB"
echo "    with it:                  mmap_anon_bytes=$ep_anon VmSize=${ep_vm} kB"
[ $((ep_vm - plain_vm)) -ge $((32 * 1024)) ] ||
    fail "VmSize grew by $((ep_vm - plain_vm)) kB only: the shim's epoll table was not mapped (is epoll_ctl interposed?)"
pass "the epoll registration made the shim map its table: VmSize +$(((ep_vm - plain_vm) / 1024)) MiB"
[ "$ep_anon" = "$plain_anon" ] ||
    fail "mmap_anon_bytes $ep_anon with the registration, $plain_anon without: the shim's own table counted as the app's ($(((ep_anon - plain_anon) >> 20)) MiB)"
pass "mmap_anon_bytes identical with and without it: $ep_anon"
