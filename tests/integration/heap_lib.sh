# heap_lib.sh: shared by the heap profiler's tests (test_heap_*.sh; sourced
# after lib.sh): the CLI, a private run directory, and waiting on a program's
# "ready PID" line and its stats socket.
need "$BIN/heap_sites" "$ROOT/build/reshim"
CLI="$ROOT/build/reshim"
export RESHIM_RUN_DIR="$TMP/run"

wait_sock() { wait_socket "$RESHIM_RUN_DIR/$1.sock"; } # PID: the socket comes 100 ms after start
# ready_pid OUTFILE ERRFILE WHAT: the PID a program printed as "ready PID",
# once its stats socket is up (fails the test otherwise). OUTFILE must be a
# new file for each program: `prog >OUTFILE &` truncates it only once the
# background child runs, and on a loaded machine the wait here may read the
# previous program's "ready PID" first (a pid gone, or none: "no stats socket").
ready_pid() {
    wait_line "$1" ready || { cat "$2" >&2; fail "$3 did not get ready"; }
    local pid; pid=$(awk '/ready/{print $2; exit}' "$1")
    wait_sock "$pid" || fail "$3: no stats socket"
    echo "$pid"
}
