#!/usr/bin/env bash
# tests/stress/run.sh VARIANT: robustness stress of the preloaded shim.
#   plain     the programs of tests/stress under build/libreshim.so
#   asan      the same (shorter) under build/stress/libreshim-asan.so
#             (the shim built with -fsanitize=address,undefined)
#   tsan      the same (shorter) under build/stress/libreshim-tsan.so
#   valgrind  the CLI under valgrind memcheck against a live shimmed process
# RESHIM_CHECK_FULL=1: the long variants (minutes). Each check prints one
# line "stress VARIANT NAME ok|FAIL (secs): figures"; exit 1 when any failed.
# Every program also runs (where it means something) without the shim, to
# show what the app does by itself.
source "$(dirname "$0")/../integration/lib.sh"
set +e
VARIANT=${1:-plain}
ST="$ROOT/build/stress"
FULL=${RESHIM_CHECK_FULL:-0}
failures=0
export RESHIM_RUN_DIR="$TMP/run"
mkdir -m 0700 -p "$RESHIM_RUN_DIR"

case $VARIANT in
plain) LIB="$SHIM" ;;
asan)
    # The shim first, libasan as its dependency (loaded after libc: the
    # shim's next allocator is glibc's; ASan checks the shim's own code,
    # stack and globals). alloc*.c, heapprof.c, heapsample.c are built with
    # UBSan only: they run inside malloc before ASan's runtime is set up
    # (libstdc++'s constructor allocates first) and would touch shadow
    # memory that is not mapped yet.
    LIB="$ST/libreshim-asan.so"
    export ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0:abort_on_error=0:exitcode=66
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:exitcode=66 ;;
tsan)
    # libtsan first: its interceptors (pthread, malloc, mmap, syscalls) must
    # come before libc, and its initialisation allocates through whatever
    # malloc comes first (the shim's would hand it to a half-made TSan): the
    # app's malloc family goes straight to TSan, the shim's counting of it
    # is off in this variant, everything else of the shim is instrumented.
    LIB="$(gcc -print-file-name=libtsan.so):$ST/libreshim-tsan.so"
    # No forks with threads under TSan ("starting new threads after
    # multi-threaded fork is not supported"): the fork checks are left out.
    export TSAN_OPTIONS="halt_on_error=0:exitcode=66:report_signal_unsafe=0:suppressions=$ROOT/tests/stress/tsan.supp"
    export ST_NO_FORK=1 ST_NO_EXACT=1 ;;
valgrind) LIB="$SHIM" ;;
*) echo "usage: run.sh plain|asan|tsan|valgrind" >&2; exit 2 ;;
esac

shimmed() { LD_PRELOAD="$LIB" "$@"; }

# result NAME RC OUTFILE ERRFILE START [FIGURES]: one line; FAIL shows stderr.
result() {
    local name=$1 rc=$2 out=$3 err=$4 start=$5 figs=${6:-}
    local ds=$(( ($(date +%s%N) - start) / 100000000 ))
    local secs="$((ds / 10)).$((ds % 10))"
    [ -z "$figs" ] && figs=$(tail -n 1 "$out" 2>/dev/null)
    if [ "$rc" = 0 ] && sanitizer_clean "$err"; then
        printf 'stress %-8s %-22s ok   (%ss): %s\n' "$VARIANT" "$name" "$secs" "$figs"
    else
        failures=$((failures + 1))
        printf 'stress %-8s %-22s FAIL (rc %s, %ss): %s\n' "$VARIANT" "$name" "$rc" "$secs" "$figs"
        grep -v "exit summary" "$err" 2>/dev/null | head -n 40 | sed 's/^/    | /'
    fi
}

sanitizer_clean() {
    ! grep -qE "ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|ERROR: ThreadSanitizer" "$1" 2>/dev/null
}

# A line collector on 127.0.0.1 (not shimmed): counts the lines it got.
start_collector() {   # start_collector PORTVAR FILE
    local _p
    _p=$(free_port)
    spawn "$PY" -c "
import socketserver, sys, threading
lock = threading.Lock()
class H(socketserver.StreamRequestHandler):
    def handle(self):
        data = self.rfile.read()
        with lock, open('$2', 'ab') as f:
            f.write(data)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(('127.0.0.1', $_p), H).serve_forever()
"
    wait_port "$_p" 10 || { echo "collector did not start" >&2; exit 1; }
    printf -v "$1" '%s' "$_p"
}

t_start() { T0=$(date +%s%N); }

# watched SECS ERRFILE CMD...: runs CMD (stdout to ours); after SECS a CMD
# still alive is a hang: every thread's stack goes to ERRFILE (gdb), then it
# is killed and the status is 124.
watched() {
    local secs=$1 err=$2 pid i; shift 2
    "$@" 2>>"$err" &
    pid=$!
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid"; return; }
        sleep 0.1
    done
    echo "HANG: $* (pid $pid) after ${secs}s; its threads:" >>"$err"
    command -v gdb >/dev/null &&
        timeout 60 gdb -q -batch -p "$pid" -ex "thread apply all bt 16" 2>&1 | grep -E '^(#|Thread)' >>"$err"
    kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return 124
}

# ---- 1. allocations: counters exact -------------------------------------
check_alloc() {
    local secs=$1 threads=8 exact=1 rc
    [ "$VARIANT" = tsan ] && exact=0
    if [ "$VARIANT" = plain ]; then   # the program's own checks, without the shim
        t_start
        ST_NO_STATS=1 timeout -k 5 $((secs + 60)) "$ST/st_alloc" "$threads" 2 >"$TMP/a0.out" 2>"$TMP/a0.err"
        rc=$?
        [ "$rc" = 0 ] || { result "alloc (no shim)" "$rc" "$TMP/a0.out" "$TMP/a0.err" "$T0"; return; }
    fi
    t_start
    if [ $exact = 1 ]; then
        shimmed timeout -k 5 $((secs + 120)) "$ST/st_alloc" "$threads" "$secs" >"$TMP/a.out" 2>"$TMP/a.err"
    else
        # TSan owns malloc here: data checks and concurrent stats questions only.
        ST_NO_STATS=1 shimmed timeout -k 5 $((secs + 120)) "$ST/st_alloc" "$threads" "$secs" >"$TMP/a.out" 2>"$TMP/a.err"
    fi
    rc=$?
    result "alloc ${threads}x${secs}s" "$rc" "$TMP/a.out" "$TMP/a.err" "$T0"
}

# ---- 2. forks from a multithreaded allocating process --------------------
check_fork() {
    local n=$1 rc
    t_start
    RESHIM_BACKOFF_BASE=1ms RESHIM_BACKOFF_MAX=4ms ST_STATS=1 \
        shimmed timeout -k 5 600 "$ST/st_fork" "$n" 4 8 >"$TMP/f.out" 2>"$TMP/f.err"
    rc=$?
    result "fork x$n" "$rc" "$TMP/f.out" "$TMP/f.err" "$T0"
}

# ---- 3. subprocesses from python3 ----------------------------------------
check_spawn() {
    local n=$1 rc
    t_start
    ST_STATS=1 shimmed timeout -k 5 600 "$PY" "$ROOT/tests/stress/st_spawn.py" "$n" >"$TMP/s.out" 2>"$TMP/s.err"
    rc=$?
    result "python subprocess x$n" "$rc" "$TMP/s.out" "$TMP/s.err" "$T0"
}

# ---- 4. exec chains -------------------------------------------------------
check_exec() {
    local n=$1 rc port dead hold lines summaries calls
    start_collector port "$TMP/chain.lines"
    dead=$(free_port)   # nothing listens there (a race with another test is harmless: it would connect)
    t_start
    RESHIM_LOG=info RESHIM_RETRIES=1 RESHIM_BACKOFF_BASE=1ms \
        shimmed timeout -k 5 300 "$ST/st_exec" "$n" "$port" "$dead" self >"$TMP/e.out" 2>"$TMP/e.err"
    rc=$?
    # sh -c chains (tests/stress/st_chain.sh): each level a shell under the
    # shim that forks one generation and execs the next level via sh -c.
    local depth=$(( n / 2 ))
    RESHIM_LOG=info RESHIM_RETRIES=1 RESHIM_BACKOFF_BASE=1ms \
        shimmed timeout -k 5 300 sh "$ROOT/tests/stress/st_chain.sh" "$depth" "$ST" "$port" "$dead" \
        >>"$TMP/e.out" 2>"$TMP/e.sh.err"
    local rc2=$?
    for _ in $(seq 50); do
        lines=$(grep -c . "$TMP/chain.lines" 2>/dev/null || echo 0)
        [ "$lines" -ge $((n + 1 + depth + 1)) ] && break
        sleep 0.1
    done
    local self sh
    self=$(grep -c '^self ' "$TMP/chain.lines"); sh=$(grep -c '^sh ' "$TMP/chain.lines")
    summaries=$(grep -c "exit summary" "$TMP/e.err")
    calls=$(summary_field "$TMP/e.err" connect calls)
    local figs="self-exec: $((n + 1)) generations, $self lines at the peer, $summaries exit summary (connect calls=$calls); sh -c chain: $((depth + 1)) generations, $sh lines"
    [ "$rc" = 0 ] && [ "$rc2" = 0 ] && [ "$self" = $((n + 1)) ] && [ "$sh" = $((depth + 1)) ] &&
        [ "$summaries" = 1 ] && [ "$calls" = 2 ] || rc=${rc/#0/1}
    cat "$TMP/e.sh.err" >>"$TMP/e.err"
    result "exec chain x$n" "$rc" "$TMP/e.out" "$TMP/e.err" "$T0" "$figs"
}

# ---- 5. every descriptor closed --------------------------------------------
check_closeall() {
    local secs=$1 rc
    mkdir -p "$TMP/c0" "$TMP/c1"
    if [ "$VARIANT" = plain ]; then
        t_start
        timeout -k 5 120 "$ST/st_closeall" "$TMP/c0" 1 >"$TMP/c0.out" 2>"$TMP/c0.err"
        rc=$?
        [ "$rc" = 0 ] || { result "closeall (no shim)" "$rc" "$TMP/c0.out" "$TMP/c0.err" "$T0"; return; }
    fi
    "$PY" -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind('$TMP/push.sock')
while True: s.recv(70000)" </dev/null >/dev/null 2>&1 &
    CHILDREN+=($!)
    for _ in $(seq 100); do [ -S "$TMP/push.sock" ] && break; sleep 0.05; done
    t_start
    RESHIM_PUSH="$TMP/push.sock" RESHIM_INTERVAL=50ms RESHIM_LOG=debug RESHIM_LOG_FILE="$TMP/closeall.log" \
        RESHIM_BACKOFF_BASE=1ms RESHIM_BACKOFF_MAX=2ms ST_STATS=1 \
        shimmed timeout -k 5 300 "$ST/st_closeall" "$TMP/c1" "$secs" >"$TMP/c.out" 2>"$TMP/c.err"
    rc=$?
    # The shim's log file holds log lines only.
    if grep -qv '^reshim\[[0-9]*\]: ' "$TMP/closeall.log" 2>/dev/null; then
        echo "the shim's log file holds a line that is not a log line" >>"$TMP/c.err"; rc=${rc/#0/1}
    fi
    result "closeall ${secs}s" "$rc" "$TMP/c.out" "$TMP/c.err" "$T0"
}

# ---- 6. signals ---------------------------------------------------------------
# mode:expected result without the shim:with the shim (regex). Without
# SA_RESTART a signal may also land inside the real connect (EINTR).
SIGNAL_CASES="connect-restart:ECONNREFUSED:ECONNREFUSED late-restart:ECONNREFUSED:OK
connect-intr:ECONNREFUSED|EINTR:ECONNREFUSED|EINTR late-intr:ECONNREFUSED|EINTR:ECONNREFUSED|EINTR|OK
recv-restart:1:1 recv-intr:EINTR:EINTR send-restart:sent:sent poll-restart:EINTR:EINTR
nbconnect-restart:ECONNREFUSED:OK backlog-rt-restart:ECONNREFUSED:EINTR|OK"
check_signals() {
    local rc=0 figs="" c mode want0 want1 got0 got1 err
    t_start
    : >"$TMP/sig.err"
    local cases=$SIGNAL_CASES
    # The sanitizer variants: the cases that run the shim's retry paths.
    [ "$VARIANT" = plain ] || cases=$(printf '%s\n' $SIGNAL_CASES | grep -E '^(connect-restart|late-restart|late-intr|nbconnect-restart):')
    for c in $cases; do
        IFS=: read -r mode want0 want1 <<<"$c"
        if [ "$VARIANT" = plain ]; then
            got0=$(timeout -k 5 60 "$ST/st_signal" "$mode" 2>>"$TMP/sig.err") || rc=1
        else
            got0=" result=$want0 "   # the sanitizer variants run the shimmed side only
        fi
        : >"$TMP/sig1.err"
        got1=$(RESHIM_LOG=info RESHIM_RETRIES=5 RESHIM_BACKOFF_BASE=100ms RESHIM_BACKOFF_MAX=300ms \
            watched 60 "$TMP/sig1.err" env LD_PRELOAD="$LIB" "$ST/st_signal" "$mode") || rc=1
        cat "$TMP/sig1.err" >>"$TMP/sig.err"
        local r0=${got0#* result=}; r0=${r0%% *}; local r1=${got1#* result=}; r1=${r1%% *}
        local n1=${got1#* handled=}
        if ! [[ ( "$VARIANT" != plain || "$r0" =~ ^($want0)$ ) && "$r1" =~ ^($want1)$ ]]; then
            echo "$mode: without the shim $r0 (want $want0), with it $r1 (want $want1)" >>"$TMP/sig.err"; rc=1
        fi
        # SA_RESTART: the shim's retries run to the end in spite of the signals.
        # (5 retries of at least 50, 100, 150, 150, 150 ms: the listener of
        # the late-* modes, up after 150 ms, is there before they run out.)
        if [ "$mode" = connect-restart ] && [ "$(summary_field "$TMP/sig1.err" connect retries)" != 5 ]; then
            echo "connect-restart: $(summary_field "$TMP/sig1.err" connect retries) retries, 5 configured" >>"$TMP/sig.err"; rc=1
        fi
        figs+="$mode ${r0}/${r1} (${n1} sig); "
    done
    echo "$figs" >"$TMP/sig.out"
    result "signals" "$rc" "$TMP/sig.out" "$TMP/sig.err" "$T0" "${figs%; }"
}

# ---- a large static TLS ----------------------------------------------------------
check_bigtls() {
    local rc
    t_start
    shimmed timeout -k 5 60 "$ST/st_bigtls" >"$TMP/b.out" 2>"$TMP/b.err"
    rc=$?
    result "256K TLS stats" "$rc" "$TMP/b.out" "$TMP/b.err" "$T0"
}

# ---- the CLI under valgrind ---------------------------------------------------
check_valgrind() {
    command -v valgrind >/dev/null || { echo "stress valgrind: skip (no valgrind)"; return; }
    local cli="$ROOT/build/reshim" pid rc all=0 figs=""
    LD_PRELOAD="$SHIM" "$PY" -c "
import select
for _ in range(2000):
    select.select([], [], [], 0.1)
" &
    pid=$!; CHILDREN+=($pid)
    for _ in $(seq 100); do [ -S "$RESHIM_RUN_DIR/$pid.sock" ] && break; sleep 0.05; done
    t_start
    local vg=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect)
    run_vg() {   # run_vg WANT_RC NAME ARGS...
        local want=$1 name=$2; shift 2
        "${vg[@]}" "$cli" "$@" >"$TMP/vg.out" 2>"$TMP/vg.err"
        local got=$?
        if [ "$got" = "$want" ]; then figs+="$name rc=$got; "
        else all=1; figs+="$name rc=$got (want $want); "; sed "s/^/[$name] /" "$TMP/vg.err" | head -n 20 >>"$TMP/vgall.err"; fi
    }
    : >"$TMP/vgall.err"
    run_vg 0 ls ls
    run_vg 0 stats stats "$pid"
    run_vg 0 stats-json stats "$pid" --json
    run_vg 0 metrics metrics
    run_vg 0 heap heap "$pid"
    run_vg 0 config-check config --check
    run_vg 0 doctor doctor /bin/true
    run_vg 2 bad-top heap "$pid" --top nope
    RESHIM_RETRIES=lots "${vg[@]}" "$cli" config --check >"$TMP/vg.out" 2>"$TMP/vg.err"; rc=$?
    if [ "$rc" = 2 ]; then figs+="bad-env rc=2; "; else all=1; figs+="bad-env rc=$rc (want 2); "; cat "$TMP/vg.err" >>"$TMP/vgall.err"; fi
    echo "$figs" >"$TMP/vgall.out"
    result "cli under memcheck" "$all" "$TMP/vgall.out" "$TMP/vgall.err" "$T0" "${figs%; }"
}

if [ "$FULL" = 1 ]; then
    SECS=180 FORKS=5000 SPAWNS=5000 GENS=200 CSECS=60
else
    SECS=8 FORKS=1000 SPAWNS=1000 GENS=50 CSECS=3
fi
# ST_ONLY="check_exec 5": one check alone (for debugging).
if [ -n "${ST_ONLY:-}" ]; then $ST_ONLY; [ "$failures" = 0 ]; exit $?; fi
case $VARIANT in
plain)
    check_alloc "$SECS"; check_fork "$FORKS"; check_spawn "$SPAWNS"; check_exec "$GENS"
    check_closeall "$CSECS"; check_signals; check_bigtls ;;
asan | tsan)
    if [ "$FULL" = 1 ]; then SECS=60 FORKS=1000 SPAWNS=300 GENS=50 CSECS=20
    else SECS=2 FORKS=100 SPAWNS=50 GENS=10 CSECS=1; fi
    check_alloc "$SECS"; [ "$VARIANT" = asan ] && check_fork "$FORKS"
    check_spawn "$SPAWNS"; check_exec "$GENS"; check_closeall "$CSECS"; check_signals; check_bigtls ;;
valgrind) check_valgrind ;;
esac
[ "$failures" = 0 ]
