#!/usr/bin/env bash
# alone: it works in the shared run directories (/tmp/reshim-UID, abstract names) that other tests' processes use
# nginx as Debian runs it: a root master whose 2 workers change to `user
# nobody`, under the shim at its default settings (no RESHIM_RUN_DIR, no
# XDG_RUNTIME_DIR, as root has in CI), on a loopback port, with its own
# prefix, config and logs in TMP:
#   - curl gets 6 answers (200) from it;
#   - each worker's stats socket is in nobody's default run directory
#     (/tmp/reshim-<nobody>/<pid>.sock, owned by nobody), not refused as
#     "owned by uid 0" (the run directory of the uid it started with);
#   - no line with "reshim" in nginx's error.log or stderr;
#   - root's `reshim ls --json` lists the master and both workers, `reshim
#     stats <worker> --json` answers for the worker (exit 0, its pid), and
#     `reshim metrics` has all three;
#   - after `nginx -s stop` every socket file of the three is gone (each
#     process removes its own, in its own uid's directory).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/real_lib.sh"

for p in nginx curl; do
    command -v "$p" >/dev/null || skip "$p is not installed (apt-get install nginx-light curl)"
done
[ "$(id -u)" = 0 ] || skip "needs root (nginx's master runs as root, its workers as nobody)"
NOBODY=$(id -u nobody 2>/dev/null) || skip "no user nobody"
NOGROUP=$(id -gn nobody)   # nogroup on Debian
[ -f "$SHIM" ] && [ -x "$CLI" ] || fail "build first (make all)"
# The defaults, as a root service has them.
unset RESHIM_RUN_DIR XDG_RUNTIME_DIR

chmod 755 "$TMP"   # the workers (nobody) read the document root
N="$TMP/nginx"; mkdir -p "$N/www" "$N/tmp"
chmod 755 "$N" "$N/www"
printf 'hello\n' >"$N/www/index.html"; chmod 644 "$N/www/index.html"
port=$(free_port)
cat >"$N/nginx.conf" <<EOF
user nobody $NOGROUP;
worker_processes 2;
daemon off;
master_process on;
pid $N/nginx.pid;
error_log $N/error.log info;
events { worker_connections 64; }
http {
    access_log $N/access.log;
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fastcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $N/www;
    }
}
EOF
nginx_cmd() { nginx -p "$N" -c "$N/nginx.conf" -e "$N/error.log" "$@"; }
LD_PRELOAD="$SHIM" nginx -p "$N" -c "$N/nginx.conf" -e "$N/error.log" >"$N/stdout" 2>"$N/stderr" &
master=$!; CHILDREN+=("$master")
wait_port "$port" 20 || { cat "$N/stderr" "$N/error.log" >&2; fail "nginx did not listen"; }
workers() { ps -o pid= --ppid "$master" | tr -d ' ' | sort -n; }
i=0; while [ "$(workers | wc -l)" -ne 2 ]; do
    i=$((i + 1)); [ $i -gt 200 ] && { ps -ef | grep -v grep | grep nginx >&2; tail -n 5 "$N/error.log" >&2; fail "nginx has $(workers | wc -l) workers, expected 2"; }; sleep 0.05
done
mapfile -t W < <(workers)
for w in "${W[@]}"; do
    [ "$(ps -o uid= -p "$w" | tr -d ' ')" = "$NOBODY" ] || fail "worker $w runs as uid $(ps -o uid= -p "$w"), not nobody"
done

for _ in 1 2 3 4 5 6; do
    code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/index.html") || fail "curl failed"
    [ "$code" = 200 ] || fail "curl got $code"
done
pass "nginx (master $master as root, workers ${W[*]} as uid $NOBODY) answered 6 requests with 200"

# Each process has its stats socket (a file or an abstract name: whichever
# the shim chose) once it is 100 ms old and waited.
has_socket() { grep -Eq " (@reshim-[0-9]+/$1|/.*/$1\.sock)\$" /proc/net/unix; }
for p in "$master" "${W[@]}"; do
    i=0; until has_socket "$p"; do
        i=$((i + 1)); [ $i -gt 200 ] && { grep reshim /proc/net/unix >&2; fail "process $p has no stats socket after 10 s"; }; sleep 0.05
    done
done
bad=$(grep -h reshim "$N/error.log" "$N/stderr" || true)
[ -z "$bad" ] || fail "nginx's log has reshim lines: $(printf '%s' "$bad" | head -n 3)"
for w in "${W[@]}"; do
    s="/tmp/reshim-$NOBODY/$w.sock"
    [ -S "$s" ] && [ "$(stat -c %u "$s")" = "$NOBODY" ] ||
        fail "worker $w: no socket $s owned by uid $NOBODY: $(grep -E "/$w(\.sock)?\$" /proc/net/unix || echo none)"
done
pass "no reshim line in error.log; the workers' sockets are in /tmp/reshim-$NOBODY (owned by uid $NOBODY)"

rc=0; "$CLI" ls --json >"$TMP/ls.json" 2>"$TMP/ls.err" || rc=$?
[ $rc = 0 ] || fail "reshim ls --json: exit $rc: $(cat "$TMP/ls.err")"
listed=$("$PY" -c 'import json,sys; print(" ".join(str(r["pid"]) for r in json.load(open(sys.argv[1]))))' "$TMP/ls.json")
for p in "$master" "${W[@]}"; do
    case " $listed " in *" $p "*) ;; *) fail "reshim ls --json as root does not list $p (lists: $listed; $(cat "$TMP/ls.err"))" ;; esac
done
pass "root's reshim ls --json lists the master $master and the workers ${W[*]}"

for w in "${W[@]}"; do
    rc=0; "$CLI" stats "$w" --json >"$TMP/w$w.json" 2>"$TMP/w$w.err" || rc=$?
    [ $rc = 0 ] || fail "reshim stats $w --json: exit $rc: $(cat "$TMP/w$w.err")"
    [ "$(json_field "$TMP/w$w.json" "d['pid']")" = "$w" ] || fail "reshim stats $w: pid $(json_field "$TMP/w$w.json" "d['pid']")"
done
"$CLI" metrics >"$TMP/metrics" 2>"$TMP/metrics.err" || fail "reshim metrics: $(cat "$TMP/metrics.err")"
for p in "$master" "${W[@]}"; do
    grep -q "pid=\"$p\"" "$TMP/metrics" || fail "reshim metrics has no series of $p"
done
pass "root's reshim stats <worker> --json answers for each worker (exit 0, its pid); reshim metrics has all three"

nginx_cmd -s stop 2>>"$N/stderr" || fail "nginx -s stop failed: $(tail -n 2 "$N/stderr")"
i=0; while kill -0 "$master" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 200 ] && fail "nginx still running 10 s after -s stop"; sleep 0.05
done
left=""
for p in "$master" "${W[@]}"; do
    for s in /tmp/reshim-*/"$p.sock"; do [ -e "$s" ] && left+=" $s"; done
done
[ -z "$left" ] || fail "socket files left behind:$left"
bad=$(grep -h reshim "$N/error.log" "$N/stderr" || true)
[ -z "$bad" ] || fail "nginx's log has reshim lines: $(printf '%s' "$bad" | head -n 3)"
pass "nginx stopped; no socket file of the three left, no reshim line in its logs"
