#!/usr/bin/env bash
# Debian's nginx (master + 2 workers, sendfile on, run as root with its own
# config, logs and temp paths in TMP) serving files of assorted sizes (0 B to
# 10 MB), once with nothing under the shim and once with nginx, curl and wrk
# all under the shim:
#   - curl fetches every file over one keep-alive connection: each is 200 and
#     its sha256 equals the file's, the same both ways;
#   - wrk -t2 -c20 -d2s reports requests, no socket errors and no non-2xx
#     responses, both ways (req/s printed as information, not asserted);
#   - under the shim, each worker's descriptor count after the load is back
#     to what it was before (the shim's own fds included), the worker pids
#     are the same (none crashed and was respawned), each worker's stats
#     socket answers valid JSON, and the workers' send calls grew by at least
#     one per response; their stats sockets are gone once nginx stopped;
#   - no reshim warning (RESHIM_LOG=warn) and no crash in nginx's or the
#     clients' stderr; nginx exits 0 on `nginx -s stop` both ways.
# Then the server (under the shim both times) restarts between two requests:
# nginx stopped, started again on the same port 1 s later, curl run at once:
# without the shim curl fails (rc 7, connection refused); under the shim
# (RESHIM_RETRIES=5: room for a slow start on a busy machine) its connect is
# retried and it gets the file intact.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/real_lib.sh"

for p in nginx curl wrk; do
    command -v "$p" >/dev/null || skip "$p is not installed (apt-get install nginx-light curl wrk)"
done
[ "$(id -u)" = 0 ] || skip "needs root (nginx binds and runs its workers as root here)"
[ -f "$SHIM" ] && [ -x "$CLI" ] || fail "build first (make all)"

# ---- the document root ----
WWW="$TMP/www"; mkdir -p "$WWW"
: >"$WWW/empty.txt"
printf 'x' >"$WWW/one.txt"
head -c 1000 /dev/urandom >"$WWW/s1000.bin"
head -c 4096 /dev/urandom >"$WWW/s4096.bin"
head -c 65537 /dev/urandom >"$WWW/s65537.bin"
head -c 1048576 /dev/urandom >"$WWW/s1m.bin"
head -c 10485760 /dev/urandom >"$WWW/s10m.bin"
FILES=(empty.txt one.txt s1000.bin s4096.bin s65537.bin s1m.bin s10m.bin)
(cd "$WWW" && sha256sum "${FILES[@]}") >"$TMP/expected.sha"

port=$(free_port)
conf() {   # conf NAME: a config with everything of that instance under TMP/NAME
    local d="$TMP/$1"; mkdir -p "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
user root;
worker_processes 2;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 256; }
http {
    access_log $d/access.log;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 30;
    keepalive_requests 100000;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$port;
        root $WWW;
    }
}
EOF
}
master=
start_nginx() {   # start_nginx NAME [env...]: nginx in the foreground (the master is $master)
    local name=$1; shift
    env "$@" nginx -p "$TMP/$name" -c "$TMP/$name/nginx.conf" -e "$TMP/$name/error.log" \
        >>"$TMP/$name/stdout" 2>>"$TMP/$name/stderr" &
    master=$!; CHILDREN+=("$master")
    wait_port "$port" 20 || { cat "$TMP/$name/stderr" "$TMP/$name/error.log" >&2; fail "$name: nginx did not listen"; }
}
stop_nginx() {    # stop_nginx NAME: nginx -s stop; the master must exit 0
    local name=$1 rc=0
    nginx -p "$TMP/$name" -c "$TMP/$name/nginx.conf" -e "$TMP/$name/error.log" -s stop 2>>"$TMP/$name/stderr" ||
        fail "$name: nginx -s stop failed: $(tail -n 2 "$TMP/$name/stderr")"
    wait_until 10 gone "$master" ||
        fail "$name: nginx still running 10 s after -s stop"
    wait "$master" || rc=$?
    [ $rc -eq 0 ] || { tail -n 5 "$TMP/$name/stderr" "$TMP/$name/error.log" >&2; fail "$name: nginx exited with $rc"; }
}
workers() { ps -o pid= --ppid "$master" | tr -d ' ' | sort -n; }
two_workers() { [ "$(workers | wc -l)" -eq 2 ]; }
wait_workers() {  # until the master has 2 children
    wait_until 10 two_workers || fail "nginx has $(workers | wc -l) workers, expected 2"
}
# fetch_all NAME [env... [pushed.sh]]: curl fetches every file over one connection; checks codes and sums
fetch_all() {
    local name=$1; shift
    local args=() f rc=0
    mkdir -p "$TMP/$name.got"
    for f in "${FILES[@]}"; do args+=(-o "$TMP/$name.got/$f" "http://127.0.0.1:$port/$f"); done
    env "$@" curl -sS --fail -w '%{http_code} %{num_connects}\n' "${args[@]}" >"$TMP/$name.codes" 2>"$TMP/$name.err" || rc=$?
    [ $rc -eq 0 ] || fail "$name: curl rc $rc: $(tail -n 2 "$TMP/$name.err")"
    [ "$(grep -c '^200 ' "$TMP/$name.codes")" -eq ${#FILES[@]} ] || fail "$name: codes $(tr '\n' ' ' <"$TMP/$name.codes")"
    # one connection for all (keep-alive): num_connects is 1 then 0s
    [ "$(awk '{ s += $2 } END { print s }' "$TMP/$name.codes")" -eq 1 ] || fail "$name: curl did not reuse its connection: $(tr '\n' ' ' <"$TMP/$name.codes")"
    (cd "$TMP/$name.got" && sha256sum -c --quiet "$TMP/expected.sha") >&2 || fail "$name: checksums differ"
}
# load NAME [env... [pushed.sh]]: wrk on the 4 KB file; no socket errors, no non-2xx
load() {
    local name=$1; shift
    local rc=0
    timeout 30 env "$@" wrk -t2 -c20 -d2s "http://127.0.0.1:$port/s4096.bin" >"$TMP/$name.out" 2>"$TMP/$name.err" || rc=$?
    [ $rc -eq 0 ] || { cat "$TMP/$name.out" "$TMP/$name.err" >&2; fail "$name: wrk rc $rc"; }
    grep -qE "Socket errors|Non-2xx" "$TMP/$name.out" && { cat "$TMP/$name.out" >&2; fail "$name: wrk saw errors"; }
    grep -q "requests in" "$TMP/$name.out" || { cat "$TMP/$name.out" >&2; fail "$name: no wrk summary"; }
    [ "$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TMP/$name.out")" -gt 0 ] || fail "$name: wrk made no request"
}
wrk_rps() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TMP/$1.out"; }
wrk_reqs() { sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TMP/$1.out"; }

# ---- without the shim ----
conf plain
start_nginx plain
wait_workers
fetch_all fetch0
load wrk0
stop_nginx plain
pass "without the shim: ${#FILES[@]} files (0 B .. 10 MB) intact over one connection; wrk $(wrk_reqs wrk0) requests, no errors"

# ---- with the shim: nginx, curl and wrk ----
port=$(free_port)   # a port of its own: nothing else can have taken it since the first phase
conf shim
start_nginx shim LD_PRELOAD="$SHIM" RESHIM_LOG=warn
wait_workers
mapfile -t W < <(workers)
# Each worker's stats thread starts at its first wait (epoll_wait).
for w in "${W[@]}"; do
    wait_sock "$w" 10 || fail "worker $w: the stats socket does not answer"
    stats_json "$w" "$TMP/w$w.0.json" || fail "worker $w: stats not valid JSON"
done
curl -sS -o /dev/null "http://127.0.0.1:$port/one.txt" 2>"$TMP/warm.err" ||   # a worker past its first request
    { cat "$TMP/warm.err" "$TMP/shim/stderr" "$TMP/shim/error.log" >&2; fail "with the shim: the first request failed"; }
declare -A base
for w in "${W[@]}"; do fd_settle "$w" || fail "worker $w: its descriptors did not settle"; done
for w in "${W[@]}"; do base[$w]=$(fd_count "$w"); fd_list "$w" >"$TMP/fds.$w"; done
push_start
fetch_all fetch1 RESHIM_LOG=info "$PUSHED"
load wrk1 RESHIM_LOG=info "$PUSHED"
clean_stderr curl "$TMP/fetch1.err"
clean_stderr wrk "$TMP/wrk1.err"
[ "$(stat_field net.connect.calls "$TMP/fetch1.err")" = 1 ] || fail "curl under the shim: connect calls=$(stat_field net.connect.calls "$TMP/fetch1.err"), expected 1"
wconn=$(stat_field net.connect.calls "$TMP/wrk1.err")
[ "${wconn:-0}" -ge 20 ] && [ "$(stat_field net.connect.failures "$TMP/wrk1.err")" = 0 ] ||
    fail "wrk under the shim: connect calls=${wconn:-?} failures=$(stat_field net.connect.failures "$TMP/wrk1.err")"
pass "with the shim: the same ${#FILES[@]} files intact (curl connect calls=1); wrk $(wrk_reqs wrk1) requests, no errors (connect calls=$wconn)"

[ "$(workers)" = "$(printf '%s\n' "${W[@]}")" ] || fail "the workers changed under load (a crash?): $(workers | tr '\n' ' ') vs ${W[*]}"
for w in "${W[@]}"; do
    c=$(wait_fds "$w" "${base[$w]}" 10) || { fd_list "$w" | diff "$TMP/fds.$w" - >&2; fail "worker $w: $c fds after the load, ${base[$w]} before"; }
    stats_json "$w" "$TMP/w$w.1.json" || fail "worker $w: stats after the load not valid JSON"
done
sent=0
for w in "${W[@]}"; do
    s0=$(json_field "$TMP/w$w.0.json" "d['net']['send']['calls']"); s1=$(json_field "$TMP/w$w.1.json" "d['net']['send']['calls']")
    a1=$(json_field "$TMP/w$w.1.json" "d['mem']['allocs']")
    [ "$a1" -gt 0 ] || fail "worker $w: allocs=$a1"
    sent=$((sent + s1 - s0))
done
# every response is at least one write (sendfile is not counted: headers are)
[ "$sent" -ge "$(wrk_reqs wrk1)" ] || fail "workers' send calls grew by $sent, fewer than wrk's $(wrk_reqs wrk1) responses"
pass "workers ${W[*]}: same pids, fds back to baseline (${base[${W[0]}]}, ${base[${W[1]}]}), send calls +$sent >= $(wrk_reqs wrk1) responses"
stop_nginx shim
for w in "${W[@]}"; do [ -S "$RESHIM_RUN_DIR/$w.sock" ] && fail "the stats socket of worker $w is left behind"; done
clean_stderr nginx "$TMP/shim/stderr" "$TMP/shim/error.log"
grep -E "\[(alert|crit|emerg)\]" "$TMP/plain/error.log" "$TMP/shim/error.log" && fail "nginx logged alerts (a worker crash?)"
pass "shimmed nginx stopped with exit code 0; the workers' stats sockets removed; no reshim warning, no alert in error.log"

# ---- the server restarts between two requests ----
restart_case() {   # restart_case NAME [env...]: curl right after a stop; nginx back 1 s later
    local name=$1; shift
    port=$(free_port)
    conf "$name"
    start_nginx "$name" LD_PRELOAD="$SHIM" RESHIM_LOG=warn
    curl -sS --fail -o /dev/null "http://127.0.0.1:$port/s65537.bin" || fail "$name: the first request failed"
    stop_nginx "$name"
    ( sleep 1; exec env LD_PRELOAD="$SHIM" RESHIM_LOG=warn nginx -p "$TMP/$name" -c "$TMP/$name/nginx.conf" \
        -e "$TMP/$name/error.log" >>"$TMP/$name/stdout" 2>>"$TMP/$name/stderr" ) &
    master=$!; CHILDREN+=("$master")
    local rc=0
    env "$@" curl -sS --fail -o "$TMP/$name.file" -w '%{http_code}\n' "http://127.0.0.1:$port/s65537.bin" \
        >"$TMP/$name.code" 2>"$TMP/$name.err" || rc=$?
    wait_port "$port" 20 || fail "$name: nginx did not come back"
    stop_nginx "$name"
    RC=$rc
}
RC=
restart_case late0; rc=$RC
[ "$rc" -eq 7 ] || fail "restart without the shim: curl rc $rc, expected 7: $(cat "$TMP/late0.err")"
grep -q "Connection refused\|Failed to connect" "$TMP/late0.err" || fail "restart without the shim: $(cat "$TMP/late0.err")"
pass "restart without the shim: curl rc 7 ($(tail -n 1 "$TMP/late0.err" | cut -c1-70))"
restart_case late1 RESHIM_LOG=info RESHIM_RETRIES=5 "$PUSHED"; rc=$RC
[ "$rc" -eq 0 ] || { cat "$TMP/late1.err" >&2; fail "restart with the shim: curl rc $rc"; }
cmp -s "$TMP/late1.file" "$WWW/s65537.bin" || fail "restart with the shim: the file differs"
rec=$(stat_field net.connect.recovered "$TMP/late1.err"); ret=$(stat_field net.connect.retries "$TMP/late1.err")
[ "$rec" = 1 ] && [ "${ret:-0}" -ge 1 ] || fail "restart with the shim: connect recovered=$rec retries=$ret"
clean_stderr "curl (restart)" "$TMP/late1.err"
pass "restart with the shim: curl got the 64 KB file intact, connect retries=$ret recovered=$rec"

echo "  rates (wrk req/s, without -> with the shim, ratio): $(wrk_rps wrk0) -> $(wrk_rps wrk1) ($(ratio "$(wrk_rps wrk1)" "$(wrk_rps wrk0)"))"
