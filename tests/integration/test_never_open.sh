#!/usr/bin/env bash
# A port that never opens. (1) One blocking connect (python3): refused at once
# without the shim; with the shim (defaults) still ECONNREFUSED, after its 5
# retries (~1.9-3.75 s: more than 0.5 s, within the 10 s deadline), and the
# stats (pushed at exit) show gave_up=1 retries=5. (2) The breaker opens on time, not
# on a count of calls: one process (build/bin/blocking_client -n 40) makes 40
# connects in a row, timed: without the shim all are refused at once; with
# the shim (RESHIM_RETRIES=1, base 100 ms: each retried call takes 50-100 ms,
# and the breaker opens after 5 failed calls over at least 1 s) the calls of
# the first second are all retried (more than 5 of them: a count alone would
# have opened it at the 5th), then the breaker opens once ("breaker open for
# 127.0.0.1:PORT", a warn line shown by default) and the following calls fail
# at once, still with ECONNREFUSED; the retry budget never refuses this
# client, which makes one call at a time.
source "$(dirname "$0")/lib.sh"

need "$BIN/blocking_client"

cat > "$TMP/one.py" <<'PYEOF'
import errno, socket, sys, time
s = socket.socket()
t0 = time.monotonic()
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("connected %.3f" % (time.monotonic() - t0))
except OSError as e:
    print("%s %.3f" % (errno.errorcode.get(e.errno, e.errno), time.monotonic() - t0))
PYEOF

# ---- (1) one connect, default settings ----
port=$(free_port)
"$PY" "$TMP/one.py" "$port" >"$TMP/out" || fail "client crashed without the shim"
read -r err secs <"$TMP/out"
[ "$err" = ECONNREFUSED ] || fail "without the shim: $err, expected ECONNREFUSED"
awk -v s="$secs" 'BEGIN { exit !(s < 0.5) }' || fail "without the shim the refusal took ${secs}s"
pass "without the shim: $err after ${secs}s"

RESHIM_LOG=info pushed "$PY" "$TMP/one.py" "$port" >"$TMP/out" 2>"$TMP/err" ||
    { cat "$TMP/err"; fail "client crashed with the shim"; }
read -r err secs <"$TMP/out"
[ "$err" = ECONNREFUSED ] || fail "with the shim: $err, expected ECONNREFUSED"
# 3 retries with equal jitter: 0.25-0.5 + 0.5-1 + 1-2 s of backoff.
awk -v s="$secs" 'BEGIN { exit !(s > 0.5) }' || fail "with the shim the refusal took only ${secs}s: no retries?"
awk -v s="$secs" 'BEGIN { exit !(s < 12) }' || fail "with the shim the refusal took ${secs}s, beyond the 10 s deadline"
grep -q "connect to 127.0.0.1:$port gave up after 5 retries" "$TMP/err" ||
    { sed 's/^/    | /' "$TMP/err"; fail "no 'gave up after 5 retries' line"; }
[ "$(stat_field net.connect.gave_up "$TMP/err")" = 1 ] || fail "connect: $(stat_field net.connect "$TMP/err")"
[ "$(stat_field net.connect.retries "$TMP/err")" = 5 ] || fail "connect: $(stat_field net.connect "$TMP/err")"
[ "$(stat_field net.connect.failures "$TMP/err")" = 1 ] || fail "connect: $(stat_field net.connect "$TMP/err")"
pass "with the shim: $err after ${secs}s; connect retries=5 gave_up=1"

# ---- (2) the breaker: 40 connects in one process ----
port=$(free_port)
rc=0; "$BIN/blocking_client" -n 40 "$port" >"$TMP/plain" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "blocking_client -n 40 without the shim: rc $rc"
[ "$(grep -c ": ECONNREFUSED " "$TMP/plain")" = 40 ] || fail "without the shim: $(cat "$TMP/plain")"
awk '{ if ($(NF-1) + 0 >= 20) bad = 1 } END { exit bad }' "$TMP/plain" || fail "without the shim a refusal was slow: $(cat "$TMP/plain")"
pass "without the shim: 40 x ECONNREFUSED, each at once"

rc=0; RESHIM_LOG=info RESHIM_RETRIES=1 RESHIM_BACKOFF_BASE=100ms pushed "$BIN/blocking_client" -n 40 "$port" \
    >"$TMP/shim" 2>"$TMP/err" || rc=$?
[ $rc -eq 1 ] || fail "blocking_client -n 40 with the shim: rc $rc"
[ "$(grep -c ": ECONNREFUSED " "$TMP/shim")" = 40 ] || fail "with the shim not 40 x ECONNREFUSED: $(cat "$TMP/shim")"
# Column NF-1 is the time in ms. The retried calls come first (> 40 ms each),
# then only fast ones (< 20 ms); the retried ones last at least 1 s in all.
awk '$(NF-1) + 0 > 40 { if (fast) { print "call " NR " retried after a fast one"; bad = 1 } n++; ms += $(NF-1) }
     $(NF-1) + 0 < 20 { fast++ }
     $(NF-1) + 0 >= 20 && $(NF-1) + 0 <= 40 { print "call " NR " took " $(NF-1) " ms"; bad = 1 }
     END { if (n <= 5) { print "only " n " calls retried: the breaker opened on a count"; bad = 1 }
           if (ms < 950) { print "the retried calls took only " ms " ms: opened before 1 s"; bad = 1 }
           if (fast < 5) { print "only " fast " fast calls: the breaker did not stop retries"; bad = 1 }
           printf "%d %d %d\n", n, ms, fast > "/dev/stderr"; exit bad }' "$TMP/shim" 2>"$TMP/counts" >"$TMP/why" ||
    { sed 's/^/    /' "$TMP/shim"; fail "$(cat "$TMP/why")"; }
read -r n_retried ms_retried n_fast <"$TMP/counts"
grep -q "warn: breaker open for 127.0.0.1:$port after [0-9]* failed connects" "$TMP/err" ||
    fail "no 'breaker open for 127.0.0.1:$port' warning"
[ "$(grep -c "breaker open for" "$TMP/err")" = 1 ] || fail "the breaker opened more than once"
! grep -q "retry budget" "$TMP/err" || fail "the retry budget refused a client making one call at a time"
[ "$(stat_field net.connect.retries "$TMP/err")" = "$n_retried" ] || fail "connect: $(stat_field net.connect "$TMP/err")"
[ "$(stat_field net.connect.failures "$TMP/err")" = 40 ] || fail "connect: $(stat_field net.connect "$TMP/err")"
pass "with the shim: the first $n_retried calls retried (${ms_retried} ms in all), then the breaker opened; $n_fast calls at once"
