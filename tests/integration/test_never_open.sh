#!/usr/bin/env bash
# A port that never opens. (1) One blocking connect (python3): refused at once
# without the shim; with the shim (defaults) still ECONNREFUSED, after its 3
# retries (~1.75-3.5 s: more than 0.5 s, within the 10 s deadline), and the
# exit summary shows gave_up=1 retries=3. (2) The breaker: one process
# (build/bin/blocking_client -n 8) makes 8 connects in a row, timed: without
# the shim all are refused at once; with the shim (RESHIM_RETRIES=1, see
# below) the first 5 spend retry time, the 5th failure opens the breaker
# ("breaker open for 127.0.0.1:PORT", a warn line shown by default) and the
# following calls fail at once, still with ECONNREFUSED.
source "$(dirname "$0")/lib.sh"

[ -x "$BIN/blocking_client" ] || make -C "$ROOT" --no-print-directory build/bin/blocking_client >/dev/null ||
    fail "cannot build blocking_client"

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

RESHIM_LOG=info with_shim "$PY" "$TMP/one.py" "$port" >"$TMP/out" 2>"$TMP/err" ||
    { cat "$TMP/err"; fail "client crashed with the shim"; }
read -r err secs <"$TMP/out"
[ "$err" = ECONNREFUSED ] || fail "with the shim: $err, expected ECONNREFUSED"
# 3 retries with equal jitter: 0.25-0.5 + 0.5-1 + 1-2 s of backoff.
awk -v s="$secs" 'BEGIN { exit !(s > 0.5) }' || fail "with the shim the refusal took only ${secs}s: no retries?"
awk -v s="$secs" 'BEGIN { exit !(s < 12) }' || fail "with the shim the refusal took ${secs}s, beyond the 10 s deadline"
grep -q "connect to 127.0.0.1:$port gave up after 3 retries" "$TMP/err" ||
    { sed 's/^/    | /' "$TMP/err"; fail "no 'gave up after 3 retries' line"; }
[ "$(summary_field "$TMP/err" connect gave_up)" = 1 ] || fail "exit summary: $(grep 'exit summary' "$TMP/err")"
[ "$(summary_field "$TMP/err" connect retries)" = 3 ] || fail "exit summary: $(grep 'exit summary' "$TMP/err")"
[ "$(summary_field "$TMP/err" connect failures)" = 1 ] || fail "exit summary: $(grep 'exit summary' "$TMP/err")"
pass "with the shim: $err after ${secs}s; connect retries=3 gave_up=1"

# ---- (2) the breaker: 8 connects in one process ----
# RESHIM_RETRIES=1: the retry budget's floor is 10 retries per 10 s per
# destination, so with more retries per call the budget, not the breaker,
# would be what stops calls 4-8 (3 retries: the 4th call gets 1, the 5th none;
# 2 retries: exactly 10 by call 5, so calls 6+ would be fast with no breaker
# at all). With 1 retry per call, 5 are spent and 5 remain: calls 6-8 are
# fast only if the breaker stops them. Base 100 ms: each retried call sleeps
# 50-100 ms.
port=$(free_port)
rc=0; "$BIN/blocking_client" -n 8 "$port" >"$TMP/plain" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "blocking_client -n 8 without the shim: rc $rc"
[ "$(grep -c ": ECONNREFUSED " "$TMP/plain")" = 8 ] || fail "without the shim: $(cat "$TMP/plain")"
awk '{ if ($(NF-1) + 0 >= 20) bad = 1 } END { exit bad }' "$TMP/plain" || fail "without the shim a refusal was slow: $(cat "$TMP/plain")"
pass "without the shim: 8 x ECONNREFUSED, each at once ($(awk '{printf "%s%s", sep, $(NF-1); sep="/"}' "$TMP/plain") ms)"

ms_list() { awk -v a="$2" -v b="$3" 'NR >= a && NR <= b { printf "%s%s", sep, $(NF-1); sep = "/" }' "$1"; }
rc=0; RESHIM_LOG=info RESHIM_RETRIES=1 RESHIM_BACKOFF_BASE=100ms with_shim "$BIN/blocking_client" -n 8 "$port" \
    >"$TMP/shim" 2>"$TMP/err" || rc=$?
sed 's/^/    /' "$TMP/shim"; grep -v "info: connect to .* gave up after" "$TMP/err" | sed 's/^/    | /' || true
[ $rc -eq 1 ] || fail "blocking_client -n 8 with the shim: rc $rc"
[ "$(grep -c ": ECONNREFUSED " "$TMP/shim")" = 8 ] || fail "with the shim not 8 x ECONNREFUSED"
# Column NF-1 is the time in ms; calls 1-5 retried (> 40 ms), 6-8 not (< 20 ms).
awk 'NR <= 5 && $(NF-1) + 0 <= 40 { print "call " NR " took only " $(NF-1) " ms: no retries?"; bad = 1 }
     NR >= 6 && $(NF-1) + 0 >= 20 { print "call " NR " took " $(NF-1) " ms: the breaker did not stop retries"; bad = 1 }
     END { exit bad }' "$TMP/shim" >"$TMP/why" || fail "$(cat "$TMP/why")"
grep -q "warn: breaker open for 127.0.0.1:$port after 5 failed connects" "$TMP/err" ||
    fail "no 'breaker open for 127.0.0.1:$port' warning"
[ "$(grep -c "breaker open for" "$TMP/err")" = 1 ] || fail "the breaker opened more than once"
! grep -q "retry budget" "$TMP/err" || fail "the retry budget, not the breaker, stopped retries"
[ "$(summary_field "$TMP/err" connect retries)" = 5 ] || fail "exit summary: $(grep 'exit summary' "$TMP/err")"
[ "$(summary_field "$TMP/err" connect failures)" = 8 ] || fail "exit summary: $(grep 'exit summary' "$TMP/err")"
pass "with the shim: calls 1-5 retried ($(ms_list "$TMP/shim" 1 5) ms), breaker open, calls 6-8 at once ($(ms_list "$TMP/shim" 6 8) ms)"

# For the record (not asserted): the default 3 retries, base 20 ms. The budget
# floor (10) runs out in the 4th call, before the breaker opens after the 5th.
rc=0; RESHIM_LOG=info RESHIM_BACKOFF_BASE=20ms with_shim "$BIN/blocking_client" -n 8 "$(free_port)" \
    >"$TMP/dflt" 2>"$TMP/err" || rc=$?
echo "    default retries, base 20 ms: $(ms_list "$TMP/dflt" 1 8) ms;" \
    "$(grep -c "retry budget" "$TMP/err" || true) calls stopped by the budget, breaker opened: $(grep -c "breaker open" "$TMP/err" || true)"
