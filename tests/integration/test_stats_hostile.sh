#!/usr/bin/env bash
# alone: it compares the app's round-trip rate quiet and under hostile clients
# Hostile clients of the stats socket never delay the app and never starve
# other clients. The app (python3 under the shim) does a tight loop of TCP
# round trips to a local echo peer and reports its rate every 250 ms; its
# rate is measured quiet, under hostile clients, and quiet again:
#   - a client that sends half a request and then nothing (closed after 30 s),
#   - a watcher at 10 ms that never reads (closed 10 s after it stopped reading),
#   - 100 connections at once: the ones past 32 get "too many clients"; once
#     they go, a normal client is served at once,
#   - 1 MB lines, again and again: {"error":"request too long"}, then closed,
#   - a slow writer (one byte every 100 ms), connection churn, and a reading
#     watcher at 10 ms, while a normal client asks for stats every 50 ms.
# Fails only when the app stalls (rate under hostile clients below 50 % of
# the slower quiet window, or a gap over 1 s between two round trips), never on small
# differences: the machine is noisy.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
RUN="$TMP/run"
port=$(free_port)
spawn "$PY" -c "
import socket, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', $port)); srv.listen(16)
def echo(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        d = c.recv(4096)
        if not d: return
        c.sendall(d)
while True:
    c, _ = srv.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"
wait_port "$port"

cat > "$TMP/app.py" <<PYEOF
import os, socket, sys, time
time.sleep(0.15)     # the shim's thread starts at a network call or a wait after 100 ms
s = socket.create_connection(('127.0.0.1', $port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.settimeout(5)      # each recv waits in poll() first, as most clients do
msg = b'x' * 64
out = open(sys.argv[1], 'w', buffering=1)
print('ready', os.getpid(), flush=True)
n, maxgap = 0, 0.0
last = report = time.monotonic()
while True:
    s.sendall(msg)
    got = 0
    while got < 64:
        got += len(s.recv(64 - got))
    now = time.monotonic()
    if now - last > maxgap:
        maxgap = now - last
    last = now
    n += 1
    if now - report >= 0.25:
        out.write('%.3f %.3f %d %.4f\n' % (time.time(), now - report, n, maxgap))
        n, maxgap, report = 0, 0.0, now
        if os.path.exists(sys.argv[2]):
            break
PYEOF

RESHIM_RUN_DIR="$RUN" env LD_PRELOAD="$SHIM" "$PY" "$TMP/app.py" "$TMP/rate" "$TMP/quit" >"$TMP/out" 2>"$TMP/err" &
app=$!
CHILDREN+=($app)
wait_until 10 grep -q '^ready' "$TMP/out" 2>/dev/null || true
pid=$(sed -n 's/^ready //p' "$TMP/out")
[ -n "$pid" ] || { cat "$TMP/err" >&2; fail "the app did not start"; }
SOCK="$RUN/$pid.sock"
wait_until 10 test -S "$SOCK" || true
[ -S "$SOCK" ] || { cat "$TMP/err" >&2; fail "no stats socket $SOCK"; }

cat > "$TMP/hostile.py" <<'PYEOF'
import json, os, select, socket, sys, threading, time
sys.path.insert(0, sys.argv[1])
import stats_client as sc
sock, ratefile, app_pid = sys.argv[2], sys.argv[3], int(sys.argv[4])

def stats_thread_cpu():
    """CPU seconds used so far by the app's reshim-stats thread."""
    tick = os.sysconf('SC_CLK_TCK')
    for tid in os.listdir('/proc/%d/task' % app_pid):
        try:
            if open('/proc/%d/task/%s/comm' % (app_pid, tid)).read().strip() == 'reshim-stats':
                f = open('/proc/%d/task/%s/stat' % (app_pid, tid)).read().rsplit(')', 1)[1].split()
                return (int(f[11]) + int(f[12])) / tick
        except OSError:
            pass
    return 0.0

def my_cpu():
    t = os.times()
    return t.user + t.system

def fail(msg):
    print('  FAIL: ' + msg, file=sys.stderr, flush=True)
    os._exit(1)

def ok(msg):
    print('  ok: ' + msg, flush=True)

def recv_some(s, timeout):
    s.settimeout(timeout)
    try:
        return s.recv(65536)
    except socket.timeout:
        return None
    except ConnectionResetError:
        return b''

def wait_eof(s, timeout):
    """True once s reaches EOF (or a reset) within timeout; reads what comes before."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            d = s.recv(1 << 20)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if not d:
            return True
    return False

windows = {}
def window(name, start, end):
    windows[name] = (start, end)

# ---- quiet ----
time.sleep(1.0)
t = time.time(); time.sleep(3.0); window('quiet before', t, time.time())

# ---- hostile ----
hostile_start = time.time()
cpu0, mine0, wall0 = stats_thread_cpu(), my_cpu(), time.monotonic()
stop = threading.Event()
silent = sc.connect(sock); silent.sendall(b'sta')                 # half a request, then nothing
silent_t0 = time.monotonic()
deaf = sc.connect(sock); deaf.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
deaf.sendall(b'watch 10\n')                                        # never reads
deaf_t0 = time.monotonic()
closed_at = {}
def hup_watch():
    """When the server closes each (POLLHUP; the client never reads)."""
    p = select.poll()
    names = {silent.fileno(): ('silent', silent_t0), deaf.fileno(): ('deaf', deaf_t0)}
    for fd in names:
        p.register(fd, select.POLLHUP)
    while len(closed_at) < len(names):
        for fd, ev in p.poll(50):
            if ev & (select.POLLHUP | select.POLLERR) and names[fd][0] not in closed_at:
                closed_at[names[fd][0]] = time.monotonic() - names[fd][1]
                p.unregister(fd)
threading.Thread(target=hup_watch, daemon=True).start()
time.sleep(0.3)

# 100 connections at once: 30 slots are free (silent and deaf hold 2 of 32).
many = []
for i in range(100):
    many.append(sc.connect(sock))
refused = accepted = 0
for s in many:
    d = recv_some(s, 2.0 if refused + accepted == 0 else 0.05)
    if d is None:
        accepted += 1
    elif d == b'{"error":"too many clients"}\n':
        refused += 1
    else:
        fail('one of 100 connections got %r' % d[:100])
if (accepted, refused) != (30, 70):
    fail('100 connections: %d accepted, %d refused; expected 30 and 70' % (accepted, refused))
raw = sc.request(sock, 'version')
if raw != b'{"error":"too many clients"}\n':
    fail('a 101st client while 32 are connected: %r' % raw)
for s in many:
    s.close()
t0 = time.monotonic()
while True:
    raw = sc.request(sock, 'stats')
    if raw.startswith(b'{"pid"'):
        break
    if time.monotonic() - t0 > 1.0:
        fail('a normal client was not served within 1 s of the 100 going: %r' % raw[:100])
    time.sleep(0.01)
ok('100 connections at once: 30 accepted (2 slots held by hostile clients), 70 got "too many clients"; '
   'a normal client served %.0f ms after they went' % ((time.monotonic() - t0) * 1000))

# Pressure for 5 s: 1 MB lines, a slow writer, churn, a reading watcher, a normal client.
results = {'big': 0, 'big_bad': [], 'churn': 0, 'frames': 0, 'stats': 0, 'lat': []}

def big_lines():
    while not stop.is_set():
        s = sc.connect(sock)
        def feed():
            try:
                s.sendall(b'A' * (1 << 20))
            except OSError:
                pass
        th = threading.Thread(target=feed); th.start()
        end = time.monotonic() + 5
        got = b''
        while b'\n' not in got and time.monotonic() < end:
            d = recv_some(s, end - time.monotonic())
            if not d:
                break
            got += d
        if got != b'{"error":"request too long"}\n':
            results['big_bad'].append(got[:100])
        elif not wait_eof(s, 5):
            results['big_bad'].append(b'not closed after the error')
        else:
            results['big'] += 1
        th.join(); s.close()
        time.sleep(0.2)

def slow_writer():
    s = sc.connect(sock)
    try:
        while not stop.is_set():
            s.sendall(b'z'); time.sleep(0.1)
    except OSError:
        pass
    s.close()

def churn():
    while not stop.is_set():
        s = sc.connect(sock); s.close(); results['churn'] += 1
        time.sleep(0.01)

def reading_watcher():
    s = sc.connect(sock); s.sendall(b'watch 10\n'); buf = b''
    while not stop.is_set():
        d = recv_some(s, 0.5)
        if d:
            buf += d
            results['frames'] += buf.count(b'\n'); buf = buf[buf.rfind(b'\n') + 1:]
    s.close()

def normal_client():
    while not stop.is_set():
        t = time.monotonic()
        raw = sc.request(sock, 'stats')
        results['lat'].append(time.monotonic() - t)
        if not raw.startswith(b'{"pid"'):
            fail('normal client under pressure got %r' % raw[:100])
        results['stats'] += 1
        time.sleep(0.05)

threads = [threading.Thread(target=f) for f in (big_lines, slow_writer, churn, reading_watcher, normal_client)]
for th in threads:
    th.start()
time.sleep(5.0)
stop.set()
for th in threads:
    th.join()
window('hostile', hostile_start, time.time())
cpu1, mine1, wall1 = stats_thread_cpu(), my_cpu(), time.monotonic()
if results['big_bad']:
    fail('1 MB lines: %r' % results['big_bad'][:3])
if results['big'] < 3:
    fail('only %d 1 MB lines answered in 5 s' % results['big'])
lat = sorted(results['lat'])
ok('under pressure for 5 s: %d 1 MB lines each got "request too long" and were closed; %d churned connections; '
   'a reading watcher got %d frames at 10 ms; a normal client got %d stats answers (median %.1f ms, worst %.1f ms)'
   % (results['big'], results['churn'], results['frames'], results['stats'],
      1000 * lat[len(lat) // 2], 1000 * lat[-1]))
if results['frames'] < 150:
    fail('the reading watcher got only %d frames in 5 s at 10 ms' % results['frames'])

# ---- quiet again ----
t = time.time(); time.sleep(3.0); window('quiet after', t, time.time())

# ---- the hostile clients' limits (closed when, seen by hup_watch) ----
def wait_closed(name, limit):
    end = time.monotonic() + limit
    while name not in closed_at and time.monotonic() < end:
        time.sleep(0.05)
    return closed_at.get(name)
at = wait_closed('deaf', 16.0 - (time.monotonic() - deaf_t0))
if at is None:
    fail('the watcher that never reads was not closed within 16 s (10 s after its output stalled)')
if at < 10.0:
    fail('the watcher that never reads was closed after %.1f s, before 10 s' % at)
ok('the 10 ms watcher that never read was closed after %.1f s (its output stalled, then 10 s)' % at)
at = wait_closed('silent', 34.0 - (time.monotonic() - silent_t0))
if at is None or not 29.5 <= at <= 34.0:
    fail('the silent client (half a request) was closed after %r s, not 30 s' % at)
ok('the silent client (half a request) was closed after %.1f s' % at)
if not sc.request(sock, 'stats').startswith(b'{"pid"'):
    fail('stats after all that')

# ---- the app's rate in each window ----
rows = []
for line in open(ratefile):
    w, dt, n, gap = line.split()
    rows.append((float(w), float(dt), int(n), float(gap)))
summary = {}
for name, (a, b) in windows.items():
    sel = [r for r in rows if a <= r[0] - r[1] and r[0] <= b]
    if len(sel) < 4:
        fail('window %s: only %d rate reports' % (name, len(sel)))
    rate = sum(r[2] for r in sel) / sum(r[1] for r in sel)
    summary[name] = (rate, max(r[3] for r in sel))
for name in ('quiet before', 'hostile', 'quiet after'):
    rate, gap = summary[name]
    print('    app round trips, %-12s: %7.0f/s, longest gap between two: %.1f ms' % (name, rate, gap * 1000))
quiet = (summary['quiet before'][0] + summary['quiet after'][0]) / 2
rate, gap = summary['hostile']
worst = max(g for _, g in summary.values())
# The floor is half the slower quiet window: this 2-CPU VM alone moves the rate by
# 2x from minute to minute; a stall caused by the stats thread shows as a gap.
floor = 0.5 * min(summary['quiet before'][0], summary['quiet after'][0])
if rate < floor:
    fail('the app slowed to %.0f%% of its quiet rate under hostile clients' % (100 * rate / quiet))
if worst > 1.0:
    fail('the app stalled for %.1f s' % worst)
ok('app rate under hostile clients: %.0f%% of the quiet rate (%.0f/s vs %.0f/s); no stall (worst gap %.1f ms)'
   % (100 * rate / quiet, rate, quiet, worst * 1000))
print('    CPU over the %.1f s hostile window: the stats thread %.0f ms (%.1f%% of one CPU); '
      'this test driver %.0f ms (%.0f%%) on %d CPUs'
      % (wall1 - wall0, 1000 * (cpu1 - cpu0), 100 * (cpu1 - cpu0) / (wall1 - wall0),
         1000 * (mine1 - mine0), 100 * (mine1 - mine0) / (wall1 - wall0), os.cpu_count()))
PYEOF

"$PY" "$TMP/hostile.py" "$ROOT/tests/integration" "$SOCK" "$TMP/rate" "$pid" || { tail -5 "$TMP/err" >&2; fail "hostile clients"; }
touch "$TMP/quit"
wait "$app" || { cat "$TMP/err" >&2; fail "the app failed"; }
[ -e "$SOCK" ] && fail "socket left behind"
pass "the app finished its loop and exited 0; socket removed"
