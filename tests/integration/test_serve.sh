#!/usr/bin/env bash
# `reshim serve`: a real Prometheus server (Debian's package, on loopback,
# scrape_interval 1s, storage in $TMP) scrapes `reshim serve` while a shimmed
# python3 that made 7 connects to a local peer runs: the target goes up and
# reshim_net_calls_total{op="connect"} of that pid is 7 in Prometheus' own
# query API. Before that, the HTTP side by hand: the exact Content-Type and
# Content-Length of /metrics, HEAD, /, 404, 405, 431 for oversized headers,
# 408 for a request that never ends, and a scrape answered at once while
# silent and dribbling clients hold connections open. SIGTERM: exit 0.
source "$(dirname "$0")/lib.sh"

RESHIM="${RESHIM_CLI:-$ROOT/build/reshim}"   # RESHIM_CLI: test another build (test_cli_static.sh)
[ -x "$RESHIM" ] || fail "$RESHIM is missing (make all)"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
PROM=$(command -v prometheus || true)
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(RESHIM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export RESHIM_RUN_DIR="$TMP/run"   # only this test's processes
CONNECTS=7

# A local peer that accepts and closes.
PEER=$(free_port)
spawn "$PY" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); c.close()' "$PEER"
wait_port "$PEER" || fail "the peer did not start"

# The shimmed app: 7 connects, then it idles the way an event loop does (in
# select(), a call the shim sees: its stats thread starts at such a call
# once 100 ms have passed) until it is scraped.
RESHIM_LOG=warn LD_PRELOAD="$SHIM" "$PY" -c '
import select, socket, sys, time
for i in range(int(sys.argv[2])):
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5).close()
open(sys.argv[3], "w").write("done\n")
end = time.time() + 200
while time.time() < end:
    select.select([], [], [], 0.2)' "$PEER" "$CONNECTS" "$TMP/app.done" &
APP=$!; CHILDREN+=($APP)
for i in $(seq 100); do [ -f "$TMP/app.done" ] && [ -S "$RESHIM_RUN_DIR/$APP.sock" ] && break; sleep 0.1; done
[ -f "$TMP/app.done" ] || fail "the app did not make its connects"
[ -S "$RESHIM_RUN_DIR/$APP.sock" ] || fail "no stats socket $RESHIM_RUN_DIR/$APP.sock for the app"

PORT=$(free_port)
"$RESHIM" serve --listen "127.0.0.1:$PORT" 2>"$TMP/serve.err" &
SERVE=$!; CHILDREN+=($SERVE)
wait_port "$PORT" || { cat "$TMP/serve.err" >&2; fail "reshim serve did not listen on $PORT"; }
grep -q "listening on http://127.0.0.1:$PORT/metrics" "$TMP/serve.err" || fail "serve did not say where it listens"
URL="http://127.0.0.1:$PORT"

# 1. HTTP by hand.
curl -sS -D "$TMP/h" -o "$TMP/body" "$URL/metrics" || fail "curl /metrics failed"
head -n 1 "$TMP/h" | grep -q '^HTTP/1.1 200 OK' || fail "/metrics: $(head -n 1 "$TMP/h")"
grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$TMP/h" || fail "/metrics Content-Type: $(grep -i content-type "$TMP/h")"
clen=$(sed -n 's/^Content-Length: \([0-9]*\).*/\1/ip' "$TMP/h")
[ "$clen" = "$(wc -c <"$TMP/body")" ] || fail "Content-Length $clen, body $(wc -c <"$TMP/body") bytes"
series="reshim_net_calls_total{pid=\"$APP\",comm=\"python3\",op=\"connect\"}"
grep -qF "$series $CONNECTS" "$TMP/body" || fail "no '$series $CONNECTS' in /metrics: $(grep -F 'op="connect"' "$TMP/body" | head -n 3)"
if command -v promtool >/dev/null; then
    promtool check metrics <"$TMP/body" >"$TMP/pt" 2>&1 || { cat "$TMP/pt" >&2; fail "promtool check metrics rejects /metrics"; }
fi
pass "GET /metrics: 200, text/plain; version=0.0.4, Content-Length $clen; '$series $CONNECTS'"
curl -sS -I "$URL/metrics" >"$TMP/hh" || fail "HEAD failed"
grep -qi '^Content-Length: [1-9]' "$TMP/hh" && head -n 1 "$TMP/hh" | grep -q ' 200 ' || fail "HEAD /metrics: $(cat "$TMP/hh")"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$URL/")" = 200 ] && curl -s "$URL/" | grep -q 'href="/metrics"' || fail "GET / does not point at /metrics"
[ "$(code "$URL/nothing")" = 404 ] || fail "GET /nothing: $(code "$URL/nothing")"
[ "$(code -X POST -d x=1 "$URL/metrics")" = 405 ] || fail "POST /metrics is not 405"
curl -s -D - -o /dev/null -X DELETE "$URL/metrics" | grep -qi '^Allow: GET, HEAD' || fail "405 without Allow"
[ "$(code -H "X-Big: $(head -c 9000 /dev/zero | tr '\0' a)" "$URL/metrics")" = 431 ] || fail "9 KB of headers is not 431"
pass "HEAD /metrics 200 with Content-Length; / links /metrics; /nothing 404; POST and DELETE 405 (Allow: GET, HEAD); 9 KB of headers 431"

"$PY" - "$PORT" <<'EOF' >"$TMP/slow" || { cat "$TMP/slow" >&2; fail "slow clients: see above"; }
import socket, sys, time
port = int(sys.argv[1])
silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
drib = socket.create_connection(("127.0.0.1", port)); drib.send(b"GET /metr")
time.sleep(0.2)
t = time.time()
s = socket.create_connection(("127.0.0.1", port)); s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
r = b""
while True:
    d = s.recv(65536)
    if not d: break
    r += d
took = time.time() - t
assert r.startswith(b"HTTP/1.1 200 OK"), r[:80]
assert took < 2.0, "a scrape took %.2f s behind slow clients" % took
t = time.time()
first = drib.recv(100).split(b"\r\n")[0]
waited = time.time() - t
assert first == b"HTTP/1.1 408 Request Timeout", first
assert 3.5 < waited + 0.2 < 7, waited
assert silent[0].recv(10) == b""
print("scrape %.3f s behind 20 silent clients and a dribbling one; the dribbler got 408 after %.1f s" % (took, waited + 0.2))
EOF
pass "$(cat "$TMP/slow")"

# 2. A real Prometheus scraping it.
if [ -z "$PROM" ]; then
    kill -TERM $SERVE; rc=0; wait $SERVE || rc=$?; [ "$rc" = 0 ] || fail "serve exited $rc on SIGTERM"
    skip "no prometheus (Debian package prometheus): the HTTP side passed, no live scrape"
fi
PPORT=$(free_port)
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: reshim
    static_configs:
      - targets: ['127.0.0.1:$PORT']
EOF
if command -v promtool >/dev/null; then
    promtool check config "$TMP/prometheus.yml" >"$TMP/pt" 2>&1 || { cat "$TMP/pt" >&2; fail "promtool check config"; }
fi
start=$(date +%s%N)
"$PROM" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/data" \
    --web.listen-address="127.0.0.1:$PPORT" >"$TMP/prom.log" 2>&1 &
PROMPID=$!; CHILDREN+=($PROMPID)
API="http://127.0.0.1:$PPORT"
for i in $(seq 200); do curl -sf "$API/-/ready" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$API/-/ready" >/dev/null || { tail -n 20 "$TMP/prom.log" >&2; fail "prometheus not ready"; }
# query EXPR: the first value of an instant query, or "" (Prometheus' JSON, read by python3).
query() {
    curl -s "$API/api/v1/query" --data-urlencode "query=$1" | "$PY" -c '
import json, sys
try:
    r = json.load(sys.stdin)["data"]["result"]
    print(r[0]["value"][1] if r else "")
except Exception:
    print("")'
}
up=""
for i in $(seq 600); do up=$(query 'up{job="reshim"}'); [ "$up" = 1 ] && break; sleep 0.1; done
[ "$up" = 1 ] || { tail -n 20 "$TMP/prom.log" >&2; curl -s "$API/api/v1/targets" >&2; fail "the target never came up"; }
t_up=$(( ($(date +%s%N) - start) / 1000000 ))
val=""
for i in $(seq 100); do
    val=$(query "reshim_net_calls_total{op=\"connect\",pid=\"$APP\"}"); [ -n "$val" ] && break; sleep 0.1
done
[ "$val" = "$CONNECTS" ] || fail "Prometheus has reshim_net_calls_total{op=\"connect\",pid=\"$APP\"} = '$val', expected $CONNECTS"
health=$(curl -s "$API/api/v1/targets" | "$PY" -c '
import json, sys
t = json.load(sys.stdin)["data"]["activeTargets"][0]
print(t["health"], "(" + (t["lastError"] or "no error") + ")")')
[ "${health%% *}" = up ] || fail "target health: $health"
mem=$(query "reshim_resident_memory_bytes{pid=\"$APP\"}")
[ -n "$mem" ] && [ "${mem%.*}" -gt 1000000 ] || fail "reshim_resident_memory_bytes of the app: '$mem'"
pass "Prometheus $("$PROM" --version 2>&1 | head -n 1 | awk '{print $3}'): up==1 after $t_up ms; target health '$health'; reshim_net_calls_total{op=\"connect\",pid=\"$APP\"} = $val; reshim_resident_memory_bytes = $mem"

kill -TERM $PROMPID; wait $PROMPID 2>/dev/null || true
kill -TERM $SERVE; rc=0; wait $SERVE || rc=$?
[ "$rc" = 0 ] || fail "serve exited $rc on SIGTERM"
kill $APP 2>/dev/null || true
pass "SIGTERM: reshim serve exits 0 ($(tail -n 1 "$TMP/serve.err" | sed 's/^reshim: //'))"
