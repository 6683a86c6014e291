#!/usr/bin/env bash
# A node HTTP server and a node client doing real work (peers/real/
# node_echo_server.js and node_echo_client.js): 2000 requests, 10 at a time,
# half over a keep-alive agent and half on a new connection each; POST /echo
# of bodies of 1 B .. 64 KB (the server checks them with sha256 and echoes
# them) and GET /data/N of up to 200 KB, every answer checked. Once with
# neither under the shim, once with both:
#   - all 2000 answers right both ways, and the digest over all of them the
#     same without and with the shim;
#   - the shimmed client's final stats count as many connect calls as the
#     server counted connections (over 1000: the non-keep-alive half), none
#     failed; its recv calls are counted;
#   - the shimmed server's descriptors come back to the baseline taken before
#     the run once the client is gone, its stats socket answers valid JSON
#     with the requests' reads and writes counted;
#   - no reshim warning (server at RESHIM_LOG=warn) and no crash; the server
#     exits 0 on SIGTERM both ways.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/real_lib.sh"

command -v node >/dev/null || skip "node is not installed (apt-get install nodejs)"
[ -f "$SHIM" ] && [ -x "$CLI" ] || fail "build first (make all)"
N=2000
CONC=10
SERVER="$PEERS/real/node_echo_server.js"
CLIENT="$PEERS/real/node_echo_client.js"

srv=
start_server() {   # start_server NAME PORT [env...]
    local name=$1 port=$2; shift 2
    env "$@" node "$SERVER" "$port" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    srv=$!; CHILDREN+=("$srv")
    wait_port "$port" 20 || { cat "$TMP/$name.err" >&2; fail "$name: the node server did not listen"; }
}
stop_server() {    # stop_server NAME: SIGTERM, exit code 0 expected
    local rc=0
    kill -TERM "$srv"; wait "$srv" || rc=$?
    [ $rc -eq 0 ] || { cat "$TMP/$1.err" >&2; fail "$1: the node server exited with $rc"; }
}
server_conns() { curl -s --noproxy '*' "http://127.0.0.1:$1/stats" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["connections"])'; }
run_client() {     # run_client NAME PORT [env...]: the client; its JSON line in NAME.json
    local name=$1 port=$2; shift 2
    local rc=0
    timeout 120 env "$@" node "$CLIENT" "$port" $N $CONC >"$TMP/$name.json" 2>"$TMP/$name.err" || rc=$?
    [ $rc -eq 0 ] || { cat "$TMP/$name.json" "$TMP/$name.err" >&2; fail "$name: client rc $rc"; }
    [ "$(json_field "$TMP/$name.json" "d['ok']")" = $N ] || fail "$name: $(cat "$TMP/$name.json")"
}

# ---- without the shim ----
port=$(free_port)
start_server plain "$port"
c0=$(server_conns "$port")
run_client client0 "$port"
c1=$(server_conns "$port")
stop_server plain
d0=$(json_field "$TMP/client0.json" "d['digest']")
pass "without the shim: $N/$N answers right ($(json_field "$TMP/client0.json" "d['bytes']") bytes), $((c1 - c0 - 1)) connections"

# ---- with the shim, both sides ----
port=$(free_port)
start_server shim "$port" LD_PRELOAD="$SHIM" RESHIM_LOG=warn
c0=$(server_conns "$port")
wait_sock "$srv" 10 || fail "the shimmed node server's stats socket does not answer"
stats_json "$srv" "$TMP/st0.json" || fail "server stats before the run: not valid JSON"
fd_settle "$srv" || fail "the shimmed node server's descriptors did not settle"
base=$(fd_count "$srv"); fd_list "$srv" >"$TMP/fds0"
push_start
run_client client1 "$port" RESHIM_LOG=info "$PUSHED"
d1=$(json_field "$TMP/client1.json" "d['digest']")
[ "$d1" = "$d0" ] || fail "the answers differ with the shim: digest $d1, without $d0"
pass "with the shim: $N/$N answers right, the same digest as without (${d1:0:16}...)"

c=$(wait_fds "$srv" "$base" 10) || { fd_list "$srv" | diff "$TMP/fds0" - >&2; fail "node server: $c fds after the client left, baseline $base"; }
pass "node server fds back to the baseline ($base, the shim's own included)"
c1=$(server_conns "$port")
conns=$((c1 - c0 - 1))   # less this /stats request's own
cconn=$(stat_field net.connect.calls "$TMP/client1.err")
[ "$cconn" -eq "$conns" ] || fail "client connect calls=$cconn, the server counted $conns connections"
[ "$cconn" -ge $((N / 2)) ] || fail "client connect calls=$cconn, expected >= $((N / 2)) (the non-keep-alive half)"
[ "$(stat_field net.connect.failures "$TMP/client1.err")" = 0 ] || fail "client connect failures=$(stat_field net.connect.failures "$TMP/client1.err")"
crecv=$(stat_field net.recv.calls "$TMP/client1.err")
[ "${crecv:-0}" -ge $N ] || fail "client recv calls=${crecv:-?}, fewer than $N answers"
clean_stderr "node client" "$TMP/client1.err"
pass "client's final stats: connect calls=$cconn (= the server's connections), failures=0, recv calls=$crecv"

stats_json "$srv" "$TMP/st1.json" || fail "server stats after the run: not valid JSON"
r0=$(json_field "$TMP/st0.json" "d['net']['recv']['calls']"); r1=$(json_field "$TMP/st1.json" "d['net']['recv']['calls']")
s0=$(json_field "$TMP/st0.json" "d['net']['send']['calls']"); s1=$(json_field "$TMP/st1.json" "d['net']['send']['calls']")
m1=$(json_field "$TMP/st1.json" "d['mem']['mmap_anon_bytes'] + d['mem']['heap_live_bytes']")
[ $((r1 - r0)) -ge $N ] && [ $((s1 - s0)) -ge $N ] || fail "server stats: recv +$((r1 - r0)), send +$((s1 - s0)) for $N requests"
[ "$m1" -gt 0 ] || fail "server stats: no memory counted"
pass "server stats: recv calls +$((r1 - r0)), send calls +$((s1 - s0)), heap+mappings $((m1 >> 20)) MiB"
stop_server shim
clean_stderr "node server" "$TMP/shim.out" "$TMP/shim.err"
[ -S "$RESHIM_RUN_DIR/$srv.sock" ] && fail "the stats socket of the node server ($srv) is left behind"
pass "shimmed node server exited 0 on SIGTERM, no reshim warning, its stats socket removed"
