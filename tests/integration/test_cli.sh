#!/usr/bin/env bash
# alone: ls and metrics of every process are compared, and other tests' processes would show in them
# The reshim CLI against live shimmed programs: two python3 clients
# (cli_client.py) fetch from a flapping HTTP server (peers/flap_http.py), so
# their connects are refused now and then and the shim retries, while they
# allocate; a third python3 runs without the shim. Every command is run for
# real against the library's stats sockets (a private RESHIM_RUN_DIR):
# ls (and stale sockets), stats (JSON keys of libreshim(7), human output),
# metrics (promtool, two processes merged), trim, heap, config --check, run
# (exec, LD_PRELOAD kept), watch (plain lines off a terminal; on a
# pseudo-terminal the bar, colour, NO_COLOR, the terminal restored), a
# stopped process (timeouts), a process that ends while watched, an
# abstract socket, and the exit codes.
source "$(dirname "$0")/lib.sh"

RESHIM="${RESHIM_CLI:-$ROOT/build/reshim}"   # RESHIM_CLI: test another build (test_cli_static.sh)
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
[ -x "$RESHIM" ] || fail "$RESHIM is missing (make all)"
CLIENT="$ROOT/tests/integration/cli_client.py"
PTY="$ROOT/tests/integration/cli_pty.py"

export RESHIM_RUN_DIR="$TMP/run"   # the shim creates it 0700; the CLI reads the same variable
unset RESHIM_DISABLE NO_COLOR

# json_get FILE EXPR: evaluates a python expression on the JSON in FILE (as j).
json_get() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
# has_esc FILE: does FILE hold an escape byte?
has_esc() { LC_ALL=C grep -q $'\x1b' "$1"; }

# ---- the peers and the processes ------------------------------------------------
port=$(free_port)
spawn "$PY" "$PEERS/flap_http.py" "$port" 0.3 0.2 >"$TMP/flap.out" 2>&1
wait_port "$port" 10 || fail "flap server did not come up"
URL="http://127.0.0.1:$port/"

# (LD_PRELOAD set on the command itself, not through with_shim, so that $! is
# the pid of python3 and not of a subshell)
RESHIM_MEM_BUDGET=200M LD_PRELOAD="$SHIM" "$PY" "$CLIENT" "$URL" 200 >"$TMP/a.out" 2>"$TMP/a.err" &
A=$!; CHILDREN+=($A)
LD_PRELOAD="$SHIM" "$PY" "$CLIENT" "$URL" 200 >"$TMP/b.out" 2>"$TMP/b.err" &
B=$!; CHILDREN+=($B)
"$PY" -c 'import time; time.sleep(200)' &
PLAIN=$!; CHILDREN+=($PLAIN)

# Until both answer and have retried at least once (a connect refused while
# the server was down).
retries_of() { "$RESHIM" stats "$1" --json 2>/dev/null | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["net"]["connect"]["retries"])' 2>/dev/null || echo 0; }
for i in $(seq 1 200); do
    ra=$(retries_of "$A"); rb=$(retries_of "$B")
    [ "${ra:-0}" -ge 1 ] && [ "${rb:-0}" -ge 1 ] && break
    sleep 0.1
done
[ -S "$RESHIM_RUN_DIR/$A.sock" ] || fail "no stats socket $RESHIM_RUN_DIR/$A.sock (is shim/server.c in the library?)"
[ "${ra:-0}" -ge 1 ] && [ "${rb:-0}" -ge 1 ] || fail "the clients did not retry within 20 s (retries $ra, $rb)"
pass "two shimmed clients ($A with a 200M budget, $B) retrying against a flapping server; $PLAIN without the shim"

# ---- ls ---------------------------------------------------------------------------
"$RESHIM" ls >"$TMP/ls" 2>"$TMP/ls.err" || fail "ls exited $?: $(cat "$TMP/ls.err")"
sed 's/^/    /' "$TMP/ls"
head -n 1 "$TMP/ls" | grep -q "^PID *COMMAND *UPTIME *RSS / BUDGET *MEM % *STATE *RETRIES *RECOVERED" ||
    fail "ls header: $(head -n 1 "$TMP/ls")"
cols=$(awk '{print $1}' "$TMP/ls")
grep -qx "$A" <<<"$cols" || fail "ls does not list $A"
grep -qx "$B" <<<"$cols" || fail "ls does not list $B"
grep -qx "$PLAIN" <<<"$cols" && fail "ls lists $PLAIN, which runs without the shim"
grep "^$A " "$TMP/ls" | grep -q "python3 .* / 200 MB .*%  *ok " || fail "ls row of $A: $(grep "^$A " "$TMP/ls")"
has_esc "$TMP/ls" && fail "ls wrote escape bytes to a pipe"
"$RESHIM" ls --json >"$TMP/ls.json" || fail "ls --json failed"
[ "$(json_get "$TMP/ls.json" "sorted(r['pid'] for r in j if r['pid'] in ($A,$B))")" = "[$A, $B]" ] ||
    fail "ls --json: $(cat "$TMP/ls.json")"
[ "$(json_get "$TMP/ls.json" "[r for r in j if r['pid']==$A][0]['budget_bytes']")" = $((200 * 1048576)) ] ||
    fail "ls --json: budget of $A"
"$RESHIM" ls -q | grep -qx "$A" || fail "ls -q does not print $A"
pass "ls: one row each for $A and $B (not $PLAIN), --json, -q"

# Stale sockets: a socket file of a pid that is gone is removed; live ones stay.
dead=$(sh -c 'echo $$')
"$PY" -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$RESHIM_RUN_DIR/$dead.sock"
[ -S "$RESHIM_RUN_DIR/$dead.sock" ] || fail "could not make a fake socket"
"$RESHIM" ls >/dev/null 2>&1 || fail "ls with a stale socket failed"
[ -e "$RESHIM_RUN_DIR/$dead.sock" ] && fail "ls left the stale socket $dead.sock"
[ -S "$RESHIM_RUN_DIR/$A.sock" ] || fail "ls removed the live socket of $A"
pass "ls removes the stale socket of dead pid $dead and keeps the live ones"

# No process at all: a message, exit 0; nothing on stdout off a terminal, [] with --json.
# Other shimmed processes of this uid (a lingering child of an earlier test,
# anything else running as root) answer on abstract sockets, which ls lists
# whatever the run directory: so, as root, ls runs in a network namespace of
# its own, whose abstract namespace is empty.
mkdir -m 700 "$TMP/empty"
alone=(env RESHIM_RUN_DIR="$TMP/empty")
# As root, ls also looks in every user's default run directory and abstract
# names: alone means a network namespace (abstract sockets) and a mount
# namespace with empty /tmp and /run/user (run directories) of its own.
if [ "$(id -u)" = 0 ] && unshare -n -m true 2>/dev/null; then
    # Every user's run directory is hidden under an empty tmpfs (not /tmp
    # itself: the CLI and this test may live there).
    alone=(unshare -n -m sh -c 'for d in /tmp/reshim-* /run/user; do
            [ ! -d "$d" ] || [ -L "$d" ] || mount -t tmpfs tmpfs "$d" || exit 1; done &&
        exec "$@"' sh "${alone[@]}")
fi
"${alone[@]}" "$RESHIM" ls >"$TMP/ls0" 2>"$TMP/ls0.err" || fail "ls with no process: exit $?"
if [ "${alone[0]}" = unshare ] || ! grep -q . "$TMP/ls0"; then
    grep -q "^reshim: no process" "$TMP/ls0.err" || fail "ls with no process said: $(cat "$TMP/ls0.err" "$TMP/ls0")"
    [ -s "$TMP/ls0" ] && fail "ls with no process wrote to stdout: $(cat "$TMP/ls0")"
    [ "$("${alone[@]}" "$RESHIM" ls --json)" = "[]" ] || fail "ls --json with no process: $("${alone[@]}" "$RESHIM" ls --json)"
    pass "ls with no process: a message on stderr, nothing on stdout, [] with --json"
else
    echo "    (not checked: ls with no process; other shimmed processes of this uid run: $(awk '{print $1}' "$TMP/ls0" | tr '\n' ' '))"
fi

# ---- stats ------------------------------------------------------------------------
"$RESHIM" stats "$A" --json >"$TMP/a.json" || fail "stats --json failed"
"$PY" - "$TMP/a.json" "$A" <<'PYEOF' || fail "stats --json does not hold the keys of libreshim(7)"
import json, sys
j = json.load(open(sys.argv[1]))
pid = int(sys.argv[2])
missing = []
def need(obj, keys, where):
    for k in keys:
        if not isinstance(obj, dict) or k not in obj:
            missing.append(where + k)
need(j, ["pid", "comm", "version", "uptime_s", "net", "mem"], "")
calls = ["calls", "failures", "retries", "recovered", "gave_up"]
for c in ["connect", "dns", "send", "recv"]:
    need(j["net"], [c], "net.")
    need(j["net"].get(c, {}), calls, "net.%s." % c)
need(j["net"], ["destinations"], "net.")
for d in j["net"]["destinations"]:
    need(d, ["dest", "calls", "failures", "retries", "recovered", "last_error", "breaker"], "dest.")
need(j["mem"], ["rss_bytes", "rss_peak_bytes", "heap_live_bytes", "heap_peak_bytes", "allocs",
                "frees", "budget_bytes", "budget_source", "state", "trims", "trimmed_bytes",
                "enomem"], "mem.")
if missing:
    sys.exit("missing: " + ", ".join(missing))
assert j["pid"] == pid, j["pid"]
assert j["mem"]["budget_source"] in ("env", "cgroup", "none"), j["mem"]["budget_source"]
assert j["mem"]["state"] in ("ok", "warn", "critical", "over"), j["mem"]["state"]
assert j["mem"]["budget_bytes"] == 200 << 20 and j["mem"]["budget_source"] == "env"
assert j["net"]["connect"]["retries"] >= 1 and j["mem"]["heap_live_bytes"] > 0
assert any(d["dest"].startswith("127.0.0.1:") for d in j["net"]["destinations"])
print("    keys ok: pid %d comm %s, connect %s, rss %d, state %s" % (
    j["pid"], j["comm"], j["net"]["connect"], j["mem"]["rss_bytes"], j["mem"]["state"]))
PYEOF
"$RESHIM" stats "$A" >"$TMP/a.txt" || fail "stats failed"
sed 's/^/    /' "$TMP/a.txt"
grep -q "^pid $A  python3" "$TMP/a.txt" || fail "stats does not name pid $A"
grep -q "^connect " "$TMP/a.txt" || fail "stats has no connect line"
grep -q "^destinations: " "$TMP/a.txt" || fail "stats has no destinations section"
grep -q "^127.0.0.1:$port  *out " "$TMP/a.txt" || fail "stats does not list 127.0.0.1:$port"
grep -q "^  budget   200 MB (from env)" "$TMP/a.txt" || fail "stats does not show the budget"
has_esc "$TMP/a.txt" && fail "stats wrote escape bytes to a pipe"
pass "stats --json has the keys of libreshim(7); stats names pid $A and 127.0.0.1:$port"

# ---- metrics ----------------------------------------------------------------------
"$RESHIM" metrics "$A" "$B" >"$TMP/m2" || fail "metrics $A $B exited $?"
dups=$(grep '^# TYPE' "$TMP/m2" | awk '{print $3}' | sort | uniq -d)
[ -z "$dups" ] || fail "metrics families more than once: $dups"
dups=$(grep '^# HELP' "$TMP/m2" | awk '{print $3}' | sort | uniq -d)
[ -z "$dups" ] || fail "metrics HELP lines more than once: $dups"
grep -q "pid=\"$A\"" "$TMP/m2" && grep -q "pid=\"$B\"" "$TMP/m2" || fail "metrics lack one of the pids"
fam=$(grep -c '^# TYPE' "$TMP/m2")
"$RESHIM" metrics >"$TMP/mall" || fail "metrics (all) exited $?"
grep -q "pid=\"$A\"" "$TMP/mall" || fail "metrics (all) lack $A"
if command -v promtool >/dev/null; then
    promtool check metrics <"$TMP/m2" >"$TMP/prom" 2>&1 || { cat "$TMP/prom" >&2; fail "promtool rejects metrics $A $B"; }
    promtool check metrics <"$TMP/mall" >"$TMP/prom" 2>&1 || { cat "$TMP/prom" >&2; fail "promtool rejects metrics"; }
    pass "metrics $A $B: $fam families, each once, both pids; promtool check metrics accepts it and the all-process text"
else
    echo "  skip: promtool is not installed (apt-get install prometheus): the exposition was not validated" >&2
    pass "metrics $A $B: $fam families, each once, both pids (promtool absent: not validated)"
fi

# ---- trim, heap -------------------------------------------------------------------
"$RESHIM" trim "$A" >"$TMP/trim" 2>"$TMP/trim.err" || fail "trim exited $?: $(cat "$TMP/trim.err")"
grep -Eq "^released [0-9.]+ (B|KB|MB|GB)" "$TMP/trim" || fail "trim said: $(cat "$TMP/trim")"
# The process allows one requested trim a second: asked again until it accepts.
trim_json() { "$RESHIM" trim "$A" --json >"$TMP/trim.json" 2>"$TMP/trim.err"; }
wait_until 3 trim_json || fail "trim --json: $(cat "$TMP/trim.err")"
json_get "$TMP/trim.json" "int(j['trimmed_bytes'])" >/dev/null || fail "trim --json: $(cat "$TMP/trim.json")"
pass "trim: $(cat "$TMP/trim"); --json: $(cat "$TMP/trim.json")"
rc=0; "$RESHIM" heap "$A" >"$TMP/heap" 2>"$TMP/heap.err" || rc=$?
[ "$rc" = 0 ] || fail "heap exited $rc: $(cat "$TMP/heap.err")"
grep -Eq "LIVE \(EST\.\)|no allocation site sampled yet" "$TMP/heap" || fail "heap said: $(cat "$TMP/heap")"
pass "heap: $(head -n 2 "$TMP/heap" | cut -c1-120 | tr '\n' '|')"

# ---- config --check ---------------------------------------------------------------
clean=(env -u RESHIM_RUN_DIR -u RESHIM_RETRIES -u RESHIM_MEM_BUDGET -u RESHIM_LOG)
"${clean[@]}" "$RESHIM" config --check >"$TMP/cfg" 2>"$TMP/cfg.err" || fail "config --check on a clean environment exited $?"
grep -q "^RESHIM_RETRIES  *5  *default" "$TMP/cfg" || fail "config --check: $(cat "$TMP/cfg")"
rc=0; "${clean[@]}" RESHIM_RETRIES=lots RESHIM_MEM_BUDGET=300M "$RESHIM" config --check >"$TMP/cfg2" 2>"$TMP/cfg2.err" || rc=$?
[ "$rc" = 2 ] || fail "config --check with RESHIM_RETRIES=lots exited $rc"
grep -q "RESHIM_RETRIES=lots.*whole number" "$TMP/cfg2.err" || fail "config --check said: $(cat "$TMP/cfg2.err")"
grep -q "^RESHIM_MEM_BUDGET  *300M  *env" "$TMP/cfg2" || fail "config --check did not show RESHIM_MEM_BUDGET=300M"
pass "config --check: 0 on a clean environment; 2 with RESHIM_RETRIES=lots: $(head -n 1 "$TMP/cfg2.err")"

# ---- run --------------------------------------------------------------------------
echo 'int reshim_test_marker;' | cc -shared -fPIC -x c - -o "$TMP/other.so"
cat >"$TMP/run.py" <<'PYEOF'
import os
maps = open("/proc/self/maps").read()
print(os.getpid())
print(os.environ.get("LD_PRELOAD", ""))
print("shim" if "libreshim.so" in maps else "noshim", "other" if "other.so" in maps else "noother")
print(os.environ.get("RESHIM_MEM_BUDGET", ""), os.environ.get("RESHIM_RETRIES", ""))
PYEOF
LD_PRELOAD="$TMP/other.so" bash -c 'echo $$; exec "$1" run --budget 300M --retries 2 -- "$2" "$3"' _ "$RESHIM" "$PY" "$TMP/run.py" >"$TMP/run.out" 2>"$TMP/run.err" ||
    fail "run exited $?: $(cat "$TMP/run.err")"
mapfile -t r <"$TMP/run.out"
[ "${r[0]}" = "${r[1]}" ] || fail "run changed the pid (${r[0]} -> ${r[1]}): not an exec"
[ "${r[2]}" = "$SHIM:$TMP/other.so" ] || fail "run: LD_PRELOAD=${r[2]}, expected $SHIM:$TMP/other.so (the shim first)"
[ "${r[3]}" = "shim other" ] || fail "run: the program's maps: ${r[3]}"
[ "${r[4]}" = "300M 2" ] || fail "run: options not passed: ${r[4]}"
LD_PRELOAD="$SHIM" "$RESHIM" run -- "$PY" "$TMP/run.py" >"$TMP/run2.out" || fail "run with the shim already preloaded failed"
[ "$(sed -n 2p "$TMP/run2.out")" = "$SHIM" ] || fail "run added the shim twice: $(sed -n 2p "$TMP/run2.out")"
rc=0; "$RESHIM" run --retries lots -- true 2>"$TMP/run3.err" || rc=$?
[ "$rc" = 2 ] && grep -q "retries lots" "$TMP/run3.err" || fail "run --retries lots exited $rc: $(cat "$TMP/run3.err")"
pass "run: exec (pid ${r[0]} kept), LD_PRELOAD=${r[2]} (kept, the shim put first, once), libreshim.so mapped; a bad value exits 2"

# ---- watch, off a terminal --------------------------------------------------------
rc=0; timeout 1 "$RESHIM" watch "$A" -n 0.2 >"$TMP/w.out" 2>"$TMP/w.err" || rc=$?
[ "$rc" = 124 ] || fail "watch exited $rc before the timeout: $(cat "$TMP/w.err")"
n=$(grep -c "pid=$A rss_bytes=[0-9]* budget_bytes=$((200 * 1048576)) .*state=[a-z]* .*calls_per_s=" "$TMP/w.out" || true)
[ "$n" -ge 3 ] || fail "watch -n 0.2 printed $n frame lines in 1 s: $(cat "$TMP/w.out")"
has_esc "$TMP/w.out" && fail "watch wrote escape bytes to a pipe"
sed -n 3p "$TMP/w.out" | grep -Eq "calls_per_s=[0-9]+\.[0-9] retries_per_s=[0-9]+\.[0-9]" || fail "watch: no rates on the third line"
echo "    $(sed -n 3p "$TMP/w.out")"
pass "watch off a terminal: $n plain lines in 1 s, no escape bytes, rates from consecutive frames"

# ---- watch, on a pseudo-terminal --------------------------------------------------
TERM=xterm LANG=C.UTF-8 "$PY" "$PTY" "$TMP/pty1" 1.5 KEY "$RESHIM" watch "$A" -n 0.2 >"$TMP/pty1.res" ||
    fail "cli_pty.py failed"
grep -q "^exit 0" "$TMP/pty1.res" || fail "watch on a terminal, q: $(cat "$TMP/pty1.res")"
grep -q "^termios restored yes" "$TMP/pty1.res" || fail "watch left the terminal in raw mode"
LC_ALL=C grep -aqF $'\e[?1049h' "$TMP/pty1" || fail "watch did not use the alternate screen"
LC_ALL=C grep -aqF $'\e[?25l' "$TMP/pty1" || fail "watch did not hide the cursor"
tail -c 200 "$TMP/pty1" | LC_ALL=C grep -aqF $'\e[?25h\e[?1049l' || fail "watch did not restore the cursor and the screen at the end"
grep -aqF "█" "$TMP/pty1" || fail "watch drew no bar"
LC_ALL=C grep -aqF $'\e[32m█' "$TMP/pty1" || fail "watch's bar is not green for state ok"
grep -aq "127.0.0.1:$port" "$TMP/pty1" || fail "watch shows no destination"
pass "watch on a terminal: alternate screen, green bar, destinations; q quits (exit 0), the terminal restored"
NO_COLOR=1 TERM=xterm LANG=C.UTF-8 "$PY" "$PTY" "$TMP/pty2" 1 TERM "$RESHIM" watch "$A" -n 0.2 >"$TMP/pty2.res"
grep -q "^exit 0" "$TMP/pty2.res" || fail "watch on a terminal, SIGTERM: $(cat "$TMP/pty2.res")"
grep -q "^termios restored yes" "$TMP/pty2.res" || fail "watch left the terminal in raw mode after SIGTERM"
grep -aqF "█" "$TMP/pty2" || fail "watch with NO_COLOR drew no bar"
LC_ALL=C grep -aqE $'\e\\[[0-9;]*m' "$TMP/pty2" && fail "watch with NO_COLOR=1 used colour (SGR)"
tail -c 200 "$TMP/pty2" | LC_ALL=C grep -aqF $'\e[?1049l' || fail "watch did not restore the screen on SIGTERM"
pass "watch with NO_COLOR=1: the bar, no SGR at all; SIGTERM restores the terminal"

# A process that ends while watched: a message, exit 0.
LD_PRELOAD="$SHIM" "$PY" -c '
import socket, sys, time
end = time.monotonic() + 3
while time.monotonic() < end:  # connects are slow points: the stats thread starts at one
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()
    except OSError:
        pass
    time.sleep(0.1)' "$port" &
E=$!; CHILDREN+=($E)
wait_until 3 test -S "$RESHIM_RUN_DIR/$E.sock" || true
rc=0; timeout 10 "$RESHIM" watch "$E" -n 0.2 >"$TMP/we.out" 2>"$TMP/we.err" || rc=$?
[ "$rc" = 0 ] || fail "watch of a process that exits: exit $rc: $(cat "$TMP/we.err")"
grep -q "^reshim: process $E (python3) exited" "$TMP/we.err" || fail "watch said: $(cat "$TMP/we.err")"
pass "watch of a process that ends: $(wc -l <"$TMP/we.out") lines, then '$(cat "$TMP/we.err")', exit 0"

# ---- a stopped process never hangs the CLI ------------------------------------------
kill -STOP "$B"
t0=$(date +%s%N)
rc=0; "$RESHIM" stats "$B" >/dev/null 2>"$TMP/stop.err" || rc=$?
"$RESHIM" ls >"$TMP/ls.stop" 2>"$TMP/ls.stop.err" || true
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$B"
[ "$rc" = 1 ] || fail "stats of a stopped process exited $rc"
grep -q "no answer within 2.0 s" "$TMP/stop.err" || fail "stats of a stopped process said: $(cat "$TMP/stop.err")"
[ "$ms" -lt 6500 ] || fail "stats + ls of a stopped process took $ms ms"
awk '{print $1}' "$TMP/ls.stop" | grep -qx "$A" || fail "ls with a stopped process did not list $A"
pass "a stopped process: stats gives up after 2 s (exit 1), ls still lists the others ($ms ms for both)"

# ---- an abstract socket (the run directory cannot be used) --------------------------
mkdir -m 755 "$TMP/open"   # open to others: the shim refuses it and falls back
RESHIM_RUN_DIR="$TMP/open" LD_PRELOAD="$SHIM" "$PY" "$CLIENT" "$URL" 60 >/dev/null 2>"$TMP/c.err" &
C=$!; CHILDREN+=($C)
wait_until 10 grep -q "@reshim-$(id -u)/$C\$" /proc/net/unix || true
grep -q "@reshim-$(id -u)/$C\$" /proc/net/unix || fail "no abstract socket for $C: $(cat "$TMP/c.err")"
"$RESHIM" ls | awk '{print $1}' | grep -qx "$C" || fail "ls does not list $C (abstract socket)"
"$RESHIM" stats "$C" --json | grep -q "\"pid\":$C" || fail "stats of $C over its abstract socket failed"
pass "abstract socket @reshim-$(id -u)/$C: listed by ls, read by stats"

# ---- exit codes and help ------------------------------------------------------------
code() { local rc=0; "$RESHIM" "$@" >/dev/null 2>&1 || rc=$?; echo "$rc"; }
[ "$(code bogus)" = 2 ] || fail "an unknown command did not exit 2"
[ "$(code stats 999999)" = 3 ] || fail "stats 999999 did not exit 3"
[ "$(code stats "$PLAIN")" = 3 ] || fail "stats of a process without the shim did not exit 3"
[ "$(code stats)" = 2 ] || fail "stats without a PID did not exit 2"
[ "$(code watch)" = 2 ] || fail "watch without a PID did not exit 2"
[ "$(code trim abc)" = 2 ] || fail "trim abc did not exit 2"
[ "$(code watch "$A" -n 0)" = 2 ] || fail "watch -n 0 did not exit 2"
[ "$(code heap "$A" --top 0)" = 2 ] || fail "heap --top 0 did not exit 2"
[ "$(code run)" = 2 ] || fail "run without CMD did not exit 2"
[ "$(code watch 999999)" = 3 ] || fail "watch 999999 did not exit 3"
msg=$("$RESHIM" stats "$PLAIN" 2>&1 || true)
grep -q "^reshim: process $PLAIN (python3) has no reshim stats socket" <<<"$msg" ||
    fail "stats of a process without the shim: $msg"
"$RESHIM" --help | grep -q "^usage: reshim" || fail "reshim --help"
[ "$(code help)" = 0 ] && [ "$(code -h)" = 0 ] || fail "reshim help / -h"
for c in ls stats watch metrics trim heap run config; do
    "$RESHIM" "$c" --help | grep -q "^examples:" || fail "reshim $c --help has no examples"
done
[ "$("$RESHIM" --version)" = "reshim $VERSION" ] || fail "reshim --version: $("$RESHIM" --version)"
pass "exit codes: unknown command 2, no such pid 3, no shim 3, missing or bad argument 2; --help of each command"

# ---- option forms: every command parses with getopt_long -------------------------
# --opt=value and --opt value (and -xVALUE, -x VALUE) mean the same everywhere;
# options may come before or after the PID; an unknown option, a missing value
# and a value given to a flag are usage errors (2) that name the option.
same() {   # same DESCRIPTION ARGS1 :: ARGS2: both exit 0 with the same number of lines
    local what=$1 a=() b=(); shift
    while [ "$1" != :: ]; do a+=("$1"); shift; done; shift; b=("$@")
    "$RESHIM" "${a[@]}" >"$TMP/f1" 2>"$TMP/f1.err" || fail "$what: ${a[*]}: exit $?: $(cat "$TMP/f1.err")"
    "$RESHIM" "${b[@]}" >"$TMP/f2" 2>"$TMP/f2.err" || fail "$what: ${b[*]}: exit $?: $(cat "$TMP/f2.err")"
    [ "$(wc -l <"$TMP/f1")" = "$(wc -l <"$TMP/f2")" ] && [ -s "$TMP/f1" ] ||
        fail "$what: '${a[*]}' gave $(wc -l <"$TMP/f1") lines, '${b[*]}' $(wc -l <"$TMP/f2")"
}
same "watch --count" watch "$A" --count=2 --json -n 0.05 :: watch --count 2 --json "$A" -n0.05
[ "$(wc -l <"$TMP/f1")" = 2 ] || fail "watch --count=2 printed $(wc -l <"$TMP/f1") frames"
same "watch --interval" watch --interval=50ms -c 1 "$A" :: watch "$A" --interval 50ms --count=1
same "heap --top" heap "$A" --top=2 --json :: heap --json -n 2 "$A"
same "stats --json" stats --json "$A" :: stats "$A" --json
same "ls --json" ls --json :: --timeout=2 ls --json
same "--timeout" --timeout=2 stats "$A" :: --timeout 2 stats "$A"
same "config" config --json --check :: config --check --json
same "run --retries" run --retries=2 --log=error -- "$PY" -c 'import os; print(os.environ["RESHIM_RETRIES"])' \
    :: run --retries 2 --log error -- "$PY" -c 'import os; print(os.environ["RESHIM_RETRIES"])'
[ "$(cat "$TMP/f1")" = 2 ] && [ "$(cat "$TMP/f2")" = 2 ] || fail "run --retries=2: $(cat "$TMP/f1" "$TMP/f2")"
# collect --listen=PATH --count=1: one datagram pushed by a shimmed process at its exit.
"$RESHIM" collect --listen="$TMP/c1.sock" --count=1 --json >"$TMP/c1.out" 2>"$TMP/c1.err" &
COL=$!; CHILDREN+=($COL)
wait_until 5 test -S "$TMP/c1.sock" || true
[ -S "$TMP/c1.sock" ] || fail "collect --listen=$TMP/c1.sock: no socket: $(cat "$TMP/c1.err")"
RESHIM_PUSH="$TMP/c1.sock" LD_PRELOAD="$SHIM" "$PY" -c 'pass'
wait "$COL" || fail "collect --listen=... --count=1: exit $?: $(cat "$TMP/c1.err")"
json_get "$TMP/c1.out" "int(j['pid'])" >/dev/null || fail "collect --count=1: $(cat "$TMP/c1.out")"
# serve --listen=ADDR and --listen ADDR: the same refusal of a bad address.
"$RESHIM" serve --listen=not-an-address >/dev/null 2>"$TMP/s1.err" && fail "serve --listen=not-an-address ran"
"$RESHIM" serve --listen not-an-address >/dev/null 2>"$TMP/s2.err" && fail "serve --listen not-an-address ran"
cmp -s "$TMP/s1.err" "$TMP/s2.err" || fail "serve --listen=X and --listen X differ: $(cat "$TMP/s1.err" "$TMP/s2.err")"
usage_is() {   # usage_is PATTERN ARGS...: exit 2 and PATTERN on stderr
    local pat=$1 rc=0; shift
    "$RESHIM" "$@" >/dev/null 2>"$TMP/u.err" || rc=$?
    [ "$rc" = 2 ] && grep -q -- "$pat" "$TMP/u.err" || fail "reshim $*: exit $rc, stderr: $(cat "$TMP/u.err")"
}
for c in ls stats watch metrics trim heap config doctor collect serve run; do
    usage_is "^reshim: $c: unknown option '--bogus'" "$c" --bogus
done
usage_is "^reshim: unknown option '--bogus'" --bogus
usage_is "^reshim: watch: --count needs a value" watch "$A" --count
usage_is "^reshim: heap: --top needs a value" heap "$A" --top
usage_is "^reshim: collect: --listen needs a value" collect --listen
usage_is "^reshim: stats: --json takes no value" stats "$A" --json=yes
usage_is "^reshim: run: --budget needs a value" run --budget
usage_is "^reshim: stats: unexpected argument '$B'" stats "$A" "$B"
# run stops at CMD: what follows is CMD's own (-c here is python3's).
[ "$("$RESHIM" run -- "$PY" -c 'print(1)' --bogus)" = 1 ] || fail "run passed CMD's options to getopt"
[ "$("$RESHIM" run "$PY" -c 'import sys; print(sys.argv[1])' --json)" = --json ] || fail "run without -- took CMD's options"
pass "option forms: --opt=value and --opt value alike in watch, heap, stats, ls, config, run, collect, serve and --timeout; unknown/missing/extra: exit 2 naming it"
