#!/usr/bin/env bash
# `reshim collect`: the receiving end of RESHIM_PUSH, against the real
# library. 200 short-lived /bin/true under the shim, 20 at a time, push to
# `reshim collect --listen $TMP/c.sock --textfile $TMP/tf --count 200`: each
# sends one datagram, at exit (it never lives the 100 ms the stats thread
# waits for), so all 200 pids must be seen exactly once, none lost although
# the kernel queues only net.unix.max_dgram_qlen (10) datagrams. Then 200
# python3 -c pass, 20 at a time (those living past 100 ms also push once when
# the stats thread starts): every pid seen, at most twice, the exit datagram
# last. Meanwhile a reader rereads DIR/reshim.prom in a loop: every version
# it sees must be whole (rename(2), never half-written), and they pass
# `promtool check metrics`. Also: the socket is 0600; a regular file at PATH
# is refused and left alone; a stale socket is replaced, a live one refused;
# bad datagrams are counted and reported, never fatal; SIGTERM removes PATH,
# exit 0.
source "$(dirname "$0")/lib.sh"

RESHIM="${RESHIM_CLI:-$ROOT/build/reshim}"   # RESHIM_CLI: test another build (test_cli_static.sh)
[ -x "$RESHIM" ] || fail "$RESHIM is missing (make all)"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(RESHIM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export RESHIM_RUN_DIR="$TMP/run"
SOCK="$TMP/c.sock"
TF="$TMP/tf"
PROMTOOL=$(command -v promtool || true)

wait_sock() { wait_socket "$1"; }

# burst N PAR CMD...: N processes under the shim pushing to $SOCK, PAR at a
# time; their pids in $TMP/pids.
burst() {
    local n=$1 par=$2 i; shift 2
    local batch=()
    : >"$TMP/pids"
    for ((i = 0; i < n; i++)); do
        RESHIM_PUSH="$SOCK" LD_PRELOAD="$SHIM" "$@" &
        batch+=($!); echo $! >>"$TMP/pids"
        if [ ${#batch[@]} -eq "$par" ]; then wait "${batch[@]}" || true; batch=(); fi
    done
    [ ${#batch[@]} -eq 0 ] || wait "${batch[@]}" || true
}

# 1. 200 x /bin/true: 200 datagrams, 200 pids, exactly once each.
mkdir "$TF"
timeout 60 "$RESHIM" collect --listen "$SOCK" --textfile "$TF" --count 200 >"$TMP/out1" 2>"$TMP/err1" &
CPID=$!; CHILDREN+=($CPID)
wait_sock "$SOCK" || fail "collect did not bind $SOCK"
mode=$(stat -c %a "$SOCK")
[ "$mode" = 600 ] || fail "socket mode $mode, expected 600"
burst 200 20 /bin/true
rc=0; wait $CPID || rc=$?
[ "$rc" = 0 ] || { cat "$TMP/err1" >&2; fail "collect --count 200 exited $rc (124: not all 200 datagrams arrived within 60 s; got $(wc -l <"$TMP/out1"))"; }
[ -e "$SOCK" ] && fail "collect left $SOCK behind"
lines=$(wc -l <"$TMP/out1")
seen=$(cut -d' ' -f1 "$TMP/out1" | sort -u | wc -l)
missing=$(comm -23 <(sort -u "$TMP/pids") <(cut -d' ' -f1 "$TMP/out1" | sort -u) | wc -l)
[ "$lines" = 200 ] && [ "$seen" = 200 ] && [ "$missing" = 0 ] ||
    fail "/bin/true: $lines lines, $seen distinct pids, $missing of our 200 pids missing"
grep -q '^[0-9]* true state=ok rss=' "$TMP/out1" || fail "unexpected line format: $(head -n 1 "$TMP/out1")"
grep -q '200 datagrams (0 bad) from 200 processes' "$TMP/err1" || fail "summary: $(tail -n 1 "$TMP/err1")"
nproc=$(grep -c '^reshim_info{' "$TF/reshim.prom")
[ "$nproc" = 200 ] || fail "textfile holds $nproc processes, expected 200"
grep -q '^reshim_collector_datagrams_total 200$' "$TF/reshim.prom" || fail "reshim_collector_datagrams_total is not 200"
pass "200 x /bin/true, 20 at a time: 200 datagrams from 200 pids, each exactly once (its exit datagram); textfile holds 200 processes"
echo "    $(head -n 1 "$TMP/out1")"
if [ -n "$PROMTOOL" ]; then
    "$PROMTOOL" check metrics <"$TF/reshim.prom" >"$TMP/pt" 2>&1 || { cat "$TMP/pt" >&2; fail "promtool check metrics rejects the textfile"; }
    pass "promtool check metrics: the textfile of 200 processes ($(wc -c <"$TF/reshim.prom") bytes) passes"
else
    echo "  skip: no promtool (Debian package prometheus): textfile not linted"
fi
ls -A "$TF" | grep -v '^reshim\.prom$' && fail "temp files left in the textfile directory"

# 2. 200 x python3 -c pass, with a reader checking every version of the textfile.
rm -rf "$TF"; mkdir "$TF"
"$RESHIM" collect --listen "$SOCK" --textfile "$TF" --interval 0.05 --json >"$TMP/out2" 2>"$TMP/err2" &
CPID=$!; CHILDREN+=($CPID)
wait_sock "$SOCK" || fail "collect did not bind $SOCK"
mkdir "$TMP/versions"
"$PY" - "$TF/reshim.prom" "$TMP/versions" "$TMP/reader.stop" >"$TMP/reader" 2>&1 <<'EOF' &
import os, re, sys, time
path, vdir, stop = sys.argv[1:4]
sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? [-+0-9.eE]+(Inf|NaN)?$')
seen, bad, saved, last = 0, 0, 0, None
while not os.path.exists(stop):
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        continue
    if data == last:
        time.sleep(0.001)
        continue
    last = data
    seen += 1
    text = data.decode('utf-8', 'replace')
    lines = text.split('\n')
    ok = text.endswith('\n') and lines[-2].startswith('reshim_collector_processes ')
    for l in lines[:-1]:
        if not (l.startswith('# HELP ') or l.startswith('# TYPE ') or sample.match(l)):
            ok = False
    if not ok:
        bad += 1
        open(os.path.join(vdir, 'bad%d' % bad), 'wb').write(data)
    elif saved < 25 and seen % 3 == 1:
        saved += 1
        open(os.path.join(vdir, 'v%d' % saved), 'wb').write(data)
print('versions', seen, 'bad', bad, 'saved', saved)
EOF
RPID=$!; CHILDREN+=($RPID)
burst 200 20 "$PY" -c pass
wait_until 10 dgram_drained "$SOCK" || fail "collect did not read every push within 10 s"
touch "$TMP/reader.stop"; wait $RPID || true
kill -TERM $CPID; rc=0; wait $CPID || rc=$?
[ "$rc" = 0 ] || fail "collect exited $rc on SIGTERM"
[ -e "$SOCK" ] && fail "collect left $SOCK behind after SIGTERM"
read -r _ versions _ badv _ saved <"$TMP/reader" || fail "reader: $(cat "$TMP/reader")"
[ "$badv" = 0 ] || fail "the reader saw $badv half-written or malformed versions of the textfile (in $TMP/versions)"
[ "$versions" -ge 5 ] || fail "the reader saw only $versions versions of the textfile"
"$PY" - "$TMP/out2" "$TMP/pids" <<'EOF' >"$TMP/check2" || { cat "$TMP/check2" >&2; fail "python3 pushes: see above"; }
import collections, json, sys
by = collections.defaultdict(list)
for line in open(sys.argv[1]):
    s = json.loads(line)
    by[s['pid']].append(s)
ours = {int(l) for l in open(sys.argv[2])}
missing = ours - set(by)
extra = set(by) - ours
per = collections.Counter(len(v) for v in by.values())
err = []
if missing: err.append('%d of our pids never seen' % len(missing))
if extra: err.append('%d unknown pids' % len(extra))
# One push when the stats thread starts, one a second (the default
# interval) after that, one at exit: a process that lived u seconds sends
# at most 2 + floor(u) (a slow start on a loaded machine may pass 1 s).
for pid, v in by.items():
    if len(v) > 2 + int(v[-1]['uptime_s']):
        err.append('pid %d sent %d datagrams in %.2f s' % (pid, len(v), v[-1]['uptime_s'])); break
for pid, v in by.items():
    if v[-1]['uptime_s'] < max(x['uptime_s'] for x in v) or v[-1]['mem']['allocs'] < v[0]['mem']['allocs']:
        err.append('pid %d: its last datagram is not its exit one' % pid); break
print('pids %d, datagrams per pid %s' % (len(by), dict(sorted(per.items()))))
if err:
    print('; '.join(err)); sys.exit(1)
EOF
pass "200 x python3 -c pass, 20 at a time: $(cat "$TMP/check2") (1: exited before the stats thread started; 2: its first push, then the exit one, last)"
nproc=$(grep -c '^reshim_info{' "$TF/reshim.prom")
[ "$nproc" = 200 ] || fail "textfile holds $nproc processes, expected 200"
pass "textfile rewritten while 200 processes pushed: the reader saw $versions versions, none half-written; the last holds 200 processes"
if [ -n "$PROMTOOL" ]; then
    n=0
    for v in "$TMP/versions"/v* "$TF/reshim.prom"; do
        "$PROMTOOL" check metrics <"$v" >"$TMP/pt" 2>&1 || { cat "$TMP/pt" >&2; fail "promtool check metrics rejects $v"; }
        n=$((n + 1))
    done
    pass "promtool check metrics: $n versions seen by the reader pass"
fi

# 3. What is at PATH: a regular file is refused and left alone, a stale
# socket replaced, a live collector not displaced.
echo "precious" >"$TMP/file"
rc=0; "$RESHIM" collect --listen "$TMP/file" --count 1 >/dev/null 2>"$TMP/err3" || rc=$?
[ "$rc" = 1 ] || fail "collect over a regular file: exit $rc, expected 1"
grep -q 'not a socket' "$TMP/err3" || fail "collect over a regular file: $(cat "$TMP/err3")"
[ "$(cat "$TMP/file")" = precious ] || fail "collect touched the regular file"
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])' "$TMP/stale.sock"
[ -S "$TMP/stale.sock" ] || fail "no stale socket made"
"$RESHIM" collect --listen "$TMP/stale.sock" --quiet >/dev/null 2>"$TMP/err4" &
CPID=$!; CHILDREN+=($CPID)
# Replaced: a datagram socket connects to it (to the stale one: ECONNREFUSED).
live() { "$PY" -c 'import socket,sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).connect(sys.argv[1])' "$1" 2>/dev/null; }
wait_until 10 live "$TMP/stale.sock" || fail "collect did not replace a stale socket: $(cat "$TMP/err4")"
rc=0; "$RESHIM" collect --listen "$TMP/stale.sock" --count 1 >/dev/null 2>"$TMP/err5" || rc=$?
[ "$rc" = 1 ] && grep -q 'another process is receiving on it' "$TMP/err5" || fail "a second collector on a live socket: exit $rc, $(cat "$TMP/err5")"
pass "a regular file at PATH: refused, untouched (exit 1); a stale socket: replaced; a live collector: not displaced (exit 1)"

# 4. Bad datagrams: counted, reported (rate-limited), never fatal.
"$PY" - "$TMP/stale.sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(50):
    s.sendto([b'garbage', b'{"pid":', b'', b'[1,2,3]', b'{"pid":-4}'][i % 5], sys.argv[1])
EOF
RESHIM_PUSH="$TMP/stale.sock" LD_PRELOAD="$SHIM" /bin/true
wait_until 10 dgram_drained "$TMP/stale.sock" || fail "collect did not read the datagrams within 10 s"
kill -0 $CPID 2>/dev/null || fail "collect died on bad datagrams"
kill -TERM $CPID; rc=0; wait $CPID || rc=$?
[ "$rc" = 0 ] || fail "collect exited $rc"
nrep=$(grep -c 'bad datagram (' "$TMP/err4" || true)
grep -q '^reshim: collect: 51 datagrams (50 bad) from 1 process' "$TMP/err4" || { cat "$TMP/err4" >&2; fail "bad datagrams not counted"; }
[ "$nrep" = 10 ] || fail "$nrep lines for 50 bad datagrams, expected 10 then a sum"
grep -q 'collect: 40 more bad datagrams' "$TMP/err4" || fail "no summing line for the 40 further bad datagrams"
pass "50 bad datagrams: counted ('$(tail -n 1 "$TMP/err4" | sed 's/^reshim: //')'), 10 reported one by one then summed up, the good one after them still taken"
