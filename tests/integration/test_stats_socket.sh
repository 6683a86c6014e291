#!/usr/bin/env bash
# The stats socket of a live python3 under the shim: every request of the
# protocol answered as specified (stats with every key SPEC.md lists and
# figures that match what the app did, watch, metrics checked by promtool,
# trim, heap, config, version, help, errors, several requests on one
# connection), the socket file 0600 in a 0700 directory, removed at exit.
# RESHIM_DISABLE=1: no socket. A process that lives less than 100 ms never
# creates a thread or a socket (strace on /bin/true, debug log of python3).
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
CLIENT_DIR="$ROOT/tests/integration"
RUN="$TMP/run"   # created by the shim

port=$(free_port)
dead=$(free_port)
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
import os, socket, sys, time
time.sleep(0.15)                         # past the shim's 100 ms: the first call starts its thread
conns = []
for i in range(5):                       # 5 connects that work
    s = socket.socket()
    s.connect(('127.0.0.1', $port))
    s.sendall(b'ping')
    got = b''
    while len(got) < 4:
        got += s.recv(4 - len(got))
    conns.append(s)
try:                                     # 1 that is refused (1 retry, then the error)
    socket.socket().connect(('127.0.0.1', $dead))
except ConnectionRefusedError:
    pass
keep = b'x' * (24 << 20)                 # 24 MB of live, resident heap
print('ready', os.getpid(), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
print('bye', flush=True)
PYEOF

# wait_file PATH [SECONDS]
wait_file() {
    local i=0
    while [ ! -e "$1" ]; do i=$((i + 1)); [ $i -gt $((${2:-10} * 50)) ] && return 1; sleep 0.02; done
}
# wait_line FILE PATTERN [SECONDS]
wait_line() {
    local i=0
    while ! grep -q "$2" "$1" 2>/dev/null; do i=$((i + 1)); [ $i -gt $((${3:-10} * 50)) ] && return 1; sleep 0.02; done
}

RESHIM_RUN_DIR="$RUN" RESHIM_RETRIES=1 RESHIM_BACKOFF_BASE=10ms RESHIM_BREAKER=lots \
    env LD_PRELOAD="$SHIM" "$PY" "$TMP/app.py" "$TMP/quit" >"$TMP/out" 2>"$TMP/err" &
app=$!
CHILDREN+=($app)
wait_line "$TMP/out" '^ready' 15 || { cat "$TMP/err" >&2; fail "the app did not start"; }
pid=$(sed -n 's/^ready //p' "$TMP/out")
SOCK="$RUN/$pid.sock"
wait_file "$SOCK" 10 || { ls -la "$RUN" >&2 || true; cat "$TMP/err" >&2; fail "no socket $SOCK"; }
pass "socket $SOCK appeared (the app's first network call after 100 ms started the thread)"

[ "$(stat -c %a "$RUN")" = 700 ] || fail "run dir mode $(stat -c %a "$RUN"), not 700"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "socket mode $(stat -c %a "$SOCK"), not 600"
[ "$(stat -c %u "$SOCK")" = "$(id -u)" ] || fail "socket not owned by uid $(id -u)"
[ "$(stat -c %F "$SOCK")" = socket ] || fail "$SOCK is not a socket"
pass "run dir created 0700, socket 0600, ours"

cat > "$TMP/check.py" <<'PYEOF'
import collections, json, os, shutil, socket, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
import stats_client as sc
sock, pid, port, dead, rundir = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
VERSION = os.environ['RESHIM_TEST_VERSION']       # the Makefile's (lib.sh)
VLINE = ('reshim ' + VERSION).encode()

def fail(msg):
    print('  FAIL: ' + msg, file=sys.stderr)
    sys.exit(1)

def ok(msg):
    print('  ok: ' + msg, flush=True)

def one_json(req):
    raw = sc.request(sock, req)
    if not raw.endswith(b'\n') or raw.count(b'\n') != 1:
        fail('%r: not one line ending in a newline: %r' % (req, raw[:300]))
    try:
        return json.loads(raw), raw
    except ValueError as e:
        fail('%r: not JSON (%s): %r' % (req, e, raw[:300]))

def expect_error(req, exact=None, contains=None):
    obj, raw = one_json(req)
    if list(obj) != ['error'] or not isinstance(obj['error'], str):
        fail('%r: expected {"error": ...}, got %r' % (req, raw))
    if exact is not None and obj['error'] != exact:
        fail('%r: error %r, expected %r' % (req, obj['error'], exact))
    if contains is not None and contains not in obj['error']:
        fail('%r: error %r does not mention %r' % (req, obj['error'], contains))
    return obj['error']

# ---- stats ----
st, raw = one_json('stats')
for k in ('pid', 'comm', 'version', 'uptime_s', 'net', 'mem'):
    if k not in st:
        fail('stats: no key %s' % k)
if st['pid'] != pid: fail('stats pid %r != %d' % (st['pid'], pid))
if st['comm'] != 'python3': fail('stats comm %r' % st['comm'])
if st['version'] != VERSION: fail('stats version %r' % st['version'])
if not (0 < st['uptime_s'] < 120): fail('stats uptime_s %r' % st['uptime_s'])
calls_keys = ('calls', 'failures', 'retries', 'recovered', 'gave_up')
for cls in ('connect', 'dns', 'send', 'recv'):
    for k in calls_keys:
        if not isinstance(st['net'].get(cls, {}).get(k), int):
            fail('stats: net.%s.%s missing or not an integer' % (cls, k))
c = st['net']['connect']
if (c['calls'], c['failures'], c['retries'], c['recovered'], c['gave_up']) != (6, 1, 1, 0, 1):
    fail('net.connect %r: expected 6 calls, 1 failure, 1 retry, 0 recovered, 1 gave up' % c)
if st['net']['send']['calls'] < 5 or st['net']['recv']['calls'] < 5:
    fail('send/recv calls %r %r < 5' % (st['net']['send'], st['net']['recv']))
dests = {d['dest']: d for d in st['net']['destinations']}
for d in st['net']['destinations']:
    for k in ('dest', 'calls', 'failures', 'retries', 'recovered', 'last_error', 'breaker'):
        if k not in d: fail('destination %r has no key %s' % (d, k))
good, bad = dests.get('127.0.0.1:%d' % port), dests.get('127.0.0.1:%d' % dead)
if not good or not bad: fail('destinations %r lack the echo peer or the dead port' % list(dests))
if (good['calls'], good['failures'], good['last_error'], good['breaker']) != (5, 0, None, 'closed'):
    fail('echo destination %r' % good)
if good.get('sends', 5) < 5 or good.get('recvs', 5) < 5:
    fail('echo destination sends/recvs %r' % good)
if (bad['calls'], bad['failures'], bad['retries'], bad['gave_up'], bad['last_error']) != (1, 1, 1, 1, 'ECONNREFUSED'):
    fail('dead destination %r' % bad)
mem_keys = ('rss_bytes', 'rss_peak_bytes', 'heap_live_bytes', 'heap_peak_bytes', 'allocs', 'frees',
            'budget_bytes', 'budget_source', 'state', 'trims', 'trimmed_bytes', 'enomem')
for k in mem_keys:
    if k not in st['mem']: fail('stats: no key mem.%s' % k)
m = st['mem']
if m['budget_source'] not in ('env', 'cgroup', 'none'): fail('mem.budget_source %r' % m['budget_source'])
if m['state'] not in ('ok', 'warn', 'critical', 'over'): fail('mem.state %r' % m['state'])
if not m['heap_live_bytes'] > 24 << 20: fail('heap_live_bytes %r: the app holds 24 MB' % m['heap_live_bytes'])
if not m['heap_peak_bytes'] >= m['heap_live_bytes']: fail('heap_peak < heap_live: %r' % m)
if not m['rss_bytes'] > 24 << 20: fail('rss_bytes %r' % m['rss_bytes'])
if not m['rss_peak_bytes'] >= m['rss_bytes']: fail('rss_peak < rss: %r' % m)
if not m['allocs'] > 0 or not m['frees'] > 0 or m['allocs'] < m['frees'] - 1000: fail('allocs/frees %r' % m)
ok('stats: one JSON line, every key of SPEC.md; pid %d, comm python3, connect %d calls / %d failure / '
   '%d retry / %d gave up as the app did; echo peer 5 calls, dead port ECONNREFUSED; heap_live %d MB, rss %d MB'
   % (pid, c['calls'], c['failures'], c['retries'], c['gave_up'], m['heap_live_bytes'] >> 20, m['rss_bytes'] >> 20))

# ---- watch ----
frames = sc.watch(sock, 100, 0.75)
objs = [json.loads(f) for f in frames]
times = [o['time_s'] for o in objs]
if len(objs) < 5: fail('watch 100: %d frames in 0.75 s' % len(objs))
if any(b <= a for a, b in zip(times, times[1:])): fail('watch 100: time_s not increasing: %r' % times)
gaps = [b - a for a, b in zip(times, times[1:])]
if not 0.07 < sum(gaps) / len(gaps) < 0.2: fail('watch 100: mean gap %.3f s' % (sum(gaps) / len(gaps)))
if any(o['pid'] != pid for o in objs): fail('watch: frames of another pid')
ok('watch 100: %d frames in 0.75 s, time_s increasing, mean gap %.0f ms' % (len(objs), 1000 * sum(gaps) / len(gaps)))
s = sc.connect(sock)
t0 = time.monotonic()
s.sendall(b'watch\n')
first = s.recv(65536)
if not first or time.monotonic() - t0 > 0.5: fail('watch (default period): no first frame at once')
s.close()
expect_error('watch 5', contains='MS')
expect_error('watch 3600001', contains='MS')
expect_error('watch soon', contains='MS')
ok('watch (no MS): the first frame at once; watch 5, 3600001, soon: errors about MS')

# ---- metrics ----
met = sc.request(sock, 'metrics').decode()
if not met.endswith('\n'): fail('metrics does not end with a newline')
samples = [l for l in met.split('\n') if l and not l.startswith('#')]
if not samples or any(not l.startswith('reshim_') for l in samples): fail('metrics: a sample not named reshim_*')
if any(('pid="%d"' % pid) not in l or 'comm="python3"' not in l for l in samples):
    fail('metrics: a sample without pid and comm labels')
connect_total = [l for l in samples if l.startswith('reshim_net_calls_total{') and 'connect' in l]
if not connect_total or not connect_total[0].endswith(' 6'): fail('metrics: connect calls %r' % connect_total)
promtool = shutil.which('promtool')
if promtool:
    p = subprocess.run([promtool, 'check', 'metrics'], input=met.encode(), capture_output=True)
    if p.returncode != 0:
        fail('promtool check metrics: %s %s' % (p.stdout.decode(), p.stderr.decode()))
    ok('metrics: %d samples, all reshim_* with pid and comm, connect calls 6; promtool check metrics passes' % len(samples))
else:
    ok('metrics: %d samples, all reshim_* with pid and comm (promtool not installed: format check skipped)' % len(samples))

# ---- trim ----
tr, raw = one_json('trim')
for k in ('trimmed_bytes', 'rss_before_bytes', 'rss_after_bytes', 'ms'):
    if not isinstance(tr.get(k), int) or tr[k] < 0: fail('trim: %s missing or negative: %r' % (k, raw))
expect_error('trim', contains='1 s')
ok('trim: %r; a second trim within 1 s: rate-limit error' % tr)
time.sleep(1.05)
tr2, raw = one_json('trim')
if 'trimmed_bytes' not in tr2: fail('trim after 1 s: %r' % raw)
st2, _ = one_json('stats')
if st2['mem']['trims'] < 2: fail('mem.trims %r after two trims' % st2['mem']['trims'])
ok('trim again after 1 s: trimmed_bytes %d; mem.trims = %d' % (tr2['trimmed_bytes'], st2['mem']['trims']))

# ---- heap ----
hp, raw = one_json('heap 10')
for k in ('sample_bytes', 'sites', 'sampled_live_bytes', 'dropped'):
    if k not in hp: fail('heap 10: no %r in %r' % (k, raw[:300]))
if hp['sample_bytes'] != 512 * 1024 or not 1 <= len(hp['sites']) <= 10: fail('heap 10: %r' % raw[:300])
top = hp['sites'][0]
for k in ('live_bytes', 'live_objects', 'allocs', 'stack'):
    if k not in top: fail('heap 10: site without %r: %r' % (k, top))
# The app's 24 MB block is one allocation far above R: sampled for sure, weighed ~ itself.
if not (20 << 20) <= top['live_bytes'] <= (30 << 20) or not top['stack']:
    fail('heap 10: top site %r, expected the 24 MB block' % top)
for bad_n in ('heap 0', 'heap 1001', 'heap', 'heap ten'):
    expect_error(bad_n, contains='N')
ok('heap 10: %d sites, top %d MB at %s; heap 0, 1001, no N, ten: errors about N'
   % (len(hp['sites']), top['live_bytes'] >> 20, top['stack'][0]))

# ---- config ----
raw = sc.request(sock, 'config')
cfg = json.loads(raw, object_pairs_hook=collections.OrderedDict)
names = ['RESHIM_DISABLE', 'RESHIM_LOG', 'RESHIM_LOG_FILE', 'RESHIM_RETRIES', 'RESHIM_BACKOFF_BASE',
         'RESHIM_BACKOFF_MAX', 'RESHIM_JITTER', 'RESHIM_RETRY_DEADLINE', 'RESHIM_RETRY_BUDGET',
         'RESHIM_BREAKER', 'RESHIM_NONBLOCK', 'RESHIM_REPLAY', 'RESHIM_REPLAY_MAX', 'RESHIM_DEST',
         'RESHIM_DNS_STALE', 'RESHIM_MEM_BUDGET',
         'RESHIM_MEM_WARN', 'RESHIM_MEM_TRIM', 'RESHIM_MEM_POLICY', 'RESHIM_HEAP_SAMPLE', 'RESHIM_RUN_DIR',
         'RESHIM_INTERVAL', 'RESHIM_PUSH']
if list(cfg) != names: fail('config: variables %r' % list(cfg))
want = {'RESHIM_RETRIES': {'value': '1', 'source': 'env'},
        'RESHIM_BACKOFF_BASE': {'value': '10ms', 'source': 'env'},
        'RESHIM_BREAKER': {'value': '5', 'source': 'invalid', 'given': 'lots'},
        'RESHIM_RUN_DIR': {'value': rundir, 'source': 'env'},
        'RESHIM_BACKOFF_MAX': {'value': '1s', 'source': 'default'},
        'RESHIM_RETRY_BUDGET': {'value': '20%', 'source': 'default'},
        'RESHIM_MEM_WARN': {'value': '80%', 'source': 'default'},
        'RESHIM_DNS_STALE': {'value': '1h', 'source': 'default'},
        'RESHIM_HEAP_SAMPLE': {'value': '524288', 'source': 'default'},
        'RESHIM_INTERVAL': {'value': '1s', 'source': 'default'},
        'RESHIM_JITTER': {'value': 'equal', 'source': 'default'}}
for k, v in want.items():
    if dict(cfg[k]) != v: fail('config %s: %r, expected %r' % (k, dict(cfg[k]), v))
for k, v in cfg.items():
    if not isinstance(v.get('value'), str) or v.get('source') not in ('default', 'env', 'invalid'):
        fail('config %s: %r' % (k, dict(v)))
ok('config: all %d variables in order; RESHIM_RETRIES "1" from env, RESHIM_BREAKER invalid (given "lots", '
   'default "5" used), RESHIM_BACKOFF_BASE "10ms", defaults in their units (20%%, 1h, 524288)' % len(cfg))

# ---- version, help, unknown, errors ----
if sc.request(sock, 'version') != VLINE + b'\n': fail('version: %r' % sc.request(sock, 'version'))
if sc.request(sock, 'help') != b'requests: stats, watch MS, metrics, trim, heap N, config, version, help\n':
    fail('help: %r' % sc.request(sock, 'help'))
expect_error('frobnicate', exact='unknown request "frobnicate"; try help')
long_req = 'x' * 60 + '"\\' + 'y' * 100
e = expect_error(long_req)
if e != 'unknown request "%s"; try help' % long_req[:64]: fail('long unknown request: %r' % e)
expect_error('stats now', contains='unknown request')
ok('version, help exact; unknown requests: the error line, the request escaped and cut to 64 bytes')

# ---- several requests on one connection, line endings ----
raw = sc.request(sock, 'version\nhelp\n\n  stats  \r\nversion')
lines = raw.split(b'\n')
if len(lines) != 5 or lines[0] != VLINE or not lines[1].startswith(b'requests:') \
        or json.loads(lines[2])['pid'] != pid or lines[3] != VLINE or lines[4] != b'':
    fail('pipelined requests: %r' % raw[:400])
ok('4 requests on one connection (a blank line, spaces, \\r\\n, no final newline): answered in order')

# ---- a line longer than 4096 bytes ----
s = sc.connect(sock)
s.sendall(b'a' * 5000 + b'\n')
got = sc.read_all(s, time.monotonic() + 5)
s.close()
if got != b'{"error":"request too long"}\n': fail('5000-byte line: %r' % got[:200])
raw = sc.request(sock, 'a' * 4096)
if b'unknown request' not in raw: fail('a 4096-byte line should be a request: %r' % raw[:100])
ok('a 5000-byte line: {"error":"request too long"}, then closed; 4096 bytes is still a request')
PYEOF

"$PY" "$TMP/check.py" "$CLIENT_DIR" "$SOCK" "$pid" "$port" "$dead" "$RUN" || { tail -5 "$TMP/err" >&2; fail "protocol check"; }

touch "$TMP/quit"
wait "$app" || { cat "$TMP/err" >&2; fail "the app failed under the shim"; }
[ -e "$SOCK" ] && fail "socket $SOCK left behind at exit"
grep -E "reshim\[$pid\]: (warn|error)" "$TMP/err" | grep -v RESHIM_BREAKER && fail "unexpected warnings"
pass "app exited 0; socket file removed at exit"

# ---- an app that closes every fd: the listener is re-created, the app's files untouched ----
cat > "$TMP/closer.py" <<'PYEOF'
import os, select, socket, sys, time
D = sys.argv[1]
time.sleep(0.15)
socket.socket().close()                      # starts the stats thread
print('ready', os.getpid(), flush=True)
while not os.path.exists(D + '/go-close'):
    select.select([], [], [], 0.02)
os.closerange(3, 65536)                      # as daemons do
files = [open('%s/f%d' % (D, i), 'w+') for i in range(12)]   # our old numbers are the app's now
r, w = os.pipe()                             # a pipe too: readable, never ours to read
os.write(w, b'app data')
print('closed', ' '.join(str(f.fileno()) for f in files), flush=True)
while not os.path.exists(D + '/quit-closer'):
    select.select([], [], [], 0.02)
for f in files:
    f.seek(0)
    if f.read() != '':
        print('file touched', f.name, flush=True)
if os.read(r, 100) != b'app data':
    print('pipe read by someone else', flush=True)
print('files ok', flush=True)
PYEOF
mkdir "$TMP/closer"
RESHIM_RUN_DIR="$RUN" env LD_PRELOAD="$SHIM" "$PY" "$TMP/closer.py" "$TMP/closer" >"$TMP/closer.out" 2>"$TMP/closer.err" &
closer=$!
CHILDREN+=($closer)
wait_line "$TMP/closer.out" '^ready' 15 || fail "the closing app did not start"
cpid=$(sed -n 's/^ready //p' "$TMP/closer.out")
wait_file "$RUN/$cpid.sock" 10 || fail "no socket for the closing app"
"$PY" "$CLIENT_DIR/stats_client.py" "$RUN/$cpid.sock" version | grep -q '^reshim' || fail "the closing app's socket does not answer"
touch "$TMP/closer/go-close"
wait_line "$TMP/closer.out" '^closed' 10 || fail "the app did not close its fds"
ok=""
for i in $(seq 150); do
    # The old listener is closed: any answer now comes from a new one.
    if [ -S "$RUN/$cpid.sock" ] && "$PY" "$CLIENT_DIR/stats_client.py" "$RUN/$cpid.sock" stats 2>/dev/null | grep -q "\"pid\":$cpid,"; then
        ok=1; break
    fi
    sleep 0.02
done
[ -n "$ok" ] || { cat "$TMP/closer.err" >&2; fail "the listener was not re-created after the app closed every fd"; }
touch "$TMP/closer/quit-closer"
wait "$closer" || { cat "$TMP/closer.err" >&2; fail "the closing app failed"; }
grep -q '^files ok' "$TMP/closer.out" || fail "closing app: $(cat "$TMP/closer.out")"
grep -qE 'touched|someone' "$TMP/closer.out" && fail "the shim touched the app's descriptors: $(cat "$TMP/closer.out")"
[ -e "$RUN/$cpid.sock" ] && fail "the re-created socket was left behind"
pass "an app that closes every fd and reuses the numbers (fds $(sed -n 's/^closed //p' "$TMP/closer.out")): listener re-created and answering; the app's files and pipe never read or written; socket removed at exit"

# ---- RESHIM_DISABLE=1: no thread, no socket ----
rm -f "$TMP/quit"
RUN2="$TMP/run-disabled"
RESHIM_DISABLE=1 RESHIM_RUN_DIR="$RUN2" env LD_PRELOAD="$SHIM" "$PY" "$TMP/app.py" "$TMP/quit" >"$TMP/out2" 2>"$TMP/err2" &
app2=$!
CHILDREN+=($app2)
wait_line "$TMP/out2" '^ready' 15 || fail "the disabled app did not start"
pid2=$(sed -n 's/^ready //p' "$TMP/out2")
sleep 0.3
[ -e "$RUN2" ] && fail "RESHIM_DISABLE=1: run dir $RUN2 created"
grep -q "@reshim-[0-9]*/$pid2\$" /proc/net/unix && fail "RESHIM_DISABLE=1: an abstract socket"
threads=$(ls /proc/$pid2/task | wc -l)
[ "$threads" = 1 ] || fail "RESHIM_DISABLE=1: $threads threads in the app"
touch "$TMP/quit"; wait "$app2" || fail "the disabled app failed"
pass "RESHIM_DISABLE=1: one thread, no run dir, no socket (path or abstract)"

# ---- short-lived processes: no thread, no socket ----
if command -v strace >/dev/null; then
    RESHIM_RUN_DIR="$TMP/run-true" with_shim strace -f -qq -e trace=clone,clone3,socket,bind,listen \
        -o "$TMP/strace" /bin/true || fail "/bin/true under strace"
    [ -s "$TMP/strace" ] && { cat "$TMP/strace" >&2; fail "/bin/true under the shim made a thread or a socket"; }
    pass "strace -f -e trace=clone,clone3,socket,bind,listen on /bin/true under the shim: no call at all"
else
    echo "  skip: strace not installed: /bin/true not traced"
fi
RUN3="$TMP/run-short"
for i in $(seq 20); do
    RESHIM_LOG=debug RESHIM_RUN_DIR="$RUN3" with_shim "$PY" -c "
import socket
for i in range(5):
    s = socket.socket(); s.connect(('127.0.0.1', $port)); s.sendall(b'x'); s.recv(1); s.close()
" 2>>"$TMP/err3" || fail "short python3 failed"
    echo x | RESHIM_LOG=debug RESHIM_RUN_DIR="$RUN3" with_shim sh -c 'cat | tr x y | wc -c' >/dev/null 2>>"$TMP/err3"
done
n=$(grep -c "active (version" "$TMP/err3" || true)
[ "$n" -ge 100 ] || fail "only $n debug start lines from 100 short processes"
# A loaded machine may stretch one past 100 ms: then its socket must come after 100 ms.
late=$(grep "stats socket: serving on" "$TMP/err3" || true)
early=$(printf '%s\n' "$late" | sed -n 's/.*, \([0-9]*\) ms after start$/\1/p' | awk '$1 < 100' | head -n 3)
[ -z "$early" ] || fail "a stats socket less than 100 ms after start: $early ms"
served=$(printf '%s' "$late" | grep -c . || true)
# How many live past 100 ms depends on the machine's load (11 of 100 seen
# with six test runs beside this one): the rule checked is the one above.
[ "$served" = 0 ] && [ -e "$RUN3" ] && fail "short-lived processes created the run dir"
pass "$n short processes (20 python3 with 5 connects each, 20 shell pipelines of 4): $served stats sockets, none before 100 ms of a process's life"
