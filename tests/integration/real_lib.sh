# real_lib.sh: helpers of the test_real_*.sh tests (real servers and clients
# under the shim). Sourced after lib.sh.

CLI="$ROOT/build/reshim"
# Each test's own run directory: the shim creates it 0700, the CLI finds it.
export RESHIM_RUN_DIR="$TMP/run"

# fd_count PID: how many descriptors PID has open now.
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# fd_list PID: "fd -> target" lines (for failure messages).
fd_list() { ls -l "/proc/$1/fd" 2>/dev/null | sed -n 's/.* \([0-9]* -> .*\)/\1/p' | sort -n; }

# fd_settle PID [SECONDS]: until PID's descriptors hold still (the same list
# over 5 looks 20 ms apart: a client just served and a stats question just
# answered are closed a moment later); 1 if they never did.
fd_settle() {
    local pid=$1 t=${2:-10} i=0 same=0 prev cur
    prev=$(fd_list "$pid")
    while [ $same -lt 5 ]; do
        i=$((i + 1)); [ $i -gt $((t * 50)) ] && return 1
        sleep 0.02
        cur=$(fd_list "$pid")
        if [ "$cur" = "$prev" ]; then same=$((same + 1)); else same=0; prev=$cur; fi
    done
}

# wait_fds PID N [SECONDS]: until PID has exactly N descriptors open (clients
# that just closed are reaped by the server a moment later); prints the last
# count seen; fails (status 1) if it never came back to N.
wait_fds() {
    local pid=$1 n=$2 t=${3:-10} i=0 c
    while :; do
        c=$(fd_count "$pid")
        [ "$c" -eq "$n" ] && { echo "$c"; return 0; }
        i=$((i + 1)); [ $i -gt $((t * 20)) ] && { echo "$c"; return 1; }
        sleep 0.05
    done
}

# wait_sock PID [SECONDS]: until PID's stats socket answers (it appears once
# the process is 100 ms old and has made a network call or a wait).
stats_answer() { "$CLI" stats "$1" --json >/dev/null 2>&1; }
wait_sock() { wait_until "${2:-10}" stats_answer "$1"; }

# json_field FILE EXPR: EXPR (python, on the object d) of the JSON in FILE.
json_field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# stats_json PID OUT: `reshim stats PID --json` into OUT (fails if it does not answer valid JSON).
stats_json() {
    "$CLI" stats "$1" --json >"$2" 2>"$2.err" || { cat "$2.err" >&2; return 1; }
    "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$2" || return 1
}

# clean_stderr NAME FILE...: fails if any FILE has a reshim warning or error
# line, or a sign of a crash (sanitizer report, segfault, abort).
clean_stderr() {
    local name=$1; shift
    local bad
    bad=$(grep -hE "reshim\[[0-9]+\]: (warn|error)|AddressSanitizer|runtime error:|Segmentation fault|core dumped|Aborted|double free|corrupted" "$@" 2>/dev/null | head -n 5 || true)
    [ -z "$bad" ] || fail "$name: $bad"
}

# ratio A B: A/B with two decimals ("-" if B is 0 or missing).
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
