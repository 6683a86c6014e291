#!/usr/bin/env bash
# tests/bench/run.sh: reshim's benchmarks (`make bench`). Each benchmark does
# the same work without and with build/libreshim.so in alternating runs
# (A B A B ...) and prints the median of each side and the ratio, then a
# markdown table. The memory benchmarks also run the same work under
# heaptrack (a third side, C, in the first rounds: A B C A B C ... A B), as
# the reference users know. It prints figures only: timing never fails the
# run (the machine may be noisy); only a broken benchmark or a shim that did
# not load makes it exit non-zero.
#
#   bench_rtt    request/response round trips in one process (an echo thread
#                and a client) over TCP loopback (send/recv, read/write), a
#                unix socketpair, and TCP connect+close; run whole under
#                LD_PRELOAD or not; a CPU time row beside each round-trip row
#                and, when valgrind is installed, the TCP rows' instructions
#                per round trip (callgrind, printed, not judged)
#   bench_spawn  N x posix_spawn + waitpid of /bin/true or python3, the
#                children getting LD_PRELOAD (reshim, or an empty library as
#                the floor of what any preload costs); N = 1 times one run of
#                the malloc-heavy programs below
#   bench_malloc T threads x M free+malloc pairs over a window of slots
#                (80 % 16-256 B, 18 % < 4 KiB, 2 % < 64 KiB, fixed seed); the
#                program times its own loop. 1 thread and 2 threads over
#                100k-slot windows, and 1 thread over 1000 slots (cache-resident:
#                the per-operation floor)
#   bench_unwind the heap profiler's two unwinders side by side (libunwind's
#                unw_backtrace, libgcc's _Unwind_Backtrace), every allocation
#                sampled (RESHIM_HEAP_SAMPLE=1) at stack depths 8/32/64: ns
#                and instructions (callgrind, when valgrind is installed) per
#                sampled stack over sampling off, the first sample (start-up),
#                a new thread's first sample, resident memory per thread
#   instructions callgrind's instruction counts (the same on a busy machine
#                and a quiet one: the figures the README quotes as targets):
#                per free+malloc pair (bench_malloc 1 N 1000, the difference
#                of two N, so start-up and exit cancel out) with heap sampling
#                off and at the defaults, per start-up of /bin/true and of
#                python3 -c pass; without any preload, with the library of
#                BENCH_BEFORE and with this one
#   wrk          wrk itself (1 thread, 8 keep-alive connections) under the
#                shim or not, against nginx (nginx-light, not preloaded) with
#                keep-alive: many small GETs, each one a replay candidate
#                kept until its response begins (RESHIM_REPLAY=safe), and a
#                third side with RESHIM_REPLAY=connect (the shim without
#                replay: the replay's share is the difference). Rounds of
#                2 s runs, without / with / connect in turn, wrk and nginx
#                pinned to different CPUs; two rows each: requests per
#                second, and wrk's CPU time (user + sys of the process) per
#                request, far steadier than the rate on a shared machine.
#                When valgrind is installed, wrk's instructions per request
#                (callgrind, its worker thread, user space) on the three
#                sides, printed beside the rows, not judged
#   python       python3 under the shim both times, Python frames and the
#                interpreter's allocator hooks off (RESHIM_HEAP_PYTHON=off)
#                and on (the default): the dict-of-strings program below and
#                N_PY x python3 -c pass; and, when valgrind is installed, the
#                instructions of both (the dict of 300k entries), 3 runs each
#   programs     with the shim's default settings (accounting on): cc1 -O2 of
#                a generated C file (bench_gen csrc, preprocessed once into
#                build/bench/), /usr/bin/python3 building a 3M-entry dict of
#                strings and sorting it, GNU sort (LC_ALL=C) of 50 MiB of
#                random words (bench_gen words, once into build/bench/)
#
# Settings (environment):
#   BENCH_ROUNDS  runs of each side per benchmark (default: 21 for round
#                 trips, 15 for /bin/true, 7 for python3 start-up, 11 for
#                 malloc/free, 5 for the programs; heaptrack: 3, at most this)
#   BENCH_QUICK=1 a fast smoke run: 3 rounds (heaptrack 1) of much smaller batches
#   BENCH_PIN=0   do not pin the round-trip benchmarks to one CPU, nor wrk
#                 and nginx to two
#   BENCH_WRK_ROUNDS, BENCH_WRK_SECONDS  wrk rounds (default 10; 3 quick)
#                 and the length of each run in seconds (default 2; 1 quick)
#   BENCH_ONLY    comma list of groups to run: rtt, wrk, spawn, malloc, unwind, python, programs,
#                 instructions (default: all)
#   BENCH_BEFORE  a git revision whose library is measured beside this one
#                 (a "before" side in the instruction table and in the start-up,
#                 malloc/free and program rows): default 465854e, main before
#                 the fast path of issue 18; built once from `git archive` into
#                 build/bench/before-REV/; "none" leaves it out
#   BENCH_HEAPTRACK=0  skip the heaptrack rows (also skipped, with a note,
#                 when heaptrack is not installed)
#
# The round-trip benchmarks run pinned to one CPU (taskset): on small VMs a
# ping-pong between two CPUs is dominated by cross-CPU wake-ups, whose cost
# varied 3x from run to run here; on one CPU the runs are far steadier and
# the figure is the CPU cost of each call, which is what the shim adds to.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LIB=$ROOT/build/libreshim.so
BIN=$ROOT/build/bin
WORK=$ROOT/build/bench

# Same environment on both sides: no preload, no reshim settings from the caller.
unset LD_PRELOAD
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^RESHIM_' || true)

for f in "$LIB" "$BIN/bench_rtt" "$BIN/bench_spawn" "$BIN/bench_malloc" "$BIN/bench_gen" \
    "$BIN/bench_unwind"; do
    if [ ! -e "$f" ]; then
        echo "bench: $f is missing; run \`make bench\`" >&2
        exit 1
    fi
done
mkdir -p "$WORK"

# Batches are short (0.1-0.5 s) and many: with alternating runs, the median
# of many short pairs is far steadier here than a few long runs. The
# programs take 2-6 s a run, so they get fewer rounds; heaptrack (several
# times slower) fewer still.
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    R_RTT=3 R_SPAWN=3 R_PY=3 R_MALLOC=3 R_PROG=3 R_HT=1 R_UNW=3 N_UNW=5000
    N_TCP=2000 N_UNIX=4000 N_CONN=400 N_TRUE=100 N_PY=10
    N_MT=200000 N_ST=500000 N_FUNCS=30 N_DICT=300000 N_WORDS=$((5 * 1024 * 1024))
else
    R_RTT=21 R_SPAWN=15 R_PY=7 R_MALLOC=11 R_PROG=5 R_HT=3 R_UNW=7 N_UNW=50000
    N_TCP=10000 N_UNIX=20000 N_CONN=2000 N_TRUE=500 N_PY=100
    N_MT=2000000 N_ST=5000000 N_FUNCS=200 N_DICT=3000000 N_WORDS=$((50 * 1024 * 1024))
fi
if [ -n "${BENCH_ROUNDS:-}" ]; then
    R_RTT=$BENCH_ROUNDS R_SPAWN=$BENCH_ROUNDS R_PY=$BENCH_ROUNDS R_MALLOC=$BENCH_ROUNDS
    R_PROG=$BENCH_ROUNDS R_UNW=$BENCH_ROUNDS
    ((R_HT > BENCH_ROUNDS)) && R_HT=$BENCH_ROUNDS
fi
if [ "${BENCH_QUICK:-0}" = 1 ]; then R_WRK=3 D_WRK=1; else R_WRK=10 D_WRK=2; fi
R_WRK=${BENCH_WRK_ROUNDS:-${BENCH_ROUNDS:-$R_WRK}} D_WRK=${BENCH_WRK_SECONDS:-$D_WRK}

# wanted GROUP: whether BENCH_ONLY (default: all) asks for this group.
wanted() {
    [ -z "${BENCH_ONLY:-}" ] && return 0
    case ",$BENCH_ONLY," in *",$1,"*) return 0 ;; esac
    return 1
}

PIN=()
if [ "${BENCH_PIN:-1}" != 0 ] && command -v taskset >/dev/null 2>&1; then
    # The highest CPU this process may run on (away from CPU 0's interrupts).
    cpu=$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//; s/.*[,-]//')
    if [ -n "$cpu" ] && taskset -c "$cpu" true 2>/dev/null; then
        PIN=(taskset -c "$cpu")
    fi
fi
# wrk on PIN's CPU, nginx on the lowest other one this process may use:
# each has a CPU of its own, instead of the scheduler moving them about.
WRK_PIN=() NGINX_PIN=()
if [ ${#PIN[@]} -gt 0 ]; then
    lowest=$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//; s/[,-].*//')
    if [ -n "$lowest" ] && [ "$lowest" != "${PIN[2]}" ] && taskset -c "$lowest" true 2>/dev/null; then
        WRK_PIN=("${PIN[@]}") NGINX_PIN=(taskset -c "$lowest")
    fi
fi

# An empty library, preloaded in the start-up benchmark as a floor: what
# LD_PRELOAD of any library costs, before reshim does anything.
EMPTY=$WORK/empty.so
if ! printf 'int reshim_bench_empty;\n' |
    "${CC:-cc}" -shared -fPIC -O2 -x c -o "$EMPTY" - 2>/dev/null; then
    EMPTY=""
fi

fail() {
    echo "bench: $*" >&2
    exit 1
}

# The library of BENCH_BEFORE, built from `git archive` of that revision in
# its own directory (once; the library alone), so that before and after run
# side by side in one run. LIB_BEFORE is empty when left out or unbuildable.
LIB_BEFORE="" BEFORE_NAME="" BEFORE_NOTE=""
if [ "${BENCH_BEFORE:-465854e}" != none ]; then
    rev=$(git -C "$ROOT" rev-parse --short=7 "${BENCH_BEFORE:-465854e}^{commit}" 2>/dev/null)
    if [ -z "$rev" ]; then
        BEFORE_NOTE="no before side: ${BENCH_BEFORE:-465854e} is not a revision of this repository"
    else
        dir=$WORK/before-$rev
        if [ ! -s "$dir/build/libreshim.so" ]; then
            rm -rf "$dir"
            mkdir -p "$dir" || fail "cannot make $dir"
            git -C "$ROOT" archive "$rev" | tar -x -C "$dir" || fail "git archive $rev failed"
            if ! make -C "$dir" MUSL_CC= build/libreshim.so >"$dir.log" 2>&1; then
                fail "cannot build the library of $rev (see $dir.log)"
            fi
        fi
        LIB_BEFORE=$dir/build/libreshim.so BEFORE_NAME="before ($rev)"
        BEFORE_NOTE="before: the library of $rev, built from git archive into ${dir#"$ROOT"/}"
    fi
fi

# lib_of SIDE: the library a side preloads (1: this one, before: BENCH_BEFORE's).
lib_of() {
    case $1 in
    before) echo "$LIB_BEFORE" ;;
    *) echo "$LIB" ;;
    esac
}

# field NAME LINE: the value of NAME=value in a benchmark's output line.
field() {
    local f
    for f in $2; do
        case $f in "$1="*) echo "${f#*=}"; return 0 ;; esac
    done
    return 1
}

# heaptrack, when installed: its rows are a third side of the memory
# benchmarks. "ht" runs plain `heaptrack` (its interpreter digests the trace
# while the program runs, on another CPU, and the command ends when it has);
# "htraw" runs `heaptrack --raw` (the trace is only compressed and written:
# heaptrack's interpreter ran out of memory on cc1 in our research runs).
# Traces are removed after each run.
HEAPTRACK=""
HT_NOTE=""
if [ "${BENCH_HEAPTRACK:-1}" = 0 ]; then
    HT_NOTE="heaptrack rows skipped (BENCH_HEAPTRACK=0)"
elif HEAPTRACK=$(command -v heaptrack 2>/dev/null) && [ -n "$HEAPTRACK" ]; then
    HT_NOTE="$("$HEAPTRACK" --version 2>/dev/null | head -n 1)"
else
    HEAPTRACK=""
    HT_NOTE="heaptrack is not installed (Debian package heaptrack): its rows are skipped"
fi
HT_OUT=$WORK/heaptrack/trace

# heaptrack_argv SIDE: the words that run a command under heaptrack.
heaptrack_argv() {
    case $1 in
    ht) HT_ARGV=("$HEAPTRACK" -o "$HT_OUT") ;;
    htraw) HT_ARGV=("$HEAPTRACK" --raw -o "$HT_OUT") ;;
    *) fail "unknown side $1" ;;
    esac
}

# Each runner takes a side, 0 (without the shim), 1 (with it) or ht/htraw
# (under heaptrack, without the shim), and prints the seconds its timed part
# took. The same exec chain is used on both sides.
run_rtt() { # shim mode n (RTT_CPU=1: "wall cpu", the process's CPU seconds too)
    local out
    if [ "$1" != 0 ]; then
        out=$("${PIN[@]}" env LD_PRELOAD="$(lib_of "$1")" "$BIN/bench_rtt" "$2" "$3") || fail "bench_rtt $2 failed (with the shim)"
    else
        out=$("${PIN[@]}" env -u LD_PRELOAD "$BIN/bench_rtt" "$2" "$3") || fail "bench_rtt $2 failed"
    fi
    if [ "${RTT_CPU:-0}" = 1 ]; then
        echo "$(field seconds "$out") $(field cpu_seconds "$out")"
    else
        field seconds "$out"
    fi
}

# run_wrk SIDE: one run of wrk against nginx (started below when the wrk
# group runs) for D_WRK seconds, pinned to WRK_PIN's CPU: side 0 without
# the shim, 1 with it, connect with it and RESHIM_REPLAY=connect. Prints
# "requests seconds cpu": the requests wrk counted, the time it counted them
# in, and the CPU time (user + sys, bash's time) of the wrk process.
run_wrk() {
    local pre=(env -u LD_PRELOAD) out n s TIMEFORMAT='%3U %3S'
    case $1 in
    1) pre=(env LD_PRELOAD="$LIB") ;;
    connect) pre=(env LD_PRELOAD="$LIB" RESHIM_REPLAY=connect) ;;
    esac
    { time "${WRK_PIN[@]}" "${pre[@]}" wrk -t1 -c8 -d"$D_WRK"s "http://127.0.0.1:$WRK_PORT/" \
        >"$WORK/wrk.out" 2>&1; } 2>"$WORK/wrk.time" || fail "wrk failed (side $1): $(tail -n 3 "$WORK/wrk.out")"
    out=$(cat "$WORK/wrk.out")
    grep -q 'Non-2xx\|Socket errors' <<<"$out" && fail "wrk saw errors (side $1): $out"
    read -r n s <<<"$(sed -n 's/^ *\([0-9]*\) requests in \([0-9.]*\)\(m*\)s.*/\1 \2\3/p' <<<"$out")"
    case $s in *m) s=$(awk -v m="${s%m}" 'BEGIN { print m / 1000 }') ;; esac
    if [ -z "$n" ] || [ "$n" -le 0 ] || [ -z "$s" ]; then
        fail "wrk printed no request count (side $1): $out"
    fi
    echo "$n $s $(awk '{ print $1 + $2 }' "$WORK/wrk.time")"
}

# wrk_rows NAME ROUNDS: ROUNDS rounds of wrk without, with the shim and
# with RESHIM_REPLAY=connect, in turn (one discarded warm-up run of each
# first); rows of each side against the runs without: the time N_WRK
# requests take at the rate measured, and wrk's CPU time per request.
wrk_rows() {
    local name=$1 rounds=$2 r side n s c line
    # shellcheck disable=SC2034 # read by add_row (namerefs)
    local t0=() t1=() tconnect=() c0=() c1=() cconnect=()
    for side in 0 1 connect; do run_wrk "$side" >/dev/null; done
    # shellcheck disable=SC2034 # t_, c_: namerefs of the arrays above
    for ((r = 0; r < rounds; r++)); do
        for side in 0 1 connect; do
            line=$(run_wrk "$side") || exit 1
            read -r n s c <<<"$line"
            local -n t_=t$side c_=c$side
            t_[r]=$(awk -v n="$n" -v s="$s" -v N="$N_WRK" 'BEGIN { printf "%.6f", N * s / n }')
            c_[r]=$(awk -v n="$n" -v c="$c" -v N="$N_WRK" 'BEGIN { printf "%.6f", N * c / n }')
            unset -n t_ c_
        done
    done
    add_row "$name: requests/s" "$N_WRK" rate t0 t1
    add_row "$name: CPU per request" "$N_WRK" cpu c0 c1
    add_row "$name, RESHIM_REPLAY=connect: requests/s" "$N_WRK" rate t0 tconnect
    add_row "$name, RESHIM_REPLAY=connect: CPU per request" "$N_WRK" cpu c0 cconnect
}

start_nginx() {
    local d=$WORK/nginx
    mkdir -p "$d"
    WRK_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cat >"$d/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 256; }
http {
    access_log off;
    keepalive_timeout 60s;
    keepalive_requests 100000000;
    client_body_temp_path $d/tmp;
    server { listen 127.0.0.1:$WRK_PORT; location / { return 200 "ok\\n"; } }
}
NGINX
    "${NGINX_PIN[@]}" env -u LD_PRELOAD nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >/dev/null 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 100); do
        /usr/bin/python3 -c "import socket,sys; sys.exit(socket.socket().connect_ex(('127.0.0.1',$WRK_PORT)))" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "nginx did not listen (see $d/error.log)"
}

run_spawn() { # shim lib n program args... (side before: BENCH_BEFORE's library)
    local shim=$1 lib=$2 out
    shift 2
    [ "$shim" = before ] && lib=$LIB_BEFORE
    if [ "$shim" != 0 ]; then
        out=$("$BIN/bench_spawn" -p "$lib" "$@") || fail "bench_spawn $2 failed (preloading $lib)"
    else
        out=$("$BIN/bench_spawn" "$@") || fail "bench_spawn $2 failed"
    fi
    field seconds "$out"
}

# run_malloc SIDE THREADS PAIRS WINDOW: bench_malloc's own timing of its loop
# (under heaptrack too: heaptrack's start-up and exit are not in it).
run_malloc() {
    local side=$1 out
    shift
    case $side in
    0) out=$(env -u LD_PRELOAD "$BIN/bench_malloc" "$@" 2>&1) ;;
    1 | before) out=$(env LD_PRELOAD="$(lib_of "$side")" "$BIN/bench_malloc" "$@" 2>&1) ;;
    *)
        heaptrack_argv "$side"
        mkdir -p "${HT_OUT%/*}"
        rm -f "$HT_OUT".*
        out=$("${HT_ARGV[@]}" "$BIN/bench_malloc" "$@" 2>&1)
        ;;
    esac
    local rc=$?
    rm -f "$HT_OUT".*
    [ "$rc" = 0 ] || fail "bench_malloc $* failed (side $side): $(printf '%s\n' "$out" | tail -n 3)"
    out=$(printf '%s\n' "$out" | grep '^bench_malloc ') || fail "bench_malloc $* printed no figures (side $side)"
    field seconds "$out"
}

# run_malloc_sampling SIDE THREADS PAIRS WINDOW: bench_malloc under the shim
# both times, heap sampling off (side 0: RESHIM_HEAP_SAMPLE=0, accounting
# alone) and at the default 512 KiB (side 1): what the sampler costs.
run_malloc_sampling() {
    local side=$1 out
    shift
    if [ "$side" = 0 ]; then
        out=$(env LD_PRELOAD="$LIB" RESHIM_HEAP_SAMPLE=0 "$BIN/bench_malloc" "$@" 2>&1)
    else
        out=$(env LD_PRELOAD="$LIB" RESHIM_HEAP_SAMPLE=512K "$BIN/bench_malloc" "$@" 2>&1)
    fi
    [ "$?" = 0 ] || fail "bench_malloc $* failed (sampling side $side): $(printf '%s\n' "$out" | tail -n 3)"
    out=$(printf '%s\n' "$out" | grep '^bench_malloc ') || fail "bench_malloc $* printed no figures (sampling side $side)"
    field seconds "$out"
}

# run_pyframes SIDE N PROGRAM ARGS...: N runs of a python3 command under the
# shim (bench_spawn N), Python frames off (side 0) or on (side 1).
run_pyframes() {
    local side=$1 log=$WORK/pyframes.out
    shift
    env RESHIM_HEAP_PYTHON="$([ "$side" = 1 ] && echo on || echo off)" \
        "$BIN/bench_spawn" -p "$LIB" "$@" >"$log" 2>&1 || fail "$* failed (Python frames side $side): $(tail -n 3 "$log")"
    field seconds "$(grep '^bench_spawn ' "$log")"
}

# run_prog SIDE PROGRAM ARGS...: the wall time of one run of the whole
# program (bench_spawn 1), its output to a file. Under plain heaptrack this
# includes the interpreter finishing its work after the program exits.
run_prog() {
    local side=$1 pre=() log=$WORK/prog.out
    shift
    case $side in
    0) ;;
    1 | before) pre=(-p "$(lib_of "$side")") ;;
    *)
        heaptrack_argv "$side"
        mkdir -p "${HT_OUT%/*}"
        rm -f "$HT_OUT".*
        set -- "${HT_ARGV[@]}" "$@"
        ;;
    esac
    "$BIN/bench_spawn" "${pre[@]}" 1 "$@" >"$log" 2>&1
    local rc=$?
    rm -f "$HT_OUT".*
    [ "$rc" = 0 ] || fail "$* failed (side $side): $(tail -n 3 "$log")"
    field seconds "$(grep '^bench_spawn ' "$log")"
}

# run_sort: GNU sort in the C locale (the same bytes order on every machine).
run_sort() {
    LC_ALL=C run_prog "$@"
}

median() {
    printf '%s\n' "$@" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# quartiles VALUES...: "q1 q3" (nearest rank).
quartiles() {
    printf '%s\n' "$@" | sort -g |
        awk '{ v[NR] = $1 } END { q1 = int((NR + 3) / 4); q3 = NR + 1 - q1; print v[q1], v[q3] }'
}

# Rows of the final table, as "name|without|with|ratio"; and, for the
# malloc/free rows, "name|added ns per pair" lines for the summary.
ROWS=()
ADDED=()

# add_row NAME OPS KIND A X [added]: a row for side X (an array of NX <= NA run
# times) against side A (an array of NA run times, taken alternately with
# X's: A[0] X[0] A[1] X[1] ...). Each X[r] is compared with A[r] before it
# and A[r+1] after it, so slow drift of the machine's speed cancels out and
# neither side always runs first; the ratio reported is the median of these
# adjacent ratios. The columns are the medians of each side: KIND "rate"
# shows OPS per second, "time" the wall time of a batch of OPS, "cpu" the
# CPU microseconds per operation (with what X adds), "ns" the
# nanoseconds per operation (OPS operations per run) and, on X's side, what
# X adds to each: the median of the same adjacent differences X - A (with
# "added", also listed under the table).
add_row() {
    local name=$1 ops=$2 kind=$3
    local -n a_=$4 x_=$5
    local r na=${#a_[@]} nx=${#x_[@]} ratios=() diffs=()
    for ((r = 0; r < nx; r++)); do
        ratios+=("$(awk -v a="${a_[r]}" -v b="${x_[r]}" 'BEGIN { print b / a }')")
        diffs+=("$(awk -v a="${a_[r]}" -v b="${x_[r]}" 'BEGIN { print b - a }')")
        if ((r + 1 < na)); then
            ratios+=("$(awk -v a="${a_[r + 1]}" -v b="${x_[r]}" 'BEGIN { print b / a }')")
            diffs+=("$(awk -v a="${a_[r + 1]}" -v b="${x_[r]}" 'BEGIN { print b - a }')")
        fi
    done
    local ma mb mr md q
    ma=$(median "${a_[@]}")
    mb=$(median "${x_[@]}")
    mr=$(median "${ratios[@]}")
    md=$(median "${diffs[@]}")
    q=$(quartiles "${ratios[@]}")
    local row
    row=$(awk -v n="$name" -v ops="$ops" -v k="$kind" -v a="$ma" -v b="$mb" -v r="$mr" -v d="$md" 'BEGIN {
        if (k == "rate")
            printf "%s|%.0f/s|%.0f/s|%.3f", n, ops / a, ops / b, r
        else if (k == "ns")
            printf "%s|%.1f ns|%.1f ns (%+.1f)|%.3f", n, a * 1e9 / ops, b * 1e9 / ops, d * 1e9 / ops, r
        else if (k == "cpu")
            printf "%s|%.2f us|%.2f us (%+.2f)|%.3f", n, a * 1e6 / ops, b * 1e6 / ops, d * 1e6 / ops, r
        else
            printf "%s|%.3f s|%.3f s|%.3f", n, a, b, r
    }')
    ROWS+=("$row")
    if [ "$kind" = ns ] && [ "${6:-}" = added ]; then
        ADDED+=("$name|$(awk -v d="$md" -v ops="$ops" 'BEGIN { printf "%+.1f ns", d * 1e9 / ops }')")
    fi
    local lo hi
    lo=$(printf '%s\n' "${ratios[@]}" | sort -g | head -n 1)
    hi=$(printf '%s\n' "${ratios[@]}" | sort -g | tail -n 1)
    printf '  %-56s ratio %s  (middle half of %d ratios: %s; all: %.3f to %.3f)\n' "$name" \
        "${row##*|}" "${#ratios[@]}" \
        "$(awk -v q="$q" 'BEGIN { split(q, v, " "); printf "%.3f to %.3f", v[1], v[2] }')" "$lo" "$hi"
}

# compare [--tool SIDE TROUNDS TNAME]... NAME OPS KIND ROUNDS RUNNER ARGS...:
# one discarded warm-up run of each side, then ROUNDS runs of each,
# alternating A B A B ... (A without the shim, B with it); a row for B
# against A (add_row). Each --tool (heaptrack, the before library) is one
# more side, C, run right after B in the first TROUNDS rounds (A B C A B C
# ... A B), with its own row, TNAME, against the same As, computed the same
# way. With --cpu CNAME (first), the runner prints two figures, the time and
# then the CPU time of its run, and the CPU times get a row of their own,
# CNAME (kind time), for B against A.
compare() {
    local tools=() trounds=() tnames=() cname=""
    if [ "$1" = --cpu ]; then
        cname=$2
        shift 2
    fi
    while [ "$1" = --tool ]; do
        tools+=("$2") trounds+=("$3") tnames+=("$4")
        shift 4
    done
    local name=$1 ops=$2 kind=$3 rounds=$4 runner=$5
    shift 5
    # shellcheck disable=SC2034 # ta, tb, tcN, ca, cb: read by add_row (namerefs)
    local r t line ta=() tb=() tc0=() tc1=() tc2=() ca=() cb=()
    ((${#tools[@]} <= 3)) || fail "compare: at most 3 tools"
    "$runner" 0 "$@" >/dev/null || exit 1
    "$runner" 1 "$@" >/dev/null || exit 1
    for t in "${tools[@]}"; do
        [ "$t" = before ] && { "$runner" before "$@" >/dev/null || exit 1; }
    done
    # shellcheck disable=SC2034 # the same
    for ((r = 0; r < rounds; r++)); do
        line=$("$runner" 0 "$@") || exit 1
        ta[r]=${line%% *} ca[r]=${line##* }
        line=$("$runner" 1 "$@") || exit 1
        tb[r]=${line%% *} cb[r]=${line##* }
        for t in "${!tools[@]}"; do
            if ((r < trounds[t])); then
                local -n tc_=tc$t
                line=$("$runner" "${tools[t]}" "$@") || exit 1
                tc_[r]=${line%% *}
                unset -n tc_
            fi
        done
    done
    add_row "$name" "$ops" "$kind" ta tb added
    [ -n "$cname" ] && add_row "$cname" 1 time ca cb
    for t in "${!tools[@]}"; do
        ((trounds[t] > 0)) && add_row "${tnames[t]}" "$ops" "$kind" ta "tc$t"
    done
}

# ht_opts SIDE LABEL [BEFORE_LABEL]: the --tool words for compare:
# heaptrack (none without it), then the before library (with BEFORE_LABEL,
# when there is one).
ht_opts() {
    HT_OPTS=()
    if [ -n "$HEAPTRACK" ] && [ -n "$1" ]; then
        HT_OPTS=(--tool "$1" "$R_HT" "$2")
    fi
    if [ -n "$LIB_BEFORE" ] && [ -n "${3:-}" ]; then
        HT_OPTS+=(--tool before 1000000 "$3")
    fi
}

# cg_ir SIDE ENV PROGRAM ARGS...: the instructions (callgrind's Ir) of one
# run of PROGRAM, preloading nothing (side 0), an empty library (empty),
# this library (1) or BENCH_BEFORE's (before); ENV: more VAR=VALUE words for
# its environment (one string, may be empty). Every thread of the program
# counts, the shim's own threads (stats, memory monitor, reconnect timer)
# not: they run beside the program, and under valgrind, 20-50 times slower,
# a python3 -c pass outlives the stats thread's 100 ms start delay (0.5M
# instructions of serving that the real one, gone within 20 ms, never does).
# The program's stdout goes to CG_OUT when set (else nowhere). CG_THREAD:
# only the threads that ran this function count (wrk's worker: aeMain).
cg_ir() {
    local side=$1 envw=$2 pre=() out=$WORK/callgrind.out f ir=0 n=0
    shift 2
    case $side in
    0) ;;
    empty) pre=(LD_PRELOAD="$EMPTY") ;;
    *) pre=(LD_PRELOAD="$(lib_of "$side")") ;;
    esac
    rm -f "$out" "$out"-*
    # shellcheck disable=SC2086 # ENV: words
    env "${pre[@]}" PYTHONHASHSEED=0 $envw valgrind --tool=callgrind --separate-threads=yes \
        --callgrind-out-file="$out" "$@" >"${CG_OUT:-/dev/null}" 2>"$WORK/callgrind.err" ||
        fail "callgrind: $* failed (side $side): $(tail -n 3 "$WORK/callgrind.err")"
    for f in "$out"-*; do
        [ -f "$f" ] || continue
        grep -qE '^fn=.*[ )](srv_main|mon_main|timer_main)$' "$f" && continue
        [ -n "${CG_THREAD:-}" ] && ! grep -qE "^c?fn=.*[ )]$CG_THREAD\$" "$f" && continue
        ir=$((ir + $(sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$f" | head -n 1)))
        n=$((n + 1))
    done
    rm -f "$out" "$out"-*
    ((n > 0 && ir > 0)) || fail "callgrind: no count for $* (side $side)"
    echo "$ir"
}

# cg_pair SIDE ENV: instructions per free+malloc pair, from two runs of
# bench_malloc 1 N 1000 (N = CG_N and 2 CG_N): their difference over CG_N,
# so that start-up, filling the window and exit cancel out.
cg_pair() {
    local a b
    a=$(cg_ir "$1" "$2" "$BIN/bench_malloc" 1 "$CG_N" 1000) || exit 1
    b=$(cg_ir "$1" "$2" "$BIN/bench_malloc" 1 $((2 * CG_N)) 1000) || exit 1
    awk -v a="$a" -v b="$b" -v n="$CG_N" 'BEGIN { printf "%.0f", (b - a) / n }'
}

# wrk_cg SIDE ENV: instructions per request of wrk's worker thread
# (callgrind, user space), from a 1 s and a 3 s run: their difference over
# the difference of the requests wrk counted, so that start-up and exit
# cancel out (the main thread, which only starts the worker and then
# digests its latency figures, is left out). Printed, never judged.
wrk_cg() {
    local a b na nb
    a=$(CG_THREAD=aeMain CG_OUT="$WORK/wrk-cg.out" cg_ir "$1" "$2" wrk -t1 -c8 -d1s "http://127.0.0.1:$WRK_PORT/") || exit 1
    na=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$WORK/wrk-cg.out")
    b=$(CG_THREAD=aeMain CG_OUT="$WORK/wrk-cg.out" cg_ir "$1" "$2" wrk -t1 -c8 -d3s "http://127.0.0.1:$WRK_PORT/") || exit 1
    nb=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$WORK/wrk-cg.out")
    if [ -z "$na" ] || [ -z "$nb" ] || [ "$nb" -le "$na" ]; then
        fail "wrk under callgrind: requests $na, $nb"
    fi
    awk -v a="$a" -v b="$b" -v na="$na" -v nb="$nb" 'BEGIN { printf "%.0f %d %d", (b - a) / (nb - na), na, nb }'
}

# rtt_cg SIDE MODE: instructions per round trip of bench_rtt MODE (callgrind,
# user space, both its threads), from runs of 2000 and 4000 round trips:
# their difference over 2000. Printed beside the round-trip rows.
rtt_cg() {
    local a b
    a=$(cg_ir "$1" "" "$BIN/bench_rtt" "$2" 2000) || exit 1
    b=$(cg_ir "$1" "" "$BIN/bench_rtt" "$2" 4000) || exit 1
    echo $(((b - a) / 2000))
}

# Rows of the instruction table: "name|no shim|before|after|target".
INSN=()
# insn_row NAME UNIT NONE BEFORE AFTER TARGET: BEFORE and AFTER shown with
# what they add to NONE; UNIT k (thousands), M (millions) or empty.
insn_row() {
    INSN+=("$(awk -v n="$1" -v u="$2" -v z="$3" -v b="$4" -v a="$5" -v t="$6" '
        function f(x) { return u == "k" ? sprintf("%.1fk", x / 1e3) : u == "M" ? sprintf("%.2fM", x / 1e6) : sprintf("%d", x) }
        function d(x) { return x == "" ? "-" : sprintf("%s (+%s)", f(x), f(x - z)) }
        BEGIN { printf "%s|%s|%s|%s|%s", n, f(z), d(b), d(a), t }')")
    printf '  %-52s %s\n' "$1" "${INSN[-1]#*|}"
}

# check_mem WHAT MIN_ALLOCS MIN_PEAK PROGRAM ARGS...: the shim must really
# count a memory workload's allocations. One run with RESHIM_LOG=info, the
# log in a file (coreutils close stderr before the shim's exit summary);
# fails unless the summary shows at least MIN_ALLOCS allocations and a peak
# (heap + anonymous mappings) of at least MIN_PEAK bytes.
check_mem() {
    local what=$1 min=$2 minpeak=$3 log=$WORK/check-mem.log
    shift 3
    rm -f "$log"
    env LD_PRELOAD="$LIB" RESHIM_LOG=info RESHIM_LOG_FILE="$log" "$@" >"$WORK/check.out" 2>&1 ||
        fail "$what failed with the shim: $(tail -n 3 "$WORK/check.out")"
    local s allocs hpeak mpeak
    s=$(grep 'exit summary' "$log" 2>/dev/null | tail -n 1)
    allocs=$(printf '%s\n' "$s" | sed -n 's/.* allocs=\([0-9]*\).*/\1/p')
    hpeak=$(printf '%s\n' "$s" | sed -n 's/.* heap_peak=\([0-9]*\).*/\1/p')
    mpeak=$(printf '%s\n' "$s" | sed -n 's/.* mmap_anon_peak=\([0-9]*\).*/\1/p')
    if [ -z "$allocs" ] || [ -z "$hpeak" ] || [ -z "$mpeak" ] || [ "$allocs" -lt "$min" ] ||
        [ $((hpeak + mpeak)) -lt "$minpeak" ]; then
        fail "the shim did not count $what's memory (exit summary: ${s:-none})"
    fi
    printf '  shim active in %-8s allocs=%s heap_peak=%s MiB mmap_anon_peak=%s MiB\n' "$what:" \
        "$allocs" $((hpeak >> 20)) $((mpeak >> 20))
}

# Inputs of the programs, made once into build/bench/ (again when bench_gen
# changes). cc1_input FUNCS: a preprocessed C file; words_input BYTES.
cc1_input() {
    local f=$WORK/cc1-$1.i
    if [ ! -s "$f" ] || [ "$BIN/bench_gen" -nt "$f" ]; then
        "$BIN/bench_gen" csrc "$1" >"$WORK/cc1-$1.c" || fail "bench_gen csrc $1 failed"
        gcc -E -o "$f.tmp" "$WORK/cc1-$1.c" || fail "gcc -E of the cc1 input failed"
        mv "$f.tmp" "$f"
    fi
    echo "$f"
}
words_input() {
    local f=$WORK/words-$1.txt
    if [ ! -s "$f" ] || [ "$BIN/bench_gen" -nt "$f" ]; then
        "$BIN/bench_gen" words "$1" >"$f.tmp" || fail "bench_gen words $1 failed"
        mv "$f.tmp" "$f"
    fi
    echo "$f"
}

echo "reshim benchmarks: the same work without and with the shim, alternating runs"
echo "  cpu: $(nproc) online; round trips $([ ${#PIN[@]} -gt 0 ] && echo "pinned to CPU ${PIN[2]}" || echo "not pinned")"
if wanted malloc || wanted programs; then
    echo "  $HT_NOTE"
fi

if wanted rtt; then
    # The shim must really be there: its exit summary counts the calls.
    summary=$(env LD_PRELOAD="$LIB" RESHIM_LOG=info "$BIN/bench_rtt" tcp 1000 2>&1 >/dev/null | grep 'exit summary' || true)
    sends=$(printf '%s\n' "$summary" | sed -n 's/.*send calls=\([0-9]*\).*/\1/p')
    if [ -z "$sends" ] || [ "$sends" -lt 1000 ]; then
        fail "the shim did not count the benchmark's calls (exit summary: ${summary:-none})"
    fi
    echo "  shim active: a 1000-round-trip run counted send calls=$sends"
fi

if wanted programs || wanted python; then
    [ -x /usr/bin/python3 ] || fail "/usr/bin/python3 is missing"
    PY_CODE="d={str(i):str(i)*3 for i in range($N_DICT)}; l=sorted(d.values()); print(sum(map(len,l)))"
    PY_SMALL="d={str(i):str(i)*3 for i in range(300000)}; l=sorted(d.values()); print(sum(map(len,l)))"
    PY_DICT_NAME="python3: dict of $(awk -v n="$N_DICT" 'BEGIN { printf(n >= 1e6 ? "%gM" : "%gk", n >= 1e6 ? n / 1e6 : n / 1e3) }') strings, sorted"
fi
if wanted programs; then
    CC1=$(gcc -print-prog-name=cc1 2>/dev/null)
    case $CC1 in /*) [ -x "$CC1" ] || CC1="" ;; *) CC1="" ;; esac
    [ -n "$CC1" ] || fail "gcc's cc1 not found (gcc -print-prog-name=cc1)"
    SORT=$(command -v sort)
    CC1_IN=$(cc1_input "$N_FUNCS") || exit 1
    CC1_SMALL=$(cc1_input 30) || exit 1
    WORDS=$(words_input "$N_WORDS") || exit 1
    WORDS_SMALL=$(words_input $((5 * 1024 * 1024))) || exit 1
fi
if wanted malloc || wanted programs; then
    # Memory workloads: a smaller run of each with the shim's exit summary.
    if wanted malloc; then
        check_mem mtbench 200000 $((50 << 20)) "$BIN/bench_malloc" 2 100000
    fi
    if wanted programs; then
        check_mem cc1 200000 $((10 << 20)) "$CC1" -quiet -O2 "$CC1_SMALL" -o "$WORK/cc1.s"
        check_mem python3 1000 $((20 << 20)) /usr/bin/python3 -c "$PY_SMALL"
        check_mem sort 5 $((5 << 20)) env LC_ALL=C "$SORT" -o "$WORK/sorted.txt" "$WORDS_SMALL"
    fi
    if [ -n "$HEAPTRACK" ]; then
        # heaptrack's first run loads its libraries from disk: not in a row.
        mkdir -p "${HT_OUT%/*}"
        "$HEAPTRACK" --raw -o "$HT_OUT" /bin/true >/dev/null 2>&1 || fail "heaptrack /bin/true failed"
        rm -f "$HT_OUT".*
    fi
fi
echo

SECONDS=0
if wanted instructions; then
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "  instruction counts skipped: valgrind is not installed (Debian package valgrind)"
    else
        [ "${BENCH_QUICK:-0}" = 1 ] && CG_N=20000 || CG_N=100000
        echo "instructions (callgrind; before = ${BEFORE_NAME:-left out}):"
        z=$(cg_pair 0 "")
        b=$([ -n "$LIB_BEFORE" ] && cg_pair before RESHIM_HEAP_SAMPLE=0)
        a=$(cg_pair 1 RESHIM_HEAP_SAMPLE=0)
        insn_row "per free+malloc pair, heap sampling off" "" "$z" "$b" "$a" ""
        b=$([ -n "$LIB_BEFORE" ] && cg_pair before "")
        a=$(cg_pair 1 "")
        insn_row "per free+malloc pair, defaults (sampling 512K)" "" "$z" "$b" "$a" "<= +40"
        z=$(cg_ir 0 "" /bin/true)
        if [ -n "$EMPTY" ]; then
            e=$(cg_ir empty "" /bin/true)
            insn_row "start-up: /bin/true, an empty .so preloaded (floor)" k "$z" "$e" "$e" ""
        fi
        b=$([ -n "$LIB_BEFORE" ] && cg_ir before "" /bin/true)
        a=$(cg_ir 1 "" /bin/true)
        insn_row "start-up: /bin/true" k "$z" "$b" "$a" "<= floor + 5.3k"
        if [ -x /usr/bin/python3 ]; then
            z=$(cg_ir 0 "" /usr/bin/python3 -c pass)
            b=$([ -n "$LIB_BEFORE" ] && cg_ir before "" /usr/bin/python3 -c pass)
            a=$(cg_ir 1 "" /usr/bin/python3 -c pass)
            insn_row "start-up: python3 -c pass" M "$z" "$b" "$a" ""
            b=$([ -n "$LIB_BEFORE" ] && cg_ir before RESHIM_HEAP_SAMPLE=0 /usr/bin/python3 -c pass)
            a=$(cg_ir 1 RESHIM_HEAP_SAMPLE=0 /usr/bin/python3 -c pass)
            insn_row "start-up: python3 -c pass, heap sampling off" M "$z" "$b" "$a" ""
        fi
        echo
    fi
fi
if wanted rtt; then
    # Pinned to one CPU, the process's CPU time is its wall time less the
    # time other work on the machine took that CPU from it: a steadier row.
    export RTT_CPU=1
    compare --cpu "TCP loopback round trips, send/recv, 64 B: CPU time" \
        "TCP loopback round trips, send/recv, 64 B" "$N_TCP" rate "$R_RTT" run_rtt tcp "$N_TCP"
    compare --cpu "TCP loopback round trips, read/write, 64 B: CPU time" \
        "TCP loopback round trips, read/write, 64 B" "$N_TCP" rate "$R_RTT" run_rtt tcp-rw "$N_TCP"
    compare --cpu "unix socketpair round trips, send/recv, 64 B: CPU time" \
        "unix socketpair round trips, send/recv, 64 B" "$N_UNIX" rate "$R_RTT" run_rtt unix "$N_UNIX"
    unset RTT_CPU
    compare "TCP connect + 1 B each way + close" "$N_CONN" rate "$R_RTT" run_rtt connect "$N_CONN"
    if command -v valgrind >/dev/null; then
        for m in tcp tcp-rw; do
            z=$(rtt_cg 0 "$m") || exit 1
            a=$(rtt_cg 1 "$m") || exit 1
            echo "  bench_rtt $m instructions per round trip (callgrind, both threads, user space):" \
                "no shim $z, with the shim $a (+$((a - z)))"
        done
    fi
fi
if wanted wrk; then
    if command -v wrk >/dev/null && command -v nginx >/dev/null; then
        start_nginx
        N_WRK=10000
        wrk_rows "wrk -t1 -c8, nginx keep-alive (GETs, replay candidates)" "$R_WRK"
        if command -v valgrind >/dev/null; then
            out=$(wrk_cg 0 "") || exit 1
            read -r w0 w0a w0b <<<"$out"
            out=$(wrk_cg 1 "") || exit 1
            read -r w1 w1a w1b <<<"$out"
            out=$(wrk_cg 1 RESHIM_REPLAY=connect) || exit 1
            read -r wc wca wcb <<<"$out"
            echo "  wrk instructions per request (callgrind, worker thread, user space; 1 s and 3 s runs:" \
                "$w0a/$w0b, $w1a/$w1b and $wca/$wcb requests): no shim $w0, with the shim $w1" \
                "(+$((w1 - w0))), RESHIM_REPLAY=connect $wc (+$((wc - w0)))"
        fi
        kill "$NGINX_PID" 2>/dev/null
        wait "$NGINX_PID" 2>/dev/null
    else
        echo "bench: wrk or nginx is not installed (Debian wrk, nginx-light): wrk row skipped"
    fi
fi
if wanted spawn; then
    name="start-up: $N_TRUE x /bin/true"
    ht_opts "" "" "$name, $BEFORE_NAME"
    compare "${HT_OPTS[@]}" "$name" "$N_TRUE" time "$R_SPAWN" run_spawn "$LIB" "$N_TRUE" /bin/true
    if [ -n "$EMPTY" ]; then
        # The floor, in the same units: an empty library preloaded instead of reshim.
        compare "start-up: $N_TRUE x /bin/true, empty .so (floor)" "$N_TRUE" time "$R_SPAWN" \
            run_spawn "$EMPTY" "$N_TRUE" /bin/true
    fi
    if [ -x /usr/bin/python3 ]; then
        name="start-up: $N_PY x python3 -c pass"
        ht_opts "" "" "$name, $BEFORE_NAME"
        compare "${HT_OPTS[@]}" "$name" "$N_PY" time "$R_PY" \
            run_spawn "$LIB" "$N_PY" /usr/bin/python3 -c pass
    fi
fi
if wanted malloc; then
    # ns kind: OPS = pairs per thread; the figure is wall ns per pair of one thread.
    name="malloc/free, 1 thread, 100k-slot window"
    ht_opts htraw "$name, heaptrack --raw" "$name, $BEFORE_NAME"
    compare "${HT_OPTS[@]}" "$name" "$N_MT" ns "$R_MALLOC" run_malloc 1 "$N_MT" 100000
    name="malloc/free, 2 threads, 100k-slot windows"
    ht_opts htraw "$name, heaptrack --raw" "$name, $BEFORE_NAME"
    compare "${HT_OPTS[@]}" "$name" "$N_MT" ns "$R_MALLOC" run_malloc 2 "$N_MT" 100000
    name="malloc/free, 1 thread, 1000 slots (cache-resident floor)"
    ht_opts htraw "$name, heaptrack --raw" "$name, $BEFORE_NAME"
    compare "${HT_OPTS[@]}" "$name" "$N_ST" ns "$R_MALLOC" run_malloc 1 "$N_ST" 1000
    # Both sides with the shim: "without" is RESHIM_HEAP_SAMPLE=0, "with" 512K.
    compare "malloc/free, 1 thread, 1000 slots: heap sampling 512K vs off" "$N_ST" ns \
        "$R_MALLOC" run_malloc_sampling 1 "$N_ST" 1000
    compare "malloc/free, 2 threads, 100k-slot windows: heap sampling 512K vs off" "$N_MT" ns \
        "$R_MALLOC" run_malloc_sampling 2 "$N_MT" 100000
fi
if wanted programs; then
    name="cc1 -O2 of a generated C file ($N_FUNCS functions)"
    ht_opts htraw "$name, heaptrack --raw" "$name, $BEFORE_NAME"
    compare "${HT_OPTS[@]}" "$name" 1 time "$R_PROG" run_prog "$CC1" -quiet -O2 "$CC1_IN" -o "$WORK/cc1.s"
    name=$PY_DICT_NAME
    ht_opts ht "$name, heaptrack" "$name, $BEFORE_NAME"
    compare "${HT_OPTS[@]}" "$name" 1 time "$R_PROG" run_prog /usr/bin/python3 -c "$PY_CODE"
    name="sort of $((N_WORDS >> 20)) MiB of random words"
    ht_opts ht "$name, heaptrack" "$name, $BEFORE_NAME"
    compare "${HT_OPTS[@]}" "$name" 1 time "$R_PROG" run_sort "$SORT" -o "$WORK/sorted.txt" "$WORDS"
fi

if wanted python; then
    # Both sides with the shim: "without" is RESHIM_HEAP_PYTHON=off.
    compare "$PY_DICT_NAME: Python frames on vs off" 1 time "$R_PROG" run_pyframes 1 \
        /usr/bin/python3 -c "$PY_CODE"
    compare "start-up: $N_PY x python3 -c pass: Python frames on vs off" "$N_PY" time "$R_PY" \
        run_pyframes "$N_PY" /usr/bin/python3 -c pass
    # The same in instructions (callgrind), frames off and on in alternating
    # runs: the samples fall at random (each costs ~23k instructions, and the
    # hooks go in at the first malloc sample after start-up), so 3 of each.
    if command -v valgrind >/dev/null 2>&1; then
        echo "instructions (callgrind), Python frames off / on, 3 runs of each:"
        for job in dict pass; do
            offs=() ons=()
            for r in 1 2 3; do
                if [ $job = dict ]; then
                    offs+=("$(cg_ir 1 RESHIM_HEAP_PYTHON=off /usr/bin/python3 -c "$PY_SMALL")")
                    ons+=("$(cg_ir 1 RESHIM_HEAP_PYTHON=on /usr/bin/python3 -c "$PY_SMALL")")
                else
                    offs+=("$(cg_ir 1 RESHIM_HEAP_PYTHON=off /usr/bin/python3 -c pass)")
                    ons+=("$(cg_ir 1 RESHIM_HEAP_PYTHON=on /usr/bin/python3 -c pass)")
                fi
            done
            off=$(median "${offs[@]}") on=$(median "${ons[@]}")
            printf '  %-52s %s\n' "$([ $job = dict ] && echo "python3: dict of 300k strings, sorted" ||
                echo "start-up: python3 -c pass")" "$(awk -v a="$off" -v b="$on" -v r="${offs[*]} ${ons[*]}" 'BEGIN {
                    n = split(r, v, " "); for (i = 1; i <= n; i++) v[i] = sprintf("%.1f", v[i] / 1e6)
                    printf "%.2fM off, %.2fM on: ratio %.4f (runs %s %s %s / %s %s %s)", a / 1e6, b / 1e6, b / a,
                        v[1], v[2], v[3], v[4], v[5], v[6] }')"
        done
    fi
fi

# ---- unwinders ----------------------------------------------------------------
# unwind_run SIDE DEPTH N THREADS: bench_unwind's line; SIDE off (the shim,
# sampling off), libunwind, libgcc or auto (cfiwalk's cached rules in front of
# libgcc's) (every allocation sampled).
unwind_run() {
    local side=$1 out
    shift
    if [ "$side" = off ]; then
        out=$(env LD_PRELOAD="$LIB" RESHIM_HEAP_SAMPLE=0 "$BIN/bench_unwind" "$@") || fail "bench_unwind $* failed (off)"
    else
        out=$(env LD_PRELOAD="$LIB" RESHIM_HEAP_SAMPLE=1 RESHIM_HEAP_UNWINDER="$side" \
            "$BIN/bench_unwind" "$@") || fail "bench_unwind $* failed ($side)"
    fi
    echo "$out"
}
# unwind_ir SIDE DEPTH: instructions (callgrind) per sampled allocation over
# sampling off: the difference between 2000 and 1000 allocations, / 1000.
unwind_ir() {
    local side=$1 depth=$2 n ir=() f
    for n in 1000 2000; do
        rm -rf "$WORK/cg" && mkdir -p "$WORK/cg"
        if [ "$side" = off ]; then set -- RESHIM_HEAP_SAMPLE=0; else set -- RESHIM_HEAP_SAMPLE=1 RESHIM_HEAP_UNWINDER="$side"; fi
        valgrind --tool=callgrind --trace-children=yes --callgrind-out-file="$WORK/cg/out.%p" \
            env LD_PRELOAD="$LIB" "$@" "$BIN/bench_unwind" "$depth" "$n" 0 >/dev/null 2>"$WORK/cg/err" ||
            fail "callgrind of bench_unwind failed ($side): $(tail -n 3 "$WORK/cg/err")"
        f=$(grep -l bench_unwind "$WORK"/cg/out.* | head -n 1)
        ir+=("$(sed -n 's/^summary: *//p; s/^totals: *//p' "$f" | head -n 1)")
    done
    rm -rf "$WORK/cg"
    echo $(((ir[1] - ir[0]) / 1000))
}
UNW_ROWS=()
if wanted unwind; then
    have_cg=0
    command -v valgrind >/dev/null 2>&1 && have_cg=1
    for depth in 8 32 64; do
        declare -A per=() first=() tfirst=() rssk=()
        for side in off libgcc libunwind auto; do
            vals=() fs=() ts=() rs=()
            unwind_run "$side" "$depth" 1000 0 >/dev/null # warm-up
            for ((r = 0; r < R_UNW; r++)); do
                line=$(unwind_run "$side" "$depth" "$N_UNW" 8)
                vals+=("$(field per_op_ns "$line")"); fs+=("$(field first_ns "$line")")
                ts+=("$(field thread_first_ns "$line")"); rs+=("$(field rss_kb_per_thread "$line")")
            done
            per[$side]=$(median "${vals[@]}"); first[$side]=$(median "${fs[@]}")
            tfirst[$side]=$(median "${ts[@]}"); rssk[$side]=$(median "${rs[@]}")
        done
        ir_off=""
        [ "$have_cg" = 1 ] && ir_off=$(unwind_ir off "$depth")
        for side in libgcc libunwind auto; do
            irs="-"
            [ "$have_cg" = 1 ] && irs=$(($(unwind_ir "$side" "$depth") - ir_off))
            label=$side
            [ "$side" = auto ] && label="cfiwalk (auto)"
            row=$(awk -v s="$label" -v d="$depth" -v p="${per[$side]}" -v p0="${per[off]}" -v ir="$irs" \
                -v f="${first[$side]}" -v t="${tfirst[$side]}" -v t0="${tfirst[off]}" \
                -v rs="${rssk[$side]}" -v r0="${rssk[off]}" 'BEGIN {
                printf "%s|%d|%.0f ns|%s|%.0f us|%.0f us|%+.0f KiB", s, d, p - p0, ir, f / 1e3, (t - t0) / 1e3, rs - r0 }')
            UNW_ROWS+=("$row")
            echo "  unwinder $row" | tr '|' ' '
        done
        unset per first tfirst rssk
    done
fi

rm -f "$WORK/sorted.txt" "$WORK/cc1.s" "$WORK/prog.out" "$WORK/check.out"

if ((${#INSN[@]} > 0)); then
    echo
    echo "| instructions (callgrind) | no shim | ${BEFORE_NAME:-before} | after | target |"
    echo "| --- | ---: | ---: | ---: | --- |"
    for row in "${INSN[@]}"; do
        IFS='|' read -r n z b a t <<<"$row"
        echo "| $n | $z | $b | $a | $t |"
    done
    echo
    echo "Instructions: callgrind's count of the program's threads (the same on a busy machine"
    echo "and a quiet one; the shim's own threads left out); in brackets, what the preload adds."
    echo "Per pair: bench_malloc 1 N 1000 minus bench_malloc 1 N/2 1000, over N/2 = $CG_N; glibc's"
    echo "own work (and the benchmark's loop) is the no-shim column. \"after\" is this tree's"
    echo "build/libreshim.so. Where the heap samples fall is random: the rows with sampling on"
    echo "vary by a few instructions per pair, python3 by up to 0.2M (its first samples load the"
    echo "unwinder), from run to run; the rows with sampling off do not."
fi
echo
echo "| benchmark | without shim | with shim (or heaptrack) | ratio |"
echo "| --- | ---: | ---: | ---: |"
for row in "${ROWS[@]}"; do
    IFS='|' read -r n a b r <<<"$row"
    echo "| $n | $a | $b | $r |"
done
echo
[ -n "$BEFORE_NOTE" ] && echo "$BEFORE_NOTE; its rows (\", $BEFORE_NAME\") run in the same rounds."
echo "ratio: time with the shim (or under heaptrack, without the shim) / time without (above"
echo "1: slower), median over adjacent runs; the other columns are medians. Rows \"heap"
echo "sampling 512K vs off\": both sides with the shim, RESHIM_HEAP_SAMPLE=0 against 512K;"
echo "rows \"Python frames on vs off\": both with the shim, RESHIM_HEAP_PYTHON=off against on."
if ((${#ADDED[@]} > 0)); then
    echo "Added per malloc/free pair (median of adjacent differences, with - without):"
    for a in "${ADDED[@]}"; do
        echo "  ${a%%|*}: ${a##*|}"
    done
fi
if wanted malloc || wanted programs; then
    echo "Memory rows: the shim with its default settings (accounting on). malloc/free: the"
    echo "program's own timing of its loop (ns per pair of one thread). Programs: the wall"
    echo "time of the whole command. $HT_NOTE: plain heaptrack includes its interpreter"
    echo "finishing after the program; --raw only records (its interpreter ran out of memory"
    echo "on cc1), used for cc1 and malloc/free."
fi
if ((${#UNW_ROWS[@]} > 0)); then
    echo
    echo "| unwinder | stack depth | ns per sampled stack | instructions per sampled stack | first sample (start-up) | a new thread's first sample | resident memory per sampling thread |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for row in "${UNW_ROWS[@]}"; do
        IFS='|' read -r u d p i f t m <<<"$row"
        echo "| $u | $d | $p | $i | $f | $t | $m |"
    done
    echo
    echo "Unwinders: every allocation sampled (RESHIM_HEAP_SAMPLE=1), stacks kept to 24 frames."
    echo "ns and instructions (callgrind; - without valgrind) per sampled malloc+free over the"
    echo "same with sampling off; the first sample loads the unwinder and maps the tables; a"
    echo "new thread's first sample and its resident memory, over sampling off; medians of"
    echo "$R_UNW runs of $N_UNW allocations and 8 threads."
fi
runs=()
wanted rtt && runs+=("$R_RTT (round trips)")
wanted wrk && runs+=("$R_WRK of $D_WRK s (wrk: without, with, RESHIM_REPLAY=connect in turn; wrk and nginx $([ ${#WRK_PIN[@]} -gt 0 ] && echo "pinned to CPUs ${WRK_PIN[2]} and ${NGINX_PIN[2]}" || echo "not pinned"))")
wanted spawn && runs+=("$R_SPAWN (/bin/true)" "$R_PY (python3 start-up)")
wanted malloc && runs+=("$R_MALLOC (malloc/free)")
wanted unwind && runs+=("$R_UNW (unwinders)")
wanted python && runs+=("$R_PROG (python3 dict), $R_PY (python3 start-up)")
wanted programs && runs+=("$R_PROG (programs)")
if [ -n "$HEAPTRACK" ] && { wanted malloc || wanted programs; }; then
    runs+=("$R_HT (heaptrack)")
fi
echo "Targets (README): instructions, from the callgrind table: <= +40 per free+malloc pair at"
echo "the defaults, /bin/true <= an empty preload's floor + 5.3k; wall time: round trips <= 1.02"
echo "(1.03 with replay), wrk <= 1.03, python3 -c pass <= 1.05, programs <= 1.03 (the malloc/free"
echo "and /bin/true wall rows follow from the instruction counts)."
printf -v runs_text '%s, ' "${runs[@]}"
echo "Runs of each side: ${runs_text%, }."
echo "Whole run: ${SECONDS} s."
