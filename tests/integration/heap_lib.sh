# heap_lib.sh: shared by the heap profiler's tests (test_heap_*.sh; sourced
# after lib.sh): the CLI, a private run directory, and waiting on a program's
# "ready PID" line and its stats socket.
make -s -C "$ROOT" build/bin/heap_sites build/reshim >"$TMP/make.out" 2>&1 ||
    { cat "$TMP/make.out" >&2; fail "cannot build heap_sites"; }
CLI="$ROOT/build/reshim"
export RESHIM_RUN_DIR="$TMP/run"

wait_line() { # FILE PATTERN
    for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
    return 1
}
wait_sock() { # PID: the stats socket comes 100 ms after start
    for _ in $(seq 1 200); do [ -S "$RESHIM_RUN_DIR/$1.sock" ] && return 0; sleep 0.05; done
    return 1
}
# ready_pid OUTFILE ERRFILE WHAT: the PID a program printed as "ready PID",
# once its stats socket is up (fails the test otherwise).
ready_pid() {
    wait_line "$1" ready || { cat "$2" >&2; fail "$3 did not get ready"; }
    local pid; pid=$(awk '/ready/{print $2; exit}' "$1")
    wait_sock "$pid" || fail "$3: no stats socket"
    echo "$pid"
}
