#!/usr/bin/env bash
# fork and vfork safety: python3's subprocess uses vfork, and the child closes
# fds through the shim's close/close_range while sharing the parent's memory;
# so does a child of clone(CLONE_VM | CLONE_VFORK) (called through ctypes);
# reshim must not change the parent's view then. A fork child starts with
# fresh counters and its own final stats; the parent keeps its own, and so
# does a fork child of a process that never initialised.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
spawn "$PY" -c "
import socketserver
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            d = self.request.recv(100)
            if not d: return
            self.request.sendall(d)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(('127.0.0.1', $port), Echo).serve_forever()
"
wait_port "$port"

cat > "$TMP/app.py" <<PYEOF
import os, socket, subprocess, sys
s = socket.create_connection(('127.0.0.1', $port))
# A socketpair has no destination; if a vfork child's close_range wiped the
# parent's fd table, the shim would re-examine these fds later and see a new
# "unix:(unnamed)" destination: destinations=2 would give it away.
a, b = socket.socketpair()
for i in range(200):                       # vfork children: close_range, dup2 in the child
    subprocess.run(['/bin/true'], check=True)
import ctypes, signal                      # a clone(CLONE_VM | CLONE_VFORK) child closes its fds
libc = ctypes.CDLL(None, use_errno=True)
CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
cb = CB(lambda _: os.closerange(3, 256) or 0)
stack = ctypes.create_string_buffer(256 * 1024)
libc.clone.argtypes = [CB, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
cpid = libc.clone(cb, ctypes.addressof(stack) + len(stack) - 64, 0x100 | 0x4000 | signal.SIGCHLD, None)
assert cpid > 0 and os.waitpid(cpid, 0)[1] == 0, cpid
s.sendall(b'ping'); assert s.recv(100) == b'ping'
pid = os.fork()
if pid == 0:                               # fork child: its own connection, then exit
    c = socket.create_connection(('127.0.0.1', $port))
    c.sendall(b'child'); assert c.recv(100) == b'child'
    c.close()
    sys.stderr.flush()
    sys.exit(0)
_, status = os.waitpid(pid, 0)
assert status == 0, status
print('child', pid)
for i in range(10):
    s.sendall(b'x%d' % i); s.recv(100)
a.sendall(b'pair'); assert b.recv(100) == b'pair'
s.close()
print('parent done', os.getpid())
PYEOF

RESHIM_LOG=info pushed "$PY" "$TMP/app.py" >"$TMP/out" 2>"$TMP/err" || { cat "$TMP/err"; fail "app failed under the shim"; }
grep -q "parent done" "$TMP/out" || fail "parent did not finish"
parent=$(sed -n 's/parent done //p' "$TMP/out")
child=$(sed -n 's/^child //p' "$TMP/out")
for p in "$parent" "$child"; do echo "    $p: connect $(stat_field net.connect "$p"); send $(stat_field net.send "$p")"; done
# Each its own final stats (the vfork children exec /bin/true, which the shim runs in too).
[ "$(stat_field net.connect.calls "$parent")" = 1 ] || fail "parent connect calls != 1"
[ "$(stat_field net.connect.calls "$child")" = 1 ] || fail "the fork child's connect calls != 1: its counters are not its own"
# 1 + 10 sends, 1 + 10 recvs in the parent (+1 each on the socketpair); the child's 1 each are not added to the parent's.
[ "$(stat_field net.send.calls "$parent")" = 12 ] || fail "parent send calls wrong: $(stat_field net.send "$parent")"
[ "$(stat_field net.recv.calls "$parent")" = 12 ] || fail "parent recv calls wrong: $(stat_field net.recv "$parent")"
[ "$(stat_field net.send.calls "$child")" = 1 ] || fail "child send calls wrong: $(stat_field net.send "$child")"
ndest=$(stat_field net.destinations "$parent" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$ndest" = 1 ] || fail "the parent's fd table changed under vfork or clone children: $(stat_field net.destinations "$parent")"
pass "200 vfork children, a clone(CLONE_VM) child and a fork child: parent and child counters exact"

# A fork child of a process that never initialised (the fork comes before
# any call the shim interposes): the fork handler, installed at load, makes
# the child the owner, and its own first call initialises it; its connect
# and send are its own.
need "$BIN/fork_early"
"$BIN/fork_early" "$port" >/dev/null || fail "fork_early failed without the shim"
pushed "$BIN/fork_early" "$port" >"$TMP/early" 2>"$TMP/early.err" || { cat "$TMP/early.err" >&2; fail "fork_early failed under the shim"; }
early=$(sed -n 's/^child \([0-9]*\) ok$/\1/p' "$TMP/early")
[ -n "$early" ] || fail "fork_early printed no child: $(cat "$TMP/early")"
[ "$(stat_field net.connect.calls "$early")" = 1 ] && [ "$(stat_field net.send.calls "$early")" = 1 ] ||
    fail "the early fork child's counters: connect $(stat_field net.connect "$early"); send $(stat_field net.send "$early")"
pass "a fork child of a process never initialised: its own stats (connect 1, send 1)"

# A fork while another thread makes the process's first call (the library
# may be initialising there): the child's own first call must not wait for
# an init that no thread of its own will finish. 300 processes; the child
# dies of its alarm(5) if it waits.
bad=0
for i in $(seq 300); do with_shim "$BIN/fork_early" race || bad=$((bad + 1)); done
[ "$bad" = 0 ] || fail "$bad of 300 fork children made during init did not end (their first call waited)"
pass "300 forks while another thread initialised the shim: every child ended"

# Without the shim the same program runs the same.
"$PY" "$TMP/app.py" >/dev/null || fail "app fails without the shim"
pass "same program without the shim"
