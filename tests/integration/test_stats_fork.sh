#!/usr/bin/env bash
# The stats socket across fork, vfork and exit, and pushed stats.
#   - A parent (python3 under the shim, its stats thread running) forks: parent
#     and child each answer on their own socket with their own pid and their
#     own figures; the child holds none of the parent's descriptors (a client
#     of the parent sees EOF when the parent exits, though the child lives on).
#   - 200 vfork children (python3 subprocess, /bin/true under the shim) create
#     no socket and leave the parent's socket and figures alone.
#   - RESHIM_PUSH: a receiver gets a datagram every RESHIM_INTERVAL and the
#     final one at exit (with the figures of the app's very last call).
#   - 200 short-lived processes in a row and 200 more 20 at a time (/bin/true,
#     which never starts the thread), and 20 python3 -c pass: each delivers
#     exactly one final datagram; none is lost.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
CLIENT_DIR="$ROOT/tests/integration"
RUN="$TMP/run"
port=$(free_port)
spawn "$PY" -c "
import socketserver
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.recv(100)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(('127.0.0.1', $port), Echo).serve_forever()
"
wait_port "$port"

has_line() { grep -q "$2" "$1"; }
ask() {  # ask WHERE REQUEST: the answer of one request
    "$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import stats_client as sc
sys.stdout.write(sc.request(sys.argv[2], sys.argv[3]).decode())' "$CLIENT_DIR" "$1" "$2"
}
field() {  # field JSON EXPR: a figure of a stats answer, e.g. field "$st" "['net']['connect']['calls']"
    "$PY" -c "import json, sys; print(json.loads(sys.argv[1])$2)" "$1"
}

# ---- fork and vfork ----
cat > "$TMP/fork.py" <<PYEOF
import os, select, socket, subprocess, sys, time
D = sys.argv[1]
def wait(name):
    while not os.path.exists(os.path.join(D, name)):
        select.select([], [], [], 0.02)
def connects(n):
    for i in range(n):
        s = socket.socket(); s.connect(('127.0.0.1', $port)); s.close()
time.sleep(0.15)
connects(3)                            # starts the parent's stats thread
print('parent', os.getpid(), flush=True)
wait('go-fork')
pid = os.fork()
if pid == 0:
    time.sleep(0.15)                   # the child's own 100 ms, then its own thread
    connects(2)
    print('child', os.getpid(), flush=True)
    wait('quit-child')
    sys.exit(0)
wait('go-vfork')
for i in range(200):
    subprocess.run(['/bin/true'], check=True)
print('vfork done', flush=True)
wait('quit-parent')
PYEOF

RESHIM_RUN_DIR="$RUN" env LD_PRELOAD="$SHIM" "$PY" "$TMP/fork.py" "$TMP" >"$TMP/fork.out" 2>"$TMP/fork.err" &
app=$!
CHILDREN+=($app)
wait_until 15 has_line "$TMP/fork.out" '^parent' || { cat "$TMP/fork.err" >&2; fail "the app did not start"; }
parent=$(sed -n 's/^parent //p' "$TMP/fork.out")
wait_until 10 test -S "$RUN/$parent.sock" || fail "no parent socket"
# A client of the parent across the fork: a watcher that logs each frame's pid, and EOF.
"$PY" -c '
import json, sys, time
sys.path.insert(0, sys.argv[1]); import stats_client as sc
s = sc.connect(sys.argv[2]); s.sendall(b"watch 50\n"); s.settimeout(None)
out = open(sys.argv[3], "w", buffering=1); buf = b""
while True:
    d = s.recv(65536)
    if not d:
        out.write("EOF %.3f\n" % time.time()); break
    buf += d
    while b"\n" in buf:
        line, buf = buf.split(b"\n", 1)
        out.write("frame %d\n" % json.loads(line)["pid"])
' "$CLIENT_DIR" "$RUN/$parent.sock" "$TMP/watcher" &
watcher=$!
CHILDREN+=($watcher)
wait_until 5 has_line "$TMP/watcher" '^frame' || fail "the watcher got no frame"
touch "$TMP/go-fork"
wait_until 10 has_line "$TMP/fork.out" '^child' || { cat "$TMP/fork.err" >&2; fail "no fork child"; }
child=$(sed -n 's/^child //p' "$TMP/fork.out")
CHILDREN+=($child) # not the test's child: ended by the cleanup too, should the test fail
wait_until 10 test -S "$RUN/$child.sock" || { ls -la "$RUN" >&2; fail "no socket of the fork child $child"; }
sp=$(ask "$RUN/$parent.sock" stats); sc=$(ask "$RUN/$child.sock" stats)
[ "$(field "$sp" "['pid']")" = "$parent" ] || fail "the parent's socket answers for pid $(field "$sp" "['pid']")"
[ "$(field "$sc" "['pid']")" = "$child" ] || fail "the child's socket answers for pid $(field "$sc" "['pid']")"
[ "$(field "$sp" "['net']['connect']['calls']")" = 3 ] || fail "parent connect calls $(field "$sp" "['net']['connect']['calls']") != 3"
[ "$(field "$sc" "['net']['connect']['calls']")" = 2 ] || fail "child connect calls $(field "$sc" "['net']['connect']['calls']") != 2 (fresh counters)"
up_p=$(field "$sp" "['uptime_s']"); up_c=$(field "$sc" "['uptime_s']")
"$PY" -c "import sys; sys.exit(not (float('$up_c') < float('$up_p')))" || fail "child uptime $up_c not below the parent's $up_p"
pass "parent $parent and fork child $child answer on their own sockets: own pid, own connect calls (3 and 2), child uptime $up_c s < parent $up_p s"

inode=$(awk -v p="$RUN/$parent.sock" '$8 == p { print $7 }' /proc/net/unix | head -n 1)
[ -n "$inode" ] || fail "the parent's listener is not in /proc/net/unix"
if ls -l /proc/"$child"/fd 2>/dev/null | grep -q "socket:\[$inode\]"; then fail "the fork child holds the parent's listener"; fi
ls -l /proc/"$parent"/fd | grep -q "socket:\[$inode\]" || fail "the parent lost its listener"
grep -v "^frame $parent\$" "$TMP/watcher" && fail "the parent's watcher got frames of another pid"
pass "the child closed its copy of the parent's listener (inode $inode), the parent kept it; the watcher gets only the parent's frames"

# 200 vfork children.
touch "$TMP/go-vfork"
extra=0
while ! grep -q '^vfork done' "$TMP/fork.out"; do
    n=$(ls "$RUN" | grep -cv -e "^$parent.sock\$" -e "^$child.sock\$" || true)
    [ "$n" -gt "$extra" ] && extra=$n
    kill -0 "$app" 2>/dev/null || { cat "$TMP/fork.err" >&2; fail "the parent died during the vfork children"; }
    sleep 0.01
done
[ "$extra" = 0 ] || fail "$extra other sockets appeared during the vfork children"
# Abstract sockets of the app's own children only: other tests' processes
# (run beside this one) have theirs.
for p in $(grep -oE "@reshim-[0-9]+/[0-9]+" /proc/net/unix | sed 's|.*/||' | sort -u); do
    [ "$p" = "$parent" ] || [ "$p" = "$child" ] && continue
    pp=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null)
    [ -n "$pp" ] && { [ "$pp" = "$parent" ] || [ "$pp" = "$app" ]; } &&
        fail "an abstract stats socket appeared: pid $p, a child of the app"
done
[ "$(ls "$RUN" | sort | tr '\n' ' ')" = "$(printf '%s\n' "$parent.sock" "$child.sock" | sort | tr '\n' ' ')" ] || fail "run dir: $(ls "$RUN")"
sp2=$(ask "$RUN/$parent.sock" stats)
[ "$(field "$sp2" "['pid']")" = "$parent" ] || fail "after the vfork children the parent's socket answers for $(field "$sp2" "['pid']")"
[ "$(field "$sp2" "['net']['connect']['calls']")" = 3 ] || fail "after the vfork children parent connect calls $(field "$sp2" "['net']['connect']['calls']")"
[ "$(field "$sp2" "['net']['destinations'].__len__()")" = "$(field "$sp" "['net']['destinations'].__len__()")" ] || fail "the parent's destinations changed"
pass "200 vfork children (subprocess.run /bin/true): no other socket ever in the run dir, no abstract one; the parent still answers with pid $parent, 3 connects, same destinations"

# The parent exits while the child lives: its socket goes, its watcher sees EOF.
touch "$TMP/quit-parent"
wait "$app" || { cat "$TMP/fork.err" >&2; fail "the parent failed"; }
[ -e "$RUN/$parent.sock" ] && fail "the parent's socket is left behind"
wait_until 3 has_line "$TMP/watcher" '^EOF' || fail "the parent's watcher saw no EOF at the parent's exit (the child holds the connection?)"
kill -0 "$child" 2>/dev/null || fail "the child is gone too early"
[ "$(field "$(ask "$RUN/$child.sock" stats)" "['pid']")" = "$child" ] || fail "the child stopped answering after the parent exited"
touch "$TMP/quit-child"
wait_until 5 sh -c "! kill -0 $child" || fail "the child did not exit"
wait_until 2 sh -c "[ ! -e '$RUN/$child.sock' ]" || fail "the child's socket is left behind"
pass "parent exited: its socket removed and its watcher saw EOF while the child lived on; then the child's socket removed at its exit"

# ---- pushed stats ----
cat > "$TMP/recv.py" <<'PYEOF'
import os, socket, sys
path, out, stop = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.05)
f = open(out, 'wb')
open(out + '.ready', 'w').close()
while True:
    try:
        d = s.recv(1 << 20)
    except socket.timeout:
        if os.path.exists(stop):
            break
        continue
    f.write(d if d.endswith(b'\n') else d + b'\n')
    f.flush()
PYEOF
RECV_N=0
start_recv() {  # start_recv: a receiver at $PUSH writing $PUSHLOG
    RECV_N=$((RECV_N + 1))
    PUSH="$TMP/push$RECV_N.sock"; PUSHLOG="$TMP/push$RECV_N.log"
    "$PY" "$TMP/recv.py" "$PUSH" "$PUSHLOG" "$TMP/stop$RECV_N" &
    RECV_PID=$!
    CHILDREN+=($RECV_PID)
    wait_until 5 test -e "$PUSHLOG.ready" || fail "the receiver did not start"
}
stop_recv() { touch "$TMP/stop$RECV_N"; wait "$RECV_PID"; }

start_recv
cat > "$TMP/push.py" <<PYEOF
import os, select, socket, time
def connect():
    s = socket.socket(); s.connect(('127.0.0.1', $port)); s.close()
time.sleep(0.15)
for i in range(11):                   # 11 connects over 1 s (the first starts the thread)
    connect(); time.sleep(0.1)
select.select([], [], [], 0.3)        # quiet: periodic datagrams show 11
connect()                             # the 12th, then exit at once: only the final datagram has it
print(os.getpid(), flush=True)
PYEOF
RESHIM_PUSH="$PUSH" RESHIM_INTERVAL=100ms RESHIM_RUN_DIR="$RUN" with_shim "$PY" "$TMP/push.py" >"$TMP/push.out" 2>"$TMP/push.err" ||
    { cat "$TMP/push.err" >&2; fail "the push app failed"; }
pp=$(cat "$TMP/push.out")
# The final datagram (the only one with the 12th connect) reached the receiver.
final_in() { "$PY" -c 'import json,sys; sys.exit(not any(r["pid"] == int(sys.argv[2]) and r["net"]["connect"]["calls"] == 12 for r in map(json.loads, open(sys.argv[1], "rb"))))' "$PUSHLOG" "$pp" 2>/dev/null; }
wait_until 5 final_in || fail "no final datagram from $pp: $(cat "$PUSHLOG")"
stop_recv
"$PY" - "$PUSHLOG" "$pp" <<'PYEOF' || fail "pushed datagrams"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1], 'rb')]
pid = int(sys.argv[2])
mine = [r for r in rows if r['pid'] == pid]
if len(mine) != len(rows): sys.exit('datagrams of other pids: %r' % {r['pid'] for r in rows})
times = [r['time_s'] for r in mine]
if any(b <= a for a, b in zip(times, times[1:])): sys.exit('time_s not increasing: %r' % times)
calls = [r['net']['connect']['calls'] for r in mine]
for r in mine:
    for k in ('pid', 'comm', 'version', 'uptime_s', 'net', 'mem'):
        if k not in r: sys.exit('a datagram without %s' % k)
periodic = [r for r in mine if r['net']['connect']['calls'] <= 11]
if len(periodic) < 8: sys.exit('only %d periodic datagrams in ~1.3 s at 100 ms: calls %r' % (len(periodic), calls))
gaps = [b - a for a, b in zip(times[:len(periodic)], times[1:len(periodic)])]
if not 0.07 < sum(gaps) / len(gaps) < 0.2: sys.exit('periodic datagrams every %.3f s' % (sum(gaps) / len(gaps)))
if calls[-1] != 12: sys.exit('the last datagram shows %d connects, not 12 (the final one is missing): %r' % (calls[-1], calls))
if calls.count(12) > 2: sys.exit('%d datagrams after the last connect: %r' % (calls.count(12), calls))
print('  ok: RESHIM_PUSH, RESHIM_INTERVAL=100ms: %d periodic datagrams (mean gap %.0f ms, time_s increasing), '
      'then the final one at exit with the 12th connect (connect calls %s)'
      % (len(periodic), 1000 * sum(gaps) / len(gaps), calls))
PYEOF

# exactly_one LOG N COMM PIDS: N datagrams, one per process started (PIDS
# lists their pids: a pid the kernel reused during the run is there twice,
# and so are its datagrams), all of COMM.
exactly_one() {
    "$PY" - "$1" "$2" "$3" "$4" <<'PYEOF'
import collections, json, sys
rows = [json.loads(l) for l in open(sys.argv[1], 'rb')]
n, comm = int(sys.argv[2]), sys.argv[3]
want = collections.Counter(int(l) for l in open(sys.argv[4]))
# A process that lives past 100 ms (a python3 on a loaded machine) starts
# its stats thread, which pushes at once and then every interval (1 s): those
# periodic datagrams are left out; each process must send its exit one.
rows = [r for r in rows if not (r['uptime_s'] >= 0.1 and
        any(q['pid'] == r['pid'] and q['uptime_s'] > r['uptime_s'] for q in rows))]
per = collections.Counter(r['pid'] for r in rows)
dups = {p: c for p, c in per.items() if c > want[p]}
if dups: sys.exit('pids with more datagrams than processes: %r' % dups)
if len(rows) != n or sum(want.values()) != n: sys.exit('%d datagrams from %d processes' % (len(rows), sum(want.values())))
missing = {p: c - per[p] for p, c in want.items() if per[p] < c}
if missing: sys.exit('pids without their datagram: %r' % missing)
bad = [r['comm'] for r in rows if r['comm'] != comm]
if bad: sys.exit('datagrams of comm %r' % bad[:5])
print('%d' % len(rows))
PYEOF
}

start_recv
: >"$TMP/pids"
for i in $(seq 200); do env RESHIM_PUSH="$PUSH" LD_PRELOAD="$SHIM" /bin/true & echo $! >>"$TMP/pids"; wait $!; done
stop_recv
got=$(exactly_one "$PUSHLOG" 200 true "$TMP/pids") || fail "200 /bin/true in a row: $got"
pass "200 /bin/true in a row with RESHIM_PUSH: $got datagrams, exactly one from each process"

start_recv
: >"$TMP/pids"
for r in $(seq 10); do
    batch=()
    for i in $(seq 20); do env RESHIM_PUSH="$PUSH" LD_PRELOAD="$SHIM" /bin/true & batch+=($!); echo $! >>"$TMP/pids"; done
    wait "${batch[@]}"
done
stop_recv
got=$(exactly_one "$PUSHLOG" 200 true "$TMP/pids") || fail "200 /bin/true, 20 at a time: $got"
pass "200 /bin/true 20 at a time (a collector queue of $(cat /proc/sys/net/unix/max_dgram_qlen)): $got datagrams, exactly one each, none lost"

start_recv
: >"$TMP/pids"
for i in $(seq 20); do env RESHIM_PUSH="$PUSH" LD_PRELOAD="$SHIM" "$PY" -c pass & echo $! >>"$TMP/pids"; wait $!; done
stop_recv
got=$(exactly_one "$PUSHLOG" 20 python3 "$TMP/pids") || fail "20 python3 -c pass: $got"
pass "20 python3 -c pass: one final datagram each"
