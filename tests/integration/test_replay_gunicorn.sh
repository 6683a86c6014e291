#!/usr/bin/env bash
# alone: gunicorn's restart time decides how many connects outlast their retries
# gunicorn (Debian's python3-gunicorn, one sync worker) restarted 10 times
# while a client process with 6 threads sends GETs (urllib, a new connection
# each): once with SIGTERM (gunicorn's graceful shutdown closes its listener,
# and what waits in its accept queue is reset after the client's connect
# succeeded), once with SIGKILL to its process group. Without the shim
# requests fail (refused while it is down, reset from the accept queue);
# with it >= 99 % succeed: refused connects are retried, and a reset of a
# request gunicorn never read is replayed (the pushed stats count replays).
# What is left is a response that had begun when gunicorn died (never
# replayed), and connects refused after their retries ran out (the defaults,
# about 2.5 s, against gunicorn's 1.3-1.7 s restart; on a loaded 2-core
# machine a restart can take longer): breaks are judged at <= 2 % (a replay
# whose own connect retries ran out while gunicorn was down ends with the
# break), all failures at <= 3 %; the figures are printed. Runs replay_gunicorn.py (RESTARTS=N to change the count).
source "$(dirname "$0")/lib.sh"
"$PY" -c 'import gunicorn' 2>/dev/null || skip "python3-gunicorn is not installed (make deps)"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
N=${RESTARTS:-10}   # 4 were too few: a run could meet no accept-queue reset to replay
for sig in TERM KILL; do
    bare=$("$PY" "$ROOT/tests/integration/replay_gunicorn.py" "$sig" "$N" none) || fail "$sig: no shim run"
    with=$("$PY" "$ROOT/tests/integration/replay_gunicorn.py" "$sig" "$N" "$SHIM") || fail "$sig: shim run"
    read -r _ bok bfail <<<"$(grep '^result' <<<"$bare")"
    read -r _ ok failed <<<"$(grep '^result' <<<"$with")"
    stats=$(grep '^stats' <<<"$with")
    [ "$bfail" -gt 0 ] || fail "SIG$sig without the shim: no request failed ($bok ok): no outage"
    total=$((ok + failed))
    [ "$total" -gt 100 ] || fail "SIG$sig with reshim: only $total requests made"
    # awk alone: a run without any failure has no "why" line (a grep that
    # finds nothing would end the test under pipefail, silently).
    refused=$(awk '/^why/ && /Connection refused/ {s += $2} END {print s + 0}' <<<"$with")
    breaks=$((failed - refused))
    [ $((breaks * 100)) -le $((2 * total)) ] ||
        { echo "$with" >&2; fail "SIG$sig with reshim: $breaks of $total broke (> 2 %)"; }
    [ $((failed * 100)) -le $((3 * total)) ] ||
        { echo "$with" >&2; fail "SIG$sig with reshim: $failed of $total failed (> 3 %)"; }
    grep -q 'replays [1-9]' <<<"$stats" || { echo "$with" >&2; fail "SIG$sig: no replay counted"; }
    pass "SIG$sig x$N: without the shim $bfail of $((bok + bfail)) failed ($(grep -c '^why' <<<"$bare") reasons: $(grep '^why' <<<"$bare" | cut -c5-40 | paste -sd';'));" \
         "with reshim $failed of $total ($refused refused after the connect retries ran out;" \
         "$(grep '^down' <<<"$with"); $stats)"
done
