#!/usr/bin/env bash
# alone: it works in the shared run directories (/tmp/reshim-UID, abstract names) that other tests' processes use
# Another uid cannot read or drive a process's stats (needs root; the other
# uids are played with setpriv). A real python3 app runs under the shim.
#   - Run-dir socket of a root app: uid 65534 cannot connect (0700 dir, 0600
#     socket); root can. Control: with the dir and socket opened up on
#     purpose, uid 65534 connects, and SO_PEERCRED still answers every
#     request with {"error":"permission denied"} and nothing else.
#   - Abstract socket (anyone may connect): stats, metrics, config, heap,
#     trim, watch, pipelined requests from uid 65534: one error line, EOF,
#     nothing else; its trim did not run (root's trim, the control, is
#     counted).
#   - The CLI run as uid 65534 (ls, stats, metrics, trim, heap, watch)
#     prints nothing of the root app; as root it does (control).
#   - A fake server of uid 65534 on @reshim-0/<pid> is not believed by
#     root's CLI (ls lists no row, stats/metrics fail and name the uid);
#     control: the same fake server run as root is listed.
#   - Root's CLI looks at other users' sockets too, and believes one only
#     when that user's process of that pid serves it: a fake of uid 65534 on
#     @reshim-65534/<another pid> is refused (control: on its own pid it is
#     listed); a link planted in /tmp/reshim-65534 is not followed.
#   - A squatter of uid 65534 holding @reshim-0/<pid> before the app starts
#     gets nothing: the app warns, runs on and its output is intact (the
#     only effect is that this process has no stats socket).
#   - A root process that dropped to uid 65534 (setuid: not dumpable, so the
#     kernel keeps that uid out of its /proc/PID, the control) makes its
#     socket again under its new uid (@reshim-65534/<pid>): uid 65534 gets
#     the refusal for stats and trim; root is served, and root's CLI finds it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/security_lib.sh"
security_require_root
RESHIM="$ROOT/build/reshim"
[ -x "$RESHIM" ] || fail "$RESHIM is missing (make all)"
security_write_app
DENIED='{"error":"permission denied"}'

# ---- the run-dir socket ----
RUN="$TMP/run"
start_app pathapp env RESHIM_RUN_DIR="$RUN" RESHIM_HEAP_SAMPLE=4096
S="$RUN/$APP_PID.sock"; PATH_PID=$APP_PID
wait_sock "$S" || { cat "$TMP/pathapp.err" >&2; fail "no socket $S"; }
[ "$(stat -c '%u %a' "$RUN") $(stat -c '%u %a' "$S")" = "0 700 0 600" ] ||
    fail "run dir / socket: $(stat -c '%u %a' "$RUN") / $(stat -c '%u %a' "$S")"
for req in stats trim "heap 5" config "watch 10"; do
    ans=$(ask "$S" "$req" as_uid $NOBODY)
    [ "$ans" = "connect error: PermissionError" ] || fail "uid $NOBODY, '$req' on $S: ${ans:0:120}"
done
ans=$(ask "$S" stats)
case "$ans" in "{\"pid\":$PATH_PID,"*) ;; *) fail "root on $S: ${ans:0:120}" ;; esac
pass "run-dir socket of a root app (dir 0700, socket 0600): uid $NOBODY cannot connect (stats, trim, heap, config, watch); root is served"

# Control: open the directory and the socket on purpose; the connect now
# works, and the peer check is what still refuses.
chmod 711 "$RUN"; chmod 666 "$S"
for req in stats trim "heap 5" config version 'stats\nstats\nmetrics'; do
    ans=$(ask "$S" "$req" as_uid $NOBODY)
    [ "$ans" = "$DENIED" ] || fail "control, opened dir: uid $NOBODY, '$req': ${ans:0:120}"
done
chmod 700 "$RUN"; chmod 600 "$S"
pass "control: with the dir 0711 and the socket 0666 uid $NOBODY connects, and every request gets exactly $DENIED (SO_PEERCRED)"

# ---- the abstract socket ----
start_app absapp env RESHIM_RUN_DIR=/nonexistent/run RESHIM_HEAP_SAMPLE=4096
A="@reshim-0/$APP_PID"; ABS_PID=$APP_PID
wait_abstract 0 "$ABS_PID" || { cat "$TMP/absapp.err" >&2; fail "no $A"; }
trims() { ask "$A" stats | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["mem"]["trims"])'; }
t0=$(trims)
for req in stats metrics config version help trim "heap 5" "watch 10" watch 'stats\nstats\ntrim' "trim ../../x" ""; do
    ans=$(ask "$A" "$req" as_uid $NOBODY)
    [ "$ans" = "$DENIED" ] || fail "uid $NOBODY, '$req' on $A: ${ans:0:120}"
done
# A client of another uid that sends nothing and does not close: the line, then EOF.
ans=$(as_uid $NOBODY "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect("\0" + sys.argv[1][1:])
out = b""
while True:
    d = s.recv(65536)
    if not d: break
    out += d
sys.stdout.write(out.decode())' "$A")
[ "$ans" = "$DENIED" ] || fail "uid $NOBODY, silent client: ${ans:0:120}"
t1=$(trims)
[ "$t0" = "$t1" ] || fail "a trim ran for uid $NOBODY: trims $t0 -> $t1"
ans=$(ask "$A" trim)
case "$ans" in '{"trimmed_bytes":'*) ;; *) fail "root's trim: $ans" ;; esac
t2=$(trims)
[ "$t2" = $((t1 + 1)) ] || fail "root's trim not counted: trims $t1 -> $t2"
pass "abstract socket: 12 requests of uid $NOBODY (stats, metrics, config, heap, trim, watch, pipelined, hostile, empty) and a silent client: each exactly $DENIED then EOF; its trims did not run (trims $t0 -> $t1); root's trim did ($t1 -> $t2)"

# ---- the CLI as another uid ----
out=$(as_uid $NOBODY "$RESHIM" ls 2>/dev/null || true)
if printf '%s\n' "$out" | grep -Eq "^($PATH_PID|$ABS_PID) "; then fail "uid $NOBODY's reshim ls lists a root app: $out"; fi
out=$(as_uid $NOBODY env RESHIM_RUN_DIR="$RUN" "$RESHIM" ls 2>&1 || true)
if printf '%s\n' "$out" | grep -Eq "^($PATH_PID|$ABS_PID) "; then fail "uid $NOBODY's reshim ls (root's run dir) lists a root app: $out"; fi
for pid in $PATH_PID $ABS_PID; do
    for cmd in "stats $pid" "stats $pid --json" "metrics $pid" "trim $pid" "heap $pid" "watch $pid -n 1"; do
        # shellcheck disable=SC2086
        rc=0; out=$(as_uid $NOBODY env RESHIM_RUN_DIR="$RUN" timeout 20 "$RESHIM" $cmd 2>"$TMP/cli.err") || rc=$?
        [ $rc != 0 ] && [ $rc != 124 ] || fail "uid $NOBODY: reshim $cmd exited $rc"
        [ -z "$out" ] || fail "uid $NOBODY: reshim $cmd printed: ${out:0:200}"
        grep -q . "$TMP/cli.err" || fail "uid $NOBODY: reshim $cmd failed without a message"
    done
done
t3=$(trims)
[ "$t3" = "$t2" ] || fail "uid $NOBODY's reshim trim ran a trim: $t2 -> $t3"
msg=$(as_uid $NOBODY env RESHIM_RUN_DIR="$RUN" "$RESHIM" stats "$ABS_PID" 2>&1 >/dev/null || true)
out=$(RESHIM_RUN_DIR="$RUN" "$RESHIM" ls)
printf '%s\n' "$out" | grep -q "^$PATH_PID " && printf '%s\n' "$out" | grep -q "^$ABS_PID " ||
    fail "root's reshim ls does not list both apps: $out"
[ "$(RESHIM_RUN_DIR="$RUN" "$RESHIM" stats "$PATH_PID" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')" = "$PATH_PID" ] ||
    fail "root's reshim stats $PATH_PID"
pass "reshim ls/stats/metrics/trim/heap/watch run as uid $NOBODY: no row, no data, exit != 0 with a message (\"${msg:0:90}\"); no trim ran; as root both apps are listed (control)"

stop_app pathapp; stop_app absapp
[ "$(sed -n 's/^done //p' "$TMP/pathapp.out") $(sed -n 's/^done //p' "$TMP/absapp.out")" = "2000 2000" ] ||
    fail "the apps' output changed: $(cat "$TMP/pathapp.out" "$TMP/absapp.out")"

# ---- a fake server on @reshim-0/<pid> ----
cat > "$TMP/fake.py" <<'PYEOF'
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind("\0reshim-%s/%s" % (sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else os.getpid())); s.listen(16)
print("listening", os.getpid(), flush=True)
# The version the real shim would give (lib.sh exports it).
stats = ('{"pid":%d,"comm":"FAKE","version":"%s","uptime_s":1,"net":{},'
         '"mem":{"rss_bytes":1}}\n' % (os.getpid(), os.environ.get("RESHIM_TEST_VERSION", "0"))).encode()
while True:
    c, _ = s.accept()
    try:
        c.settimeout(2); c.recv(4096); c.sendall(stats)
    except OSError:
        pass
    c.close()
PYEOF
chmod 644 "$TMP/fake.py"
# fake_server NAME UID [PREFIX...]: starts it; sets FAKE_PID. FAKE_AS: the
# pid its name claims (default: its own).
FAKE_AS=
fake_server() {
    local name=$1 uid=$2; shift 2
    "$@" "$PY" "$TMP/fake.py" "$uid" $FAKE_AS >"$TMP/$name.out" 2>&1 &
    CHILDREN+=($!)
    local i=0
    while ! grep -q '^listening' "$TMP/$name.out"; do
        i=$((i + 1)); [ $i -gt 250 ] && fail "$name: the fake server did not start"; sleep 0.02
    done
    FAKE_PID=$(sed -n 's/^listening //p' "$TMP/$name.out")
}
fake_server fake-root 0
out=$("$RESHIM" ls 2>&1)
printf '%s\n' "$out" | grep -Eq "^$FAKE_PID +FAKE " || fail "control: root's fake server is not listed: $out"
kill "$FAKE_PID"
fake_server fake-nobody 0 as_uid $NOBODY
out=$("$RESHIM" ls 2>"$TMP/ls.err")
if printf '%s\n' "$out" | grep -q FAKE; then fail "root's reshim ls believed uid $NOBODY's fake server: $out"; fi
grep -q "process $FAKE_PID: .*served by uid $NOBODY, not by root: not trusted" "$TMP/ls.err" ||
    fail "reshim ls: no warning about the fake server: $(cat "$TMP/ls.err")"
for cmd in "stats $FAKE_PID" "stats $FAKE_PID --json" "metrics $FAKE_PID" "heap $FAKE_PID"; do
    # shellcheck disable=SC2086
    rc=0; out=$("$RESHIM" $cmd 2>"$TMP/cli.err") || rc=$?
    [ $rc != 0 ] || fail "root: reshim $cmd believed the fake server"
    if printf '%s' "$out" | grep -q FAKE; then fail "root: reshim $cmd printed the fake's data: $out"; fi
    grep -q "served by uid $NOBODY" "$TMP/cli.err" || fail "root: reshim $cmd: $(cat "$TMP/cli.err")"
done
out=$("$RESHIM" metrics 2>/dev/null || true)
if printf '%s' "$out" | grep -q FAKE; then fail "root: reshim metrics (all) exported the fake: $out"; fi
kill "$FAKE_PID"
pass "a fake server of uid $NOBODY on @reshim-0/<pid>: root's reshim ls/stats/metrics/heap do not believe it ($(sed 's/^reshim: //' "$TMP/ls.err" | head -n 1)); control: run by root it is listed as FAKE"

# ---- root's CLI and the sockets of other users ----
# Root looks at every uid's abstract names and run directories: there, only
# that user's process of that pid is believed (SO_PEERCRED uid and pid).
setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups sleep 120 & VICTIM=$!; CHILDREN+=($VICTIM)
FAKE_AS=$VICTIM fake_server fake-other $NOBODY as_uid $NOBODY
rc=0; out=$("$RESHIM" stats "$VICTIM" 2>"$TMP/cli.err") || rc=$?
[ $rc != 0 ] && [ -z "$out" ] && grep -q "served by uid $NOBODY (pid $FAKE_PID), not by process $VICTIM of uid $NOBODY itself" "$TMP/cli.err" ||
    fail "root: reshim stats of a pid whose @reshim-$NOBODY name another process holds: rc $rc, $out $(cat "$TMP/cli.err")"
msg=$(sed 's/^reshim: //' "$TMP/cli.err" | head -n 1)
out=$("$RESHIM" ls 2>/dev/null || true)
if printf '%s\n' "$out" | grep -q FAKE; then fail "root's reshim ls believed a fake of another pid: $out"; fi
kill "$FAKE_PID"
FAKE_AS= fake_server fake-own $NOBODY as_uid $NOBODY
out=$("$RESHIM" ls 2>&1)
printf '%s\n' "$out" | grep -Eq "^$FAKE_PID +FAKE " || fail "control: uid $NOBODY's process on @reshim-$NOBODY/<its pid> is not listed by root: $out"
kill "$FAKE_PID"
# A link planted in uid 65534's run directory, named after its process, to
# root's app socket: never followed (and, swapped in after the check, it
# would be with uid 65534's rights only).
as_uid $NOBODY mkdir -p "/tmp/reshim-$NOBODY"
[ "$(stat -c %u "/tmp/reshim-$NOBODY")" = $NOBODY ] || skip "/tmp/reshim-$NOBODY is not uid $NOBODY's"
as_uid $NOBODY ln -sf "$S" "/tmp/reshim-$NOBODY/$VICTIM.sock"
rc=0; out=$("$RESHIM" stats "$VICTIM" 2>"$TMP/cli.err") || rc=$?
rm -f "/tmp/reshim-$NOBODY/$VICTIM.sock"
[ $rc = 3 ] && [ -z "$out" ] || fail "root: reshim stats through a planted link: rc $rc, $out $(cat "$TMP/cli.err")"
kill $VICTIM
pass "root's CLI and uid $NOBODY's sockets: a fake on @reshim-$NOBODY/<another pid> is refused (${msg:0:90}...); on its own pid it is listed (control); a link planted in /tmp/reshim-$NOBODY is not followed (exit 3)"

# ---- a squatter on the app's abstract name ----
rm -f "$TMP/quit.squat"
cat > "$TMP/squat.py" <<'PYEOF'
import os, socket, sys
s = socket.socket(socket.AF_UNIX); s.bind("\0reshim-0/" + sys.argv[1]); s.listen(4)
print("squatting", os.getpid(), flush=True)
while True:
    c, _ = s.accept(); c.close()
PYEOF
chmod 644 "$TMP/squat.py"
sh -c 'setpriv --reuid='$NOBODY' --regid='$NOBODY' --clear-groups "$1" "$2" $$ > "$3" 2>&1 &
       i=0; until grep -q squatting "$3"; do i=$((i+1)); [ $i -gt 250 ] && exit 9; sleep 0.02; done
       exec env LD_PRELOAD="$4" RESHIM_RUN_DIR=/nonexistent/run "$1" "$5" "$6"' \
    sh "$PY" "$TMP/squat.py" "$TMP/squatter.out" "$SHIM" "$TMP/app.py" "$TMP/quit.squat" >"$TMP/squat.out" 2>"$TMP/squat.err" &
CHILDREN+=($!)
i=0; while ! grep -q '^ready' "$TMP/squat.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 500 ] && { cat "$TMP/squat.err" >&2; fail "squat: the app did not start"; }; sleep 0.02
done
SQ_PID=$(sed -n 's/^ready //p' "$TMP/squat.out")
i=0; while ! grep -q "cannot bind the abstract socket @reshim-0/[0-9]* (EADDRINUSE)" "$TMP/squat.err"; do
    i=$((i + 1)); [ $i -gt 250 ] && fail "squat: no warning: $(cat "$TMP/squat.err")"; sleep 0.02
done
rc=0; out=$("$RESHIM" stats "$SQ_PID" 2>"$TMP/cli.err") || rc=$?
[ $rc != 0 ] && [ -z "$out" ] && grep -q "served by uid $NOBODY" "$TMP/cli.err" ||
    fail "root: reshim stats of the squatted pid: rc $rc, $out $(cat "$TMP/cli.err")"
stop_app squat
[ "$(sed -n 's/^done //p' "$TMP/squat.out")" = 2000 ] || fail "squat: the app's output: $(cat "$TMP/squat.out")"
kill "$(sed -n 's/^squatting //p' "$TMP/squatter.out")"
pass "a squatter of uid $NOBODY on @reshim-0/<pid> before the app: the app warns ($(grep -o 'cannot bind.*' "$TMP/squat.err" | cut -c1-70)...), runs on, output intact; root's reshim stats refuses the squatter (a denial of the stats socket only)"

# ---- a process that dropped root (not dumpable) ----
cat > "$TMP/dropper.py" <<'PYEOF'
import ctypes, os, select, socket, sys, time
time.sleep(0.15)
socket.socket().close()
print("ready", os.getpid(), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.02)
os.setgroups([]); os.setgid(65534); os.setuid(65534)
print("dropped uid=%d dumpable=%d" % (os.getuid(), ctypes.CDLL(None).prctl(3, 0, 0, 0, 0)), flush=True)
while not os.path.exists(sys.argv[2]):
    select.select([], [], [], 0.05)
print("done", flush=True)
PYEOF
chmod 644 "$TMP/dropper.py"
env LD_PRELOAD="$SHIM" RESHIM_RUN_DIR=/nonexistent/run "$PY" "$TMP/dropper.py" "$TMP/drop.go" "$TMP/drop.quit" >"$TMP/drop.out" 2>"$TMP/drop.err" &
CHILDREN+=($!)
i=0; until grep -q '^ready' "$TMP/drop.out" 2>/dev/null; do i=$((i + 1)); [ $i -gt 500 ] && fail "dropper did not start"; sleep 0.02; done
D_PID=$(sed -n 's/^ready //p' "$TMP/drop.out")
wait_abstract 0 "$D_PID" || fail "dropper: no @reshim-0/$D_PID"
touch "$TMP/drop.go"
i=0; until grep -q '^dropped' "$TMP/drop.out"; do i=$((i + 1)); [ $i -gt 500 ] && fail "dropper did not drop: $(cat "$TMP/drop.err")"; sleep 0.02; done
grep -q "^dropped uid=$NOBODY dumpable=0" "$TMP/drop.out" || fail "dropper: $(cat "$TMP/drop.out")"
wait_abstract $NOBODY "$D_PID" || fail "dropper: no @reshim-$NOBODY/$D_PID after the drop"
# Control: the kernel keeps uid 65534 out of it (no /proc/PID/environ for it).
if as_uid $NOBODY cat "/proc/$D_PID/environ" >/dev/null 2>&1; then fail "control: uid $NOBODY reads the dropper's environ"; fi
ans=$(ask "@reshim-$NOBODY/$D_PID" stats as_uid $NOBODY)
[ "${ans#*permission denied: the process is not dumpable}" != "$ans" ] || fail "uid $NOBODY read the stats of a process that dropped root to it: ${ans:0:120}"
ans=$(ask "@reshim-$NOBODY/$D_PID" trim as_uid $NOBODY)
[ "${ans#*permission denied: the process is not dumpable}" != "$ans" ] || fail "uid $NOBODY drove a process that dropped root to it: ${ans:0:120}"
ans=$(ask "@reshim-$NOBODY/$D_PID" stats)
case "$ans" in "{\"pid\":$D_PID,"*) ;; *) fail "root on the dropper: ${ans:0:120}" ;; esac
[ "$("$RESHIM" stats "$D_PID" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["pid"])')" = "$D_PID" ] ||
    fail "root's reshim stats $D_PID (the dropper)"
touch "$TMP/drop.quit"
i=0; until grep -q '^done' "$TMP/drop.out"; do i=$((i + 1)); [ $i -gt 500 ] && fail "dropper did not finish"; sleep 0.02; done
pass "a root process that dropped to uid $NOBODY (not dumpable: the kernel keeps that uid out of /proc/PID, the control) serves on @reshim-$NOBODY/<pid> now: uid $NOBODY gets "permission denied: the process is not dumpable..." for stats and trim; root is served (and root's reshim stats finds it)"
