#!/usr/bin/env bash
# Debian's redis-server (jemalloc-linked) doing real work under the shim,
# driven by redis-benchmark (hiredis) under the shim: -n 20000 -c 20 -P 4 for
# SET, GET, INCR and LPUSH. The same run is made first with neither under the
# shim, then with both:
#   - each time the benchmark reports all four tests and no error, and the
#     data it left is exact: counter == 20000 (every INCR counted once),
#     LLEN mylist == 20000, the SET value, DBSIZE 3 -- the same both ways;
#   - the server counts as many connections received as the shimmed
#     benchmark's final stats count connect calls (none failed);
#   - the shimmed server's descriptors come back to the baseline taken
#     before the benchmark (the shim's own fds are in the baseline) once the
#     clients are gone, and its stats socket answers valid JSON with sane
#     counters (allocs and frees grew, recv/send calls counted);
#   - neither process prints a reshim warning (RESHIM_LOG=warn on the server)
#     or a crash, and the server shuts down with exit code 0 both ways.
# Requests/s both ways are printed (information, not asserted).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/real_lib.sh"

for p in redis-server redis-cli redis-benchmark; do
    command -v "$p" >/dev/null || skip "$p is not installed (apt-get install redis-server redis-tools)"
done
[ -f "$SHIM" ] && [ -x "$CLI" ] || fail "build first (make all)"
cd "$TMP"
N=20000
TESTS=set,get,incr,lpush

srv_pid=
start_server() {   # start_server NAME PORT [env...]: redis-server in the foreground, no persistence
    local name=$1 port=$2; shift 2
    env "$@" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --dir "$TMP" --logfile '' >"$TMP/$name.out" 2>"$TMP/$name.err" &
    srv_pid=$!; CHILDREN+=("$srv_pid")
    wait_port "$port" 20 || { cat "$TMP/$name.out" "$TMP/$name.err" >&2; fail "$name: redis-server did not listen"; }
}
stop_server() {    # stop_server NAME PORT: SHUTDOWN NOSAVE, exit code 0 expected
    local name=$1 port=$2 rc=0
    redis-cli -p "$port" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    wait_until 10 gone "$srv_pid" ||
        fail "$name: redis-server still running 10 s after SHUTDOWN"
    wait "$srv_pid" || rc=$?
    [ $rc -eq 0 ] || { tail -n 20 "$TMP/$name.out" "$TMP/$name.err" >&2; fail "$name: redis-server exited with $rc"; }
    grep -q "ready to exit, bye bye" "$TMP/$name.out" || fail "$name: redis-server did not log its clean exit"
}
conns() { redis-cli -p "$1" INFO stats | tr -d '\r' | sed -n 's/^total_connections_received://p'; }
# bench NAME PORT [env...]: the benchmark; its CSV in NAME.csv; checks completeness.
bench() {
    local name=$1 port=$2; shift 2
    local rc=0
    timeout 60 env "$@" redis-benchmark -p "$port" -n $N -c 20 -P 4 -t $TESTS --csv \
        >"$TMP/$name.csv" 2>"$TMP/$name.err" || rc=$?
    [ $rc -eq 0 ] || { cat "$TMP/$name.csv" "$TMP/$name.err" >&2; fail "$name: redis-benchmark rc $rc"; }
    grep -hv "^reshim\[[0-9]*\]: info:" "$TMP/$name.csv" "$TMP/$name.err" | grep -qiE "error|fail" && { cat "$TMP/$name.csv" "$TMP/$name.err" >&2; fail "$name: errors reported"; }
    for t in SET GET INCR LPUSH; do
        grep -q "^\"$t\",\"[0-9.]*\"" "$TMP/$name.csv" || { cat "$TMP/$name.csv" >&2; fail "$name: no $t result"; }
    done
}
rps() { sed -n "s/^\"$2\",\"\([0-9.]*\)\".*/\1/p" "$TMP/$1.csv"; }
# data PORT: the state the benchmark left, one line
data() {
    echo "dbsize=$(redis-cli -p "$1" DBSIZE) counter=$(redis-cli -p "$1" GET counter:__rand_int__)" \
        "llen=$(redis-cli -p "$1" LLEN mylist) value=$(redis-cli -p "$1" GET key:__rand_int__)"
}
expected="dbsize=3 counter=$N llen=$N value=VXK"

# ---- without the shim ----
port=$(free_port)
start_server plain "$port"
c0=$(conns "$port")
bench bench0 "$port"
c1=$(conns "$port")
d0=$(data "$port")
[ "$d0" = "$expected" ] || fail "without the shim the benchmark left: $d0 (expected $expected)"
stop_server plain "$port"
pass "without the shim: benchmark complete, $d0, $((c1 - c0)) connections"

# ---- with the shim, both sides ----
port=$(free_port)
start_server shim "$port" LD_PRELOAD="$SHIM" RESHIM_LOG=warn
ldd "$(command -v redis-server)" | grep -q jemalloc || echo "  note: this redis-server is not linked with jemalloc"
wait_sock "$srv_pid" 10 || fail "the shimmed redis-server's stats socket does not answer"
stats_json "$srv_pid" "$TMP/st0.json" || fail "stats before the benchmark: not valid JSON"
redis-cli -p "$port" PING >/dev/null
fd_settle "$srv_pid" || fail "the shimmed redis-server's descriptors did not settle"
base=$(fd_count "$srv_pid")
fd_list "$srv_pid" >"$TMP/fds0"
c0=$(conns "$port")
push_start
bench bench1 "$port" RESHIM_LOG=info "$PUSHED"
c1=$(conns "$port")
d1=$(data "$port")
[ "$d1" = "$d0" ] || fail "with the shim the benchmark left: $d1; without: $d0"
pass "with the shim: benchmark complete, $d1 (the same as without)"

bconn=$(stat_field net.connect.calls "$TMP/bench1.err")
bfail=$(stat_field net.connect.failures "$TMP/bench1.err")
[ "$bconn" -eq $((c1 - c0)) ] || fail "benchmark connect calls=$bconn but the server received $((c1 - c0)) connections"
[ "$bconn" -ge 80 ] || fail "benchmark connect calls=$bconn, expected >= 80 (4 tests x 20 clients)"
[ "$bfail" = 0 ] || fail "benchmark connect failures=$bfail"
clean_stderr "redis-benchmark" "$TMP/bench1.err"
pass "redis-benchmark's final stats: connect calls=$bconn failures=0, = connections the server received"

c=$(wait_fds "$srv_pid" "$base" 10) || { fd_list "$srv_pid" | diff "$TMP/fds0" - >&2; fail "redis-server fds: $c after the clients closed, baseline $base"; }
pass "redis-server fds back to the baseline ($base, the shim's own included) after $bconn connections"

stats_json "$srv_pid" "$TMP/st1.json" || fail "stats after the benchmark: not valid JSON"
for f in st0 st1; do
    eval "${f}_allocs=$(json_field "$TMP/$f.json" "d['mem']['allocs']")"
    eval "${f}_frees=$(json_field "$TMP/$f.json" "d['mem']['frees']")"
    eval "${f}_recv=$(json_field "$TMP/$f.json" "d['net']['recv']['calls']")"
    eval "${f}_send=$(json_field "$TMP/$f.json" "d['net']['send']['calls']")"
done
[ "$(json_field "$TMP/st1.json" "d['pid']")" = "$srv_pid" ] || fail "stats answered for another pid"
[ "$st0_allocs" -gt 0 ] || fail "stats: allocs=$st0_allocs before the benchmark"
[ "$st1_allocs" -gt "$st0_allocs" ] && [ "$st1_frees" -gt "$st0_frees" ] ||
    fail "stats: allocs $st0_allocs -> $st1_allocs, frees $st0_frees -> $st1_frees: no growth over 80000 commands"
[ "$st1_frees" -le "$st1_allocs" ] || fail "stats: more frees ($st1_frees) than allocs ($st1_allocs)"
# 80000 pipelined commands (4 per write from 20 clients): at least one read each 4.
[ $((st1_recv - st0_recv)) -ge $((4 * N / 4)) ] || fail "stats: recv calls grew by $((st1_recv - st0_recv)) only"
[ $((st1_send - st0_send)) -ge $((4 * N / 4)) ] || fail "stats: send calls grew by $((st1_send - st0_send)) only"
pass "server stats: allocs $st0_allocs -> $st1_allocs, frees $st0_frees -> $st1_frees, recv +$((st1_recv - st0_recv)), send +$((st1_send - st0_send))"

stop_server shim "$port"
clean_stderr "redis-server" "$TMP/shim.out" "$TMP/shim.err"
[ -S "$RESHIM_RUN_DIR/$srv_pid.sock" ] && fail "the stats socket of redis-server ($srv_pid) is left behind"
pass "shimmed redis-server shut down cleanly (rc 0), no reshim warning, its stats socket removed"

printf '  rates (req/s, without -> with the shim, ratio):'
for t in SET GET INCR LPUSH; do
    printf ' %s %s -> %s (%s)' "$t" "$(rps bench0 $t)" "$(rps bench1 $t)" "$(ratio "$(rps bench1 $t)" "$(rps bench0 $t)")"
done
echo
