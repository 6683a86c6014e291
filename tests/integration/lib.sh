# lib.sh: shared by the integration tests (sourced, bash). Each test is a
# script tests/integration/test_NAME.sh that exits 0 on pass, 77 on skip
# (with the reason on stderr), anything else on failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHIM="$ROOT/build/libreshim.so"
BIN="$ROOT/build/bin"
PEERS="$ROOT/tests/integration/peers"
PY=/usr/bin/python3          # Debian's python3, never a pyenv shim
# The version the build must report: the Makefile's VERSION, its one place.
VERSION=$(sed -n 's/^VERSION *:*= *\([^ ]*\).*/\1/p' "$ROOT/Makefile")
[ -n "$VERSION" ] || { echo "lib.sh: no VERSION in $ROOT/Makefile" >&2; exit 1; }
export RESHIM_TEST_VERSION=$VERSION   # for the Python the tests run
TMP=$(mktemp -d /tmp/reshim-test.XXXXXX)
CHILDREN=()

cleanup() {
    for p in "${CHILDREN[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# Runs "$@" in the background and remembers it for cleanup.
spawn() { "$@" & CHILDREN+=($!); }

# sized QUICK FULL: QUICK under `make check`, FULL under `make check-full`
# (RESHIM_CHECK_FULL=1): the one way a test picks how many times to repeat.
sized() { if [ "${RESHIM_CHECK_FULL:-0}" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_until SECONDS CMD...: until CMD succeeds (tried every 20 ms); 1 when
# SECONDS pass first. The one way a test waits for a state; the waits below
# name the usual states.
wait_until() {
    local t=$1 i=0; shift
    until "$@"; do
        i=$((i + 1)); [ $i -gt $((t * 50)) ] && return 1; sleep 0.02
    done
}
port_open() { "$PY" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$1)))" 2>/dev/null; }
# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT.
wait_port() { wait_until "${2:-10}" port_open "$1"; }
# wait_line FILE PATTERN [SECONDS]: until FILE has a line matching PATTERN.
wait_line() { wait_until "${3:-10}" grep -qs -- "$2" "$1"; }
# wait_file PATH [SECONDS]: until PATH exists.
wait_file() { wait_until "${2:-10}" test -e "$1"; }
# wait_socket PATH [SECONDS]: until PATH is a socket (the CLI asks a live
# process again when its socket is there but not yet listening).
wait_socket() { wait_until "${2:-10}" test -S "$1"; }
# gone PID: it has exited (no /proc entry, or a zombie its parent has not reaped).
# dgram_drained PATH: nothing waits unread on the datagram socket bound at
# PATH (ss: its receive queue is empty), e.g. a collector has read every push.
dgram_drained() { [ "$(ss -Hxa src "$1" | awk '{s += $3} END {print s + 0}')" = 0 ]; }
gone() { local st; st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0; [ "$st" = Z ]; }
# wait_abstract UID PID [SECONDS]: until @reshim-UID/PID is in /proc/net/unix.
wait_abstract() { wait_until "${3:-5}" grep -q " @reshim-$1/$2\$" /proc/net/unix; }

# with_shim CMD...: runs CMD with the shim preloaded (env passes through).
with_shim() { LD_PRELOAD="$SHIM${LD_PRELOAD:+:$LD_PRELOAD}" "$@"; }

# summary_field LOGFILE CLASS FIELD: a counter of the RESHIM_LOG=info exit
# summary line ("connect calls=1 failures=0 retries=3 recovered=1 gave_up=0;
# ..."). For the test of that line's format (test_flap.sh); figures come from stat_field.
summary_field() {
    grep -o "exit summary: .*" "$1" | tail -n 1 | sed 's/^exit summary: //' | tr ';' '\n' |
        sed -n "s/^ *$2 .*\b$3=\([0-9]*\).*/\1/p"
}

# ---- figures: from the stats the shim sends, never from its log lines ----------
# A process started with `pushed` sends its stats object (the one `reshim stats
# --json` gives) to this test's collector (`reshim collect --json`, started on
# first use) every RESHIM_INTERVAL and once at exit (RESHIM_PUSH); stat_field
# reads a figure from the last one, so after the process has exited, from its
# final figures.
PUSH="$TMP/push.sock"
PUSHED="$ROOT/tests/integration/pushed.sh"   # pushed.sh CMD...: see there
push_start() {
    export RESHIM_TEST_TMP=$TMP RESHIM_TEST_PUSH=$PUSH RESHIM_TEST_SHIM=$SHIM
    [ -S "$PUSH" ] && return 0
    spawn "$ROOT/build/reshim" collect --listen "$PUSH" --json >"$TMP/push.jsonl" 2>"$TMP/push.err"
    wait_until 10 test -S "$PUSH" || fail "reshim collect did not start: $(cat "$TMP/push.err")"
}

# pushed CMD...: runs CMD (a program) as with_shim does, pushing its stats to
# the collector (pushed.sh: $PUSHED, for where a function cannot go).
pushed() { push_start; "$PUSHED" "$@"; }

# push_flush: returns once the collector has printed everything sent so far:
# a shimmed /bin/true pushes behind it, and the collector prints in order.
push_flush() {
    local mark
    push_start
    mark=$( (echo "$BASHPID"; RESHIM_PUSH="$PUSH" LD_PRELOAD="$SHIM" exec /bin/true) )
    echo "$mark" >>"$TMP/push.markers"
    wait_until 10 grep -q "^{\"pid\":$mark," "$TMP/push.jsonl" ||
        fail "the collector did not receive the marker of pid $mark: $(cat "$TMP/push.err")"
}

# push_sum KEY FIRST: KEY summed over the last objects of every process but
# the markers, in the collector's lines from FIRST.
push_sum() {
    tail -n +"$2" "$TMP/push.jsonl" | "$PY" -S -E -c '
import json, sys
markers = set(open(sys.argv[1]).read().split())
last = {}
for d in map(json.loads, sys.stdin):
    last[d["pid"]] = d
total = 0
for pid, d in last.items():
    if str(pid) not in markers:
        for k in sys.argv[2].split("."):
            d = d[k]
        total += d
print(total)' "$TMP/push.markers" "$1"
}
# push_sync PID: flushes the collector (as push_flush) and writes, for every
# process that had exited before, its final figures to $TMP/stats.PID (kept:
# one parse for all), and for PID if it still runs, its latest to
# $TMP/stats.PID.live; flat, one KEY=VALUE a line (net.connect.calls=3; an
# object also as a whole, net.connect=calls=3 failures=1 ...; a list as
# JSON). 1 when PID never pushed.
push_sync() {
    push_start
    "$PY" -S -E - "$TMP" "$PUSH" "$SHIM" "$1" <<'PYEOF'
import json, os, subprocess, sys, time
tmp, push, shim, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
path = os.path.join(tmp, "push.jsonl")
def pid_of(line):
    return int(line[7:line.index(",")]) if line.startswith('{"pid":') else None
def gone(pid):
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
# Exited before the flush: whatever they sent is in by the time the marker is.
final = {p for p in map(pid_of, open(path)) if p is not None
         and not os.path.exists(os.path.join(tmp, "stats.%d" % p)) and gone(p)}
if gone(want):
    final.add(want)
env = dict(os.environ, RESHIM_PUSH=push, LD_PRELOAD=shim)
mark = subprocess.Popen(["/bin/true"], env=env).pid
with open(os.path.join(tmp, "push.markers"), "a") as f:
    f.write("%d\n" % mark)
prefix, deadline, lines = '{"pid":%d,' % mark, time.monotonic() + 10, []
while not any(l.startswith(prefix) for l in lines[-50:]):
    if time.monotonic() > deadline:
        sys.exit("the collector did not receive the marker of pid %d" % mark)
    time.sleep(0.01)
    lines = open(path).readlines()
last = {}
for line in lines:
    p = pid_of(line)
    if p in final or p == want:
        last[p] = line
def flat(out, prefix, v):
    if isinstance(v, dict):
        if prefix:
            out.append("%s=%s" % (prefix, " ".join("%s=%s" % kv for kv in v.items()
                                                     if not isinstance(kv[1], (dict, list)))))
        for k, x in v.items():
            flat(out, prefix + "." + k if prefix else k, x)
    else:
        out.append("%s=%s" % (prefix, json.dumps(v) if isinstance(v, list) else v))
for p, line in last.items():
    out = []
    flat(out, "", json.loads(line))
    name = os.path.join(tmp, "stats.%d%s" % (p, "" if p in final else ".live"))
    with open(name + ".new", "w") as f:
        f.write("\n".join(out) + "\n")
    os.rename(name + ".new", name)
sys.exit(0 if want in last else 1)
PYEOF
}

# stat_field KEY [PID | ERRFILE]: a figure of a process's last stats object,
# KEY a path in it (net.connect.retries, mem.enomem; an object such as
# net.connect prints as "calls=3 failures=1 ...", a list as JSON); the
# process: PID, the `pushed` one whose stderr went to ERRFILE, or else the
# last `pushed` one. Once it has exited, these are its final figures (kept in
# $TMP/stats.PID by push_sync).
stat_field() {
    local key=$1 pid=${2:-$(cat "$TMP/pushed.pid")} cache
    case $pid in
    *[!0-9]*) [ -f "$pid.pid" ] || fail "stat_field $key: no pushed process wrote to $pid"
              pid=$(cat "$pid.pid") ;;
    esac
    cache="$TMP/stats.$pid"
    if [ ! -s "$cache" ]; then
        push_sync "$pid" || fail "no stats pushed by pid $pid"
        [ -s "$cache" ] || cache="$cache.live"
    fi
    local re="^${key//./\\.}="
    grep -q "$re" "$cache" || fail "no figure $key in the stats of pid $pid"
    sed -n "s/$re//p" "$cache"
}

# push_mark, then stat_sum KEY: KEY summed over the final figures of every
# process that pushed since the mark (a program and the ones it started);
# stat_pids: their pids; stat_count COMM: how many were named COMM.
push_mark() { push_flush; echo $(($(wc -l <"$TMP/push.jsonl") + 1)) >"$TMP/push.mark"; }
stat_sum() { push_flush; push_sum "$1" "$(cat "$TMP/push.mark")"; }
# stat_table KEY...: one line per process that pushed since the mark: its
# pid, then KEY of its final figures, for each KEY.
stat_table() {
    push_flush
    tail -n +"$(cat "$TMP/push.mark")" "$TMP/push.jsonl" | "$PY" -S -E -c '
import json, sys
markers = set(open(sys.argv[1]).read().split())
last = {}
for d in map(json.loads, sys.stdin):
    if str(d["pid"]) not in markers:
        last[d["pid"]] = d
def get(d, key):
    for k in key.split("."):
        d = d[k]
    return d
for pid, d in last.items():
    print(pid, *(get(d, k) for k in sys.argv[2:]))' "$TMP/push.markers" "$@"
}
stat_pids() { stat_table; }
stat_count() { stat_table comm | grep -c " $1\$" || true; }
# need FILE...: what a test runs from the build. `make check-integration` builds
# it all first (the library, the CLI, build/bin/*); a test never runs make.
need() {
    local f
    for f; do [ -e "$f" ] || fail "$f is missing (make check-integration builds it)"; done
}

pass() { echo "  ok: $*"; }
fail() { echo "  FAIL: $*" >&2; exit 1; }
skip() { echo "  skip: $*" >&2; exit 77; }
