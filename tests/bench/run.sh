#!/usr/bin/env bash
# tests/bench/run.sh: reshim's benchmarks (`make bench`). Each benchmark does
# the same work without and with build/libreshim.so in alternating runs
# (A B A B ...) and prints the median of each side and the ratio, then a
# markdown table. It prints figures only: timing never fails the run (the
# machine may be noisy); only a broken benchmark or a shim that did not load
# makes it exit non-zero.
#
#   bench_rtt    request/response round trips in one process (an echo thread
#                and a client) over TCP loopback (send/recv, read/write), a
#                unix socketpair, and TCP connect+close; run whole under
#                LD_PRELOAD or not
#   bench_spawn  N x posix_spawn + waitpid of /bin/true or python3, the
#                children getting LD_PRELOAD (reshim, or an empty library as
#                the floor of what any preload costs)
#
# Settings (environment):
#   BENCH_ROUNDS  runs of each side per benchmark (default: 21 for round
#                 trips, 15 for /bin/true, 7 for python3)
#   BENCH_QUICK=1 a fast smoke run: 3 rounds of much smaller batches
#   BENCH_PIN=0   do not pin the round-trip benchmarks to one CPU
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

for f in "$LIB" "$BIN/bench_rtt" "$BIN/bench_spawn"; do
    if [ ! -e "$f" ]; then
        echo "bench: $f is missing; run \`make bench\`" >&2
        exit 1
    fi
done
mkdir -p "$WORK"

# Batches are short (0.1-0.5 s) and many: with alternating runs, the median
# of many short pairs is far steadier here than a few long runs.
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    R_RTT=3 R_SPAWN=3 R_PY=3
    N_TCP=2000 N_UNIX=4000 N_CONN=400 N_TRUE=100 N_PY=10
else
    R_RTT=21 R_SPAWN=15 R_PY=7
    N_TCP=10000 N_UNIX=20000 N_CONN=2000 N_TRUE=500 N_PY=100
fi
if [ -n "${BENCH_ROUNDS:-}" ]; then R_RTT=$BENCH_ROUNDS R_SPAWN=$BENCH_ROUNDS R_PY=$BENCH_ROUNDS; fi

PIN=()
if [ "${BENCH_PIN:-1}" != 0 ] && command -v taskset >/dev/null 2>&1; then
    # The highest CPU this process may run on (away from CPU 0's interrupts).
    cpu=$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//; s/.*[,-]//')
    if [ -n "$cpu" ] && taskset -c "$cpu" true 2>/dev/null; then
        PIN=(taskset -c "$cpu")
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

# field NAME LINE: the value of NAME=value in a benchmark's output line.
field() {
    local f
    for f in $2; do
        case $f in "$1="*) echo "${f#*=}"; return 0 ;; esac
    done
    return 1
}

# Each runner takes 0 (without the shim) or 1 (with it) and prints the
# seconds its timed part took. The same exec chain is used on both sides.
run_rtt() { # shim mode n
    local out
    if [ "$1" = 1 ]; then
        out=$("${PIN[@]}" env LD_PRELOAD="$LIB" "$BIN/bench_rtt" "$2" "$3") || fail "bench_rtt $2 failed (with the shim)"
    else
        out=$("${PIN[@]}" env -u LD_PRELOAD "$BIN/bench_rtt" "$2" "$3") || fail "bench_rtt $2 failed"
    fi
    field seconds "$out"
}

run_spawn() { # shim lib n program args...
    local shim=$1 lib=$2 out
    shift 2
    if [ "$shim" = 1 ]; then
        out=$("$BIN/bench_spawn" -p "$lib" "$@") || fail "bench_spawn $2 failed (preloading $lib)"
    else
        out=$("$BIN/bench_spawn" "$@") || fail "bench_spawn $2 failed"
    fi
    field seconds "$out"
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

# Rows of the final table, as "name|without|with|ratio".
ROWS=()

# compare NAME OPS KIND ROUNDS RUNNER ARGS...: one discarded warm-up run of
# each side, then ROUNDS runs of each, alternating A B A B ... (A without the
# shim, B with it). Each B is compared with the A before and the A after it,
# so slow drift of the machine's speed cancels out and neither side always
# runs first; the ratio reported is the median of these 2*ROUNDS-1 adjacent
# ratios. The columns are the medians of each side: KIND "rate" shows OPS
# per second, KIND "time" the wall time of a batch of OPS.
compare() {
    local name=$1 ops=$2 kind=$3 rounds=$4 runner=$5
    shift 5
    local r ta=() tb=() ratios=()
    "$runner" 0 "$@" >/dev/null || exit 1
    "$runner" 1 "$@" >/dev/null || exit 1
    for ((r = 0; r < rounds; r++)); do
        ta[r]=$("$runner" 0 "$@") || exit 1
        tb[r]=$("$runner" 1 "$@") || exit 1
    done
    for ((r = 0; r < rounds; r++)); do
        ratios+=("$(awk -v a="${ta[r]}" -v b="${tb[r]}" 'BEGIN { print b / a }')")
        if ((r + 1 < rounds)); then
            ratios+=("$(awk -v a="${ta[r + 1]}" -v b="${tb[r]}" 'BEGIN { print b / a }')")
        fi
    done
    local ma mb mr q
    ma=$(median "${ta[@]}")
    mb=$(median "${tb[@]}")
    mr=$(median "${ratios[@]}")
    q=$(quartiles "${ratios[@]}")
    local row
    row=$(awk -v n="$name" -v ops="$ops" -v k="$kind" -v a="$ma" -v b="$mb" -v r="$mr" 'BEGIN {
        if (k == "rate")
            printf "%s|%.0f/s|%.0f/s|%.3f", n, ops / a, ops / b, r
        else
            printf "%s|%.3f s|%.3f s|%.3f", n, a, b, r
    }')
    ROWS+=("$row")
    printf '  %-48s ratio %s  (middle half of %d ratios: %s)\n' "$name" "${row##*|}" \
        "${#ratios[@]}" "$(awk -v q="$q" 'BEGIN { split(q, v, " "); printf "%.3f to %.3f", v[1], v[2] }')"
}

echo "reshim benchmarks: the same work without and with the shim, alternating runs"
echo "  cpu: $(nproc) online; round trips $([ ${#PIN[@]} -gt 0 ] && echo "pinned to CPU ${PIN[2]}" || echo "not pinned")"

# The shim must really be there: its exit summary counts the calls.
summary=$(env LD_PRELOAD="$LIB" RESHIM_LOG=info "$BIN/bench_rtt" tcp 1000 2>&1 >/dev/null | grep 'exit summary' || true)
sends=$(printf '%s\n' "$summary" | sed -n 's/.*send calls=\([0-9]*\).*/\1/p')
if [ -z "$sends" ] || [ "$sends" -lt 1000 ]; then
    fail "the shim did not count the benchmark's calls (exit summary: ${summary:-none})"
fi
echo "  shim active: a 1000-round-trip run counted send calls=$sends"
echo

SECONDS=0
compare "TCP loopback round trips, send/recv, 64 B" "$N_TCP" rate "$R_RTT" run_rtt tcp "$N_TCP"
compare "TCP loopback round trips, read/write, 64 B" "$N_TCP" rate "$R_RTT" run_rtt tcp-rw "$N_TCP"
compare "unix socketpair round trips, send/recv, 64 B" "$N_UNIX" rate "$R_RTT" run_rtt unix "$N_UNIX"
compare "TCP connect + 1 B each way + close" "$N_CONN" rate "$R_RTT" run_rtt connect "$N_CONN"
compare "start-up: $N_TRUE x /bin/true" "$N_TRUE" time "$R_SPAWN" run_spawn "$LIB" "$N_TRUE" /bin/true
if [ -n "$EMPTY" ]; then
    # The floor, in the same units: an empty library preloaded instead of reshim.
    compare "start-up: $N_TRUE x /bin/true, empty .so (floor)" "$N_TRUE" time "$R_SPAWN" \
        run_spawn "$EMPTY" "$N_TRUE" /bin/true
fi
if [ -x /usr/bin/python3 ]; then
    compare "start-up: $N_PY x python3 -c pass" "$N_PY" time "$R_PY" \
        run_spawn "$LIB" "$N_PY" /usr/bin/python3 -c pass
fi

echo
echo "| benchmark | without shim | with shim | ratio |"
echo "| --- | ---: | ---: | ---: |"
for row in "${ROWS[@]}"; do
    IFS='|' read -r n a b r <<<"$row"
    echo "| $n | $a | $b | $r |"
done
echo
echo "ratio: time with the shim / time without (above 1: the shim is slower), median over"
echo "adjacent runs; the other columns are medians. Targets: round trips <= 1.02,"
echo "start-up <= 1.10. Runs: $R_RTT (round trips), $R_SPAWN (/bin/true), $R_PY (python3) of each side; ${SECONDS} s."
