#!/usr/bin/env bash
# alone: 99 % against a server up and down in fractions of a second
# A flapping backend (peers/flap_http.py): listens 300 ms, is gone 200 ms, over
# and over; while it is gone connects are refused. One python3 process makes
# 300 sequential urllib requests (a new connection each, no timeout, 10 ms
# apart). Without the shim many fail (about the down share of the time, 40 %);
# with the shim at least 99 % succeed: a refused connect is retried after
# 250-500 ms, when the server is back.
source "$(dirname "$0")/lib.sh"

N=300
cat > "$TMP/client.py" <<'PYEOF'
import collections, sys, time, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
ok, errors = 0, collections.Counter()
t0 = time.monotonic()
for i in range(n):
    try:
        if urllib.request.urlopen(url).read() == b"flap\n":
            ok += 1
        else:
            errors["wrong body"] += 1
    except Exception as e:
        reason = getattr(e, "reason", e)
        errors["%s: %s" % (type(reason).__name__, reason)] += 1
    time.sleep(0.01)
print("ok=%d failed=%d secs=%.1f" % (ok, n - ok, time.monotonic() - t0))
for k, v in errors.most_common():
    print("  %4d x %s" % (v, k))
PYEOF

port=$(free_port)
spawn "$PY" "$PEERS/flap_http.py" "$port" 0.3 0.2 >"$TMP/server" 2>&1
wait_port "$port" 10 || fail "flap server did not come up"

rate() { echo "$(( $1 * 1000 / N / 10 )).$(( $1 * 1000 / N % 10 ))%"; }

"$PY" "$TMP/client.py" "http://127.0.0.1:$port/" "$N" >"$TMP/plain" 2>"$TMP/plain.err" ||
    fail "client crashed without the shim: $(tail -n 3 "$TMP/plain.err")"
ok0=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' "$TMP/plain")
[ -n "$ok0" ] || fail "no result without the shim: $(cat "$TMP/plain")"
sed 's/^/    /' "$TMP/plain"
[ $((N - ok0)) -ge $((N / 10)) ] || fail "without the shim only $((N - ok0))/$N failed: is the server flapping?"
pass "without the shim: $ok0/$N succeeded ($(rate "$ok0"))"

RESHIM_LOG=info pushed "$PY" "$TMP/client.py" "http://127.0.0.1:$port/" "$N" >"$TMP/shim" 2>"$TMP/shim.err" ||
    { tail -n 5 "$TMP/shim.err"; fail "client crashed with the shim"; }
ok1=$(sed -n 's/^ok=\([0-9]*\) .*/\1/p' "$TMP/shim")
[ -n "$ok1" ] || fail "no result with the shim: $(cat "$TMP/shim")"
sed 's/^/    /' "$TMP/shim"
echo "    shim: connect $(stat_field net.connect "$TMP/shim.err")"
# Anything else the shim said (gave up, budget, breaker), and the errors.
grep -v ": info: \(connect to .* recovered after\|exit summary\)" "$TMP/shim.err" | sed 's/^/    | /' | head -n 20 || true
echo "    server cycles so far: $(grep -c " up$" "$TMP/server" || true)"
[ "$ok1" -ge $((N * 99 / 100)) ] || fail "with the shim only $ok1/$N succeeded ($(rate "$ok1")), expected >= 99 %"
[ "$(stat_field net.connect.recovered "$TMP/shim.err")" -ge 1 ] || fail "with the shim no connect was recovered"
pass "with the shim: $ok1/$N succeeded ($(rate "$ok1")); without: $ok0/$N ($(rate "$ok0"))"

# The exit-summary log line (RESHIM_LOG=info): its format, tested here once (every
# other test reads figures from the pushed stats), and the same figures as those.
n=; for c in connect dns send recv; do n="$n$c calls=[0-9]+ failures=[0-9]+ retries=[0-9]+ recovered=[0-9]+ gave_up=[0-9]+; "; done
re="^reshim\\[$(cat "$TMP/shim.err.pid")\\]: info: exit summary: ${n}dns_stale=[0-9]+; destinations=[0-9]+; mem rss=[0-9]+ rss_peak=[0-9]+ rss_anon=[0-9]+ heap_live=[0-9]+ heap_peak=[0-9]+ allocs=[0-9]+ frees=[0-9]+ mmap_anon=[0-9]+ mmap_anon_peak=[0-9]+ budget=[0-9]+ budget_source=(env|cgroup|none) state=(ok|warn|critical|over) trims=[0-9]+ trimmed=[0-9]+ enomem=[0-9]+$"
grep -Eq "$re" "$TMP/shim.err" || fail "the exit summary line is not in its format: $(grep 'exit summary' "$TMP/shim.err")"
for f in calls failures retries recovered gave_up; do
    [ "$(summary_field "$TMP/shim.err" connect "$f")" = "$(stat_field "net.connect.$f" "$TMP/shim.err")" ] ||
        fail "exit summary connect $f=$(summary_field "$TMP/shim.err" connect "$f"), pushed stats $(stat_field net.connect "$TMP/shim.err")"
done
pass "the exit summary line: in its format, with the connect figures of the final pushed stats"
