#!/usr/bin/env bash
# alone: a signal's delivery during a wait is timed
# Ctrl-C still works under reshim. A python3 process blocked in a call that
# reshim wraps gets its KeyboardInterrupt at once on SIGINT:
#  - blocked in recv (the server accepts and never answers), without and with
#    reshim: identical;
#  - blocked in the kernel's connect (the listener's accept queue is full, SYNs
#    are dropped), without and with reshim: identical;
#  - sleeping in reshim's connect backoff (a port nobody listens on, default
#    retries): interrupted at once, not after the whole retry sequence.
#    Without reshim that connect is refused at once, nothing to interrupt.
# Each time: SIGINT ~0.5 s after the process is blocked; it must exit within
# 1 s of the signal and print that KeyboardInterrupt was raised.
# Last, a signal whose handler returns (python SIGALRM handler) during the
# backoff must not turn a refused connect into a "successful" one.
source "$(dirname "$0")/lib.sh"
push_start   # $PUSHED runs the shimmed app

LIMIT_MS=1000
# clock_nanosleep's syscall number, to see the process sleep in the backoff.
case $(uname -m) in
x86_64) NANOSLEEP_NR=230 ;;
aarch64) NANOSLEEP_NR=115 ;;
*) NANOSLEEP_NR="" ;;
esac

port=$(free_port)
spawn "$PY" -c "
import socket, time
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(('127.0.0.1', $port)); l.listen(16)
held = []
while True:
    c, _ = l.accept(); held.append(c)     # accept, never answer
"
wait_port "$port" || fail "silent server did not start"
dead_port=$(free_port)                    # nothing ever listens here

cat > "$TMP/app.py" <<'PYEOF'
import signal, socket, sys, time
# A background job of a non-interactive shell starts with SIGINT ignored, and
# python then leaves it ignored: install the usual handler explicitly.
signal.signal(signal.SIGINT, signal.default_int_handler)
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket()
if mode == "recv":
    s.connect(("127.0.0.1", port))
    op = lambda: s.recv(100)
elif mode == "connect-backlog":
    # A listener that never accepts, its accept queue filled: the kernel
    # drops further SYNs, so a blocking connect waits in the kernel.
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(0)
    fillers = []
    for i in range(32):
        f = socket.socket(); f.settimeout(0.3)
        fillers.append(f)
        try:
            f.connect(l.getsockname())
        except socket.timeout:
            break
    else:
        print("could not fill the accept queue", flush=True); sys.exit(4)
    op = lambda: s.connect(l.getsockname())
else:  # connect-refused
    op = lambda: s.connect(("127.0.0.1", port))
t0 = time.monotonic()
try:
    outcome = None
    try:
        print("blocking", flush=True)
        op()
        outcome = "returned after %.2f s" % (time.monotonic() - t0)
    except OSError as e:
        # KeyboardInterrupt may also come a moment later, in here: the outer
        # try catches it all the same.
        outcome = "error %s after %.2f s" % (type(e).__name__, time.monotonic() - t0)
    print(outcome, flush=True)
    sys.exit(3)
except KeyboardInterrupt:
    print("KeyboardInterrupt after %.2f s%s" % (time.monotonic() - t0,
          " (the call ended with: %s)" % outcome if outcome else ""), flush=True)
    sys.exit(0)
PYEOF

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# interrupt LABEL OUT ERR WAIT_SLEEP CMD...: runs CMD (a program, not a shell
# function: the signal goes to its pid) in the background, waits
# for "blocking" (and, if WAIT_SLEEP=1, for it to sleep in clock_nanosleep),
# sends SIGINT 0.5 s later, and checks it exits within LIMIT_MS printing
# "KeyboardInterrupt".
interrupt() {
    local label=$1 out=$2 err=$3 wait_sleep=$4; shift 4
    : >"$out"
    "$@" >"$out" 2>"$err" &
    local pid=$! i=0
    CHILDREN+=("$pid")
    until grep -q blocking "$out"; do
        i=$((i + 1)); [ $i -gt 200 ] && fail "$label: never got to block: $(cat "$out" "$err")"
        gone "$pid" && fail "$label: exited before blocking: $(cat "$out" "$err")"
        sleep 0.05
    done
    # Inside the blocking call: the main thread sleeps in the kernel.
    wait_until 5 grep -q '^State:[[:space:]]*S' "/proc/$pid/status" || fail "$label: never seen asleep"
    if [ "$wait_sleep" = 1 ] && [ -n "$NANOSLEEP_NR" ]; then
        # Send the signal while it sleeps in the backoff, not during an attempt.
        i=0
        until [ "$(cut -d' ' -f1 "/proc/$pid/syscall" 2>/dev/null)" = "$NANOSLEEP_NR" ]; do
            i=$((i + 1)); [ $i -gt 2000 ] && fail "$label: never seen sleeping in clock_nanosleep"
            gone "$pid" && fail "$label: exited before the signal: $(cat "$out" "$err")"
            sleep 0.001
        done
    fi
    gone "$pid" && fail "$label: exited before the signal: $(cat "$out" "$err")"
    local t0; t0=$(now_ms)
    kill -INT "$pid"
    until gone "$pid"; do
        [ $(( $(now_ms) - t0 )) -gt 5000 ] && break
        sleep 0.01
    done
    local took=$(( $(now_ms) - t0 ))
    gone "$pid" || kill -KILL "$pid" 2>/dev/null || true
    local rc=0; wait "$pid" || rc=$?
    grep -q "^KeyboardInterrupt" "$out" ||
        fail "$label: no KeyboardInterrupt (rc $rc): $(cat "$out" "$err")"
    [ "$took" -le "$LIMIT_MS" ] || fail "$label: exited ${took} ms after SIGINT (limit $LIMIT_MS ms)"
    [ "$rc" = 0 ] || fail "$label: rc $rc: $(cat "$err")"
    TOOK=$took
}

# 1. Blocked in recv.
interrupt "recv without reshim" "$TMP/o1" "$TMP/e1" 0 "$PY" "$TMP/app.py" recv "$port"
pass "recv without reshim: $(cat "$TMP/o1" | tail -n 1), exit ${TOOK} ms after SIGINT"
RESHIM_LOG=info interrupt "recv with reshim" "$TMP/o2" "$TMP/e2" 0 "$PUSHED" "$PY" "$TMP/app.py" recv "$port"
[ "$(stat_field net.recv.failures "$TMP/e2")" = 0 ] || fail "an interrupted recv counted as a failure: recv $(stat_field net.recv "$TMP/e2")"
pass "recv with reshim: $(cat "$TMP/o2" | tail -n 1), exit ${TOOK} ms after SIGINT"

# 2. Blocked in the kernel's connect.
interrupt "kernel connect without reshim" "$TMP/o3" "$TMP/e3" 0 "$PY" "$TMP/app.py" connect-backlog 0
pass "connect (accept queue full) without reshim: $(tail -n 1 "$TMP/o3"), exit ${TOOK} ms after SIGINT"
RESHIM_LOG=info interrupt "kernel connect with reshim" "$TMP/o4" "$TMP/e4" 0 "$PUSHED" "$PY" "$TMP/app.py" connect-backlog 0
pass "connect (accept queue full) with reshim: $(tail -n 1 "$TMP/o4"), exit ${TOOK} ms after SIGINT"

# 3. Sleeping in reshim's connect backoff.
"$PY" "$TMP/app.py" connect-refused "$dead_port" >"$TMP/o5" 2>&1 || true
grep -q "^error ConnectionRefusedError" "$TMP/o5" || fail "refused connect without reshim: $(cat "$TMP/o5")"
pass "refused connect without reshim: $(tail -n 1 "$TMP/o5") (nothing to interrupt)"
RESHIM_LOG=debug interrupt "connect backoff with reshim" "$TMP/o6" "$TMP/e6" 1 "$PUSHED" "$PY" "$TMP/app.py" connect-refused "$dead_port"
grep -q "connect to 127.0.0.1:$dead_port: ECONNREFUSED; retry 1/5" "$TMP/e6" ||
    fail "the shim did not go into its backoff: $(cat "$TMP/e6")"
retried=$(stat_field net.connect.retries "$TMP/e6")
[ "${retried:-9}" -lt 5 ] || fail "the whole retry sequence ran despite SIGINT: connect $(stat_field net.connect "$TMP/e6")"
pass "connect in reshim's backoff: $(tail -n 1 "$TMP/o6"), exit ${TOOK} ms after SIGINT, $retried retries decided of 5"

# 4. A signal whose handler returns, during reshim's connect backoff. Without
# reshim the connect is refused at once. With reshim it must still end
# refused (after the retries, or at the signal), never "connected": a connect
# that fails with EINTR means, by POSIX, that the connection goes on
# asynchronously, so python polls for writability and reads SO_ERROR.
cat > "$TMP/alarm.py" <<'PYEOF'
import signal, socket, sys, time
signal.signal(signal.SIGALRM, lambda *a: None)    # handles, does not raise
s = socket.socket()
signal.setitimer(signal.ITIMER_REAL, 0.3)          # lands in the first backoff sleep
t0 = time.monotonic()
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("connected after %.2f s" % (time.monotonic() - t0))
    try:
        s.send(b"x")
        print("send ok")
    except OSError as e:
        print("then send failed: %s" % type(e).__name__)
except OSError as e:
    print("error %s after %.2f s" % (type(e).__name__, time.monotonic() - t0))
PYEOF
"$PY" "$TMP/alarm.py" "$dead_port" >"$TMP/o7" 2>&1 || true
grep -q "^error ConnectionRefusedError" "$TMP/o7" || fail "SIGALRM case without reshim: $(cat "$TMP/o7")"
pass "refused connect with a SIGALRM handler, without reshim: $(head -n 1 "$TMP/o7")"
RESHIM_LOG=info timeout 20 "$PUSHED" "$PY" "$TMP/alarm.py" "$dead_port" >"$TMP/o8" 2>"$TMP/e8" || true
grep -q "^error ConnectionRefusedError" "$TMP/o8" ||
    fail "SIGALRM (handler returns) during reshim's connect backoff: python got \"$(tr '\n' ';' <"$TMP/o8")\" instead of ConnectionRefusedError. shim/net.c retry_blocking returns EINTR when backoff_sleep() is interrupted, though no connect is in progress then (the attempt already failed; attempt() likewise dissolves its pending connect before returning EINTR); by POSIX the app takes EINTR as 'connection continues asynchronously', polls (POLLOUT|POLLHUP at once) and reads SO_ERROR=0, so a refused connect looks connected"
pass "refused connect with a SIGALRM handler, with reshim: $(head -n 1 "$TMP/o8")"
