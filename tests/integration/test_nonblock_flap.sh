#!/usr/bin/env bash
# alone: 99 % of connects against a 300/200 ms flapping server
# Non-blocking connects against a flapping backend (peers/flap_http.py:
# listens 300 ms, gone 200 ms, over and over). Two unmodified event-loop
# clients, 300 sequential requests each, a new connection every time:
#   curl: one curl invocation with 300 URLs, 100 a second, "Connection: close"
#         (a new connection each; libcurl connects non-blocking, waits with
#         poll, then asks SO_ERROR);
#   node: one node process, 300 sequential http.get with agent:false, 10 ms
#         apart (libuv: non-blocking connect, epoll).
# Without the shim the connects made while the server is gone are refused
# (a sizeable share fails: asserted >= 5 %, reported). With the shim (defaults:
# 3 retries, 0.5 s base) the refused non-blocking connect is hidden from the
# client's wait and retried after its backoff: >= 99 % succeed, the exit
# summaries show retries and recoveries, and no client ever blocks.
source "$(dirname "$0")/lib.sh"

need "$SHIM"
command -v curl >/dev/null || skip "curl not installed"
NODE=/usr/bin/node
[ -x "$NODE" ] || skip "node not installed at $NODE"

N=300
MIN_OK=$((N * 99 / 100))          # 297
MIN_FAIL_PLAIN=$((N / 20))        # without the shim at least 15 must fail

port=$(free_port)
spawn "$PY" "$PEERS/flap_http.py" "$port" 0.3 0.2 >"$TMP/server" 2>&1
wait_port "$port" 10 || fail "flap server did not come up"
URL="http://127.0.0.1:$port/"

rate() { echo "$(( $1 * 1000 / N / 10 )).$(( $1 * 1000 / N % 10 ))%"; }

# ---- curl: one invocation, 300 URLs ------------------------------------------
# --rate 100/s spaces the transfers (300 over ~3 s: many server cycles);
# "Connection: close" (and the server's own close) means a new connection per
# URL: checked with %{num_connects} and the shim's connect calls=300.
# run_curl OUTFILE ERRFILE [with_shim]: one line per URL,
# "HTTP_CODE NUM_CONNECTS SIZE_DOWNLOAD".
args=()
for ((i = 0; i < N; i++)); do args+=(-o /dev/null "$URL"); done
run_curl() {
    local out=$1 err=$2 t0 rc=0; shift 2
    t0=$(date +%s%N)
    "$@" curl -sS --rate 100/s -H 'Connection: close' -w '%{http_code} %{num_connects} %{size_download}\n' \
        "${args[@]}" >"$out" 2>"$err" || rc=$?
    echo "    curl${1:+ with the shim}: rc $rc, $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}
count_ok() { grep -c '^200 1 5$' "$1" || true; }

run_curl "$TMP/curl0" "$TMP/curl0.err"
[ "$(wc -l <"$TMP/curl0")" = "$N" ] || fail "curl without the shim: $(wc -l <"$TMP/curl0") results for $N URLs"
ok0=$(count_ok "$TMP/curl0")
echo "    curl without the shim: $(sort "$TMP/curl0" | uniq -c | tr -s ' ' | tr '\n' ';') (code, connects, bytes)"
grep -q "Failed to connect\|Couldn't connect" "$TMP/curl0.err" || [ "$ok0" -eq "$N" ] ||
    { head -n 3 "$TMP/curl0.err"; fail "curl without the shim failed for another reason than a refused connect"; }
[ $((N - ok0)) -ge "$MIN_FAIL_PLAIN" ] || fail "curl without the shim: only $((N - ok0))/$N failed: is the server flapping?"
pass "curl without the shim: $ok0/$N succeeded ($(rate "$ok0")), $((N - ok0)) refused"

wrap() { RESHIM_LOG=info pushed "$@"; }
run_curl "$TMP/curl1" "$TMP/curl1.err" wrap
[ "$(wc -l <"$TMP/curl1")" = "$N" ] || fail "curl with the shim: $(wc -l <"$TMP/curl1") results for $N URLs"
ok1=$(count_ok "$TMP/curl1")
echo "    curl with the shim: $(sort "$TMP/curl1" | uniq -c | tr -s ' ' | tr '\n' ';')"
calls=$(stat_field net.connect.calls "$TMP/curl1.err") || fail "curl with the shim: no stats pushed: was the shim loaded?"
echo "    shim: connect $(stat_field net.connect "$TMP/curl1.err")"
grep -v ": info: \(connect to .* recovered after\|exit summary\)" "$TMP/curl1.err" | head -n 10 | sed 's/^/    | /' || true
[ "$calls" = "$N" ] || fail "curl with the shim: connect calls=$calls, expected one new connection per URL ($N)"
[ "$ok1" -ge "$MIN_OK" ] || fail "curl with the shim: only $ok1/$N succeeded ($(rate "$ok1")), expected >= 99 %"
recovered=$(stat_field net.connect.recovered "$TMP/curl1.err")
[ "${recovered:-0}" -ge 1 ] || fail "curl with the shim: no connect recovered: was the server ever down?"
pass "curl with the shim: $ok1/$N succeeded ($(rate "$ok1")); without: $ok0/$N ($(rate "$ok0")); $recovered connects recovered"

# ---- node: one process, 300 sequential http.get ------------------------------
cat >"$TMP/client.js" <<'JSEOF'
const http = require('http');
const [url, n] = [process.argv[2], +process.argv[3]];
let ok = 0, i = 0;
const errors = {};
const t0 = Date.now();
function one() {
  if (i++ === n) {
    console.log(`ok=${ok} failed=${n - ok} secs=${((Date.now() - t0) / 1000).toFixed(1)}`);
    for (const [k, v] of Object.entries(errors)) console.log(`  ${v} x ${k}`);
    return;
  }
  let done = false;
  const finish = (err) => {
    if (done) return;
    done = true;
    if (err) errors[err] = (errors[err] || 0) + 1; else ok++;
    setTimeout(one, 10); // 10 ms apart: the run spans many server cycles
  };
  const req = http.get(url, { agent: false, headers: { Connection: 'close' } }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => body += d);
    res.on('end', () => finish(body === 'flap\n' ? null : 'wrong body'));
    res.on('error', (e) => finish(e.code || e.message));
  });
  req.on('error', (e) => finish(e.code || e.message));
}
one();
JSEOF

"$NODE" "$TMP/client.js" "$URL" "$N" >"$TMP/node0" 2>"$TMP/node0.err" ||
    fail "node crashed without the shim: $(tail -n 3 "$TMP/node0.err")"
ok0=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' "$TMP/node0")
[ -n "$ok0" ] || fail "no result from node without the shim: $(cat "$TMP/node0")"
sed 's/^/    node without the shim: /' "$TMP/node0"
grep -q "ECONNREFUSED" "$TMP/node0" || [ "$ok0" -eq "$N" ] || fail "node without the shim failed for another reason than ECONNREFUSED"
[ $((N - ok0)) -ge "$MIN_FAIL_PLAIN" ] || fail "node without the shim: only $((N - ok0))/$N failed: is the server flapping?"
pass "node without the shim: $ok0/$N succeeded ($(rate "$ok0"))"

RESHIM_LOG=info pushed "$NODE" "$TMP/client.js" "$URL" "$N" >"$TMP/node1" 2>"$TMP/node1.err" ||
    { tail -n 5 "$TMP/node1.err"; fail "node crashed with the shim"; }
ok1=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' "$TMP/node1")
[ -n "$ok1" ] || fail "no result from node with the shim: $(cat "$TMP/node1")"
sed 's/^/    node with the shim: /' "$TMP/node1"
echo "    shim: connect $(stat_field net.connect "$TMP/node1.err")"
grep -v ": info: \(connect to .* recovered after\|exit summary\)" "$TMP/node1.err" | head -n 10 | sed 's/^/    | /' || true
[ "$ok1" -ge "$MIN_OK" ] || fail "node with the shim: only $ok1/$N succeeded ($(rate "$ok1")), expected >= 99 %"
rec=$(stat_field net.connect.recovered "$TMP/node1.err")
[ "${rec:-0}" -ge 1 ] || fail "node with the shim: no connect recovered"
pass "node with the shim: $ok1/$N succeeded ($(rate "$ok1")); without: $ok0/$N ($(rate "$ok0")); $rec connects recovered"
echo "    server cycles: $(grep -c " up$" "$TMP/server" || true)"
