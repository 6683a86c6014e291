#!/usr/bin/env bash
# alone: each wait's timeout is judged to 60 ms
# Edge cases of non-blocking connect retries, with build/bin/nb_probe
# (nb_probe.c): each scenario runs without the shim (the failure, or the
# reference behaviour) and with it. The cases that judge no time ((b)'s
# abandon and busy, RESHIM_NONBLOCK=off, (e), (f)) run from
# test_nonblock_untimed.sh (NB_PART below).
#  (a) exhaust: a port that never opens, waited on with each of poll, ppoll,
#      select, pselect, epoll_wait, epoll_pwait, epoll_pwait2, then asked six
#      ways (SO_ERROR, recv, send, read, write, a repeated connect) and a
#      final connect: the 42 outcome lines are identical without and with the
#      shim (RESHIM_BACKOFF_BASE=50ms); with it each takes >= 175 ms of
#      backoff (3 retries) and < the 10 s deadline; gave_up=42, retries=133
#      (42 x 3, and one each for the 7 new connects the app makes after the
#      error, which the shim retries like any other).
#  (b) abandon: the pending socket is closed (or dup2'd over, or closed with
#      a raw syscall) while in backoff and its number reused (socket, UDP,
#      connected socket, socketpair, pipe, accept, dup2, raw close): the
#      reused descriptor is never touched (nothing reaches the late port,
#      which listens by then; strace shows no connect by the shim).
#      timeout: each wait's own timeout (0 and 100 ms) is kept while the shim
#      retries (also with reconnects inside the wait): returns 0, on time, and
#      SO_ERROR then says 0 (still in progress).
#      busy: the app asks (SO_ERROR, recv, a repeated connect) without waiting
#      after the shim's first retry was refused: still in progress (0, EAGAIN,
#      EALREADY), and the connect completes when the listener comes.
#  (c) late listener, epoll: EPOLLET; EPOLLONESHOT; a MOD, or a DEL+ADD,
#      during the backoff (an ADD of the still registered socket must give
#      EEXIST, as the kernel does); the socket added to a second epoll set
#      during the backoff (twosets: the first set must still get its event);
#      a pipe registered (EPOLLET) with the same
#      data as the socket, written during the backoff (samedata) or before the
#      first wait, so that its event comes first (samedata0): the app gets
#      exactly the events it gets from a listener that is up from the start
#      (one EPOLLOUT, and the pipe's event at once).
#      RESHIM_NONBLOCK=off: refused as without the shim, counted, not retried.
#  (d) 200 pipes + a pending connect (select, poll, epoll_wait): pipe events
#      during the backoff are returned at once; the connect completes.
#  (e) 2 and 4 threads poll one pending socket: all see POLLOUT, none the
#      hidden failure.
#  (f) fork during the backoff (one child; 40 children; a child with its own
#      pending connect): the parent's connect completes, children exit, each
#      child's final stats show no retries of the parent's.
# The late listener listens 150 ms after start; the shim's first retry
# (default base 500 ms, equal jitter) comes 250-500 ms after the failure.
source "$(dirname "$0")/lib.sh"
push_start   # probe runs the shimmed nb_probe through $PUSHED

need "$SHIM" "$BIN/nb_probe"
PROBE="$BIN/nb_probe"
SLACK=60   # ms a wait may overrun its timeout, or a pipe event lag, on a busy machine
cd "$TMP"

# probe NAME [ENV=VAL...] -- ARGS...: runs nb_probe without the shim (NAME
# starts with "plain") or with it, RESHIM_LOG=info, its stats pushed (its pid
# in NAME.err.pid); output in NAME.out/.err, exit code in $rc.
probe() {
    local name=$1; shift
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
    rc=0
    case $name in
    plain*) env "${envs[@]}" timeout 60 "$PROBE" "$@" >"$name.out" 2>"$name.err" || rc=$? ;;
    *) env RESHIM_LOG=info "${envs[@]}" timeout 60 "$PUSHED" "$PROBE" "$@" >"$name.out" 2>"$name.err" || rc=$? ;;
    esac
}
# expect_ok NAME WHAT: nb_probe exited 0 (expected outcome, no FAIL line).
expect_ok() {
    [ "$rc" = 0 ] && return 0
    sed 's/^/    | /' "$1.out"; grep -v "recovered after\|exit summary" "$1.err" | sed 's/^/    | /'
    fail "$2 (nb_probe rc $rc)"
}
results() { grep '^RESULT' "$1.out"; }
same_results() { # A B WHAT
    diff <(results "$1") <(results "$2") >"$1.diff" && return 0
    sed 's/^/    /' "$1.diff"; fail "$3"
}

# NB_PART: "timed", the cases whose waits, timeouts or event lag are judged
# (exhaust, timeout, late-epoll, many: this test, alone); "untimed", the others
# (abandon, busy, RESHIM_NONBLOCK=off, threads, fork:
# test_nonblock_untimed.sh, beside other tests); "all" both.
NB_PART=${NB_PART:-timed}
case $NB_PART in timed | untimed | all) ;; *) fail "NB_PART=$NB_PART: timed, untimed or all" ;; esac
timed() { [ "$NB_PART" != untimed ]; }
untimed() { [ "$NB_PART" != timed ]; }

# Each case runs in a subshell: a failing case (lib.sh's fail exits it) is
# counted and the others still run; the test fails at the end if any did.
nbad=0
bad_cases=()
run_case() {
    local name=$1; shift
    if ( "$@" ); then :; else nbad=$((nbad + 1)); bad_cases+=("$name"); fi
}

# ---- (a) exhaust -------------------------------------------------------------
case_exhaust() {
    probe plain_ex -- exhaust; expect_ok plain_ex "exhaust without the shim"
    probe shim_ex RESHIM_RETRIES=3 RESHIM_BACKOFF_BASE=50ms -- exhaust; expect_ok shim_ex "exhaust with the shim"
    local n
    n=$(results plain_ex | wc -l)
    [ "$n" = 42 ] || fail "exhaust: $n cases, expected 42"
    [ "$(results plain_ex | grep -c "=-1/ECONNREFUSED\|so_error=ECONNREFUSED")" = 42 ] ||
        fail "exhaust without the shim: not every case saw ECONNREFUSED"
    grep -q "^RESULT exhaust poll sockerr: connect=EINPROGRESS wait=1 mask=IN|OUT|ERR|HUP | so_error=ECONNREFUSED so_error=0 " plain_ex.out ||
        fail "exhaust without the shim: unexpected kernel answers: $(grep 'poll sockerr' plain_ex.out)"
    # In the "connect" way of asking, the app's connect after the delivered
    # error starts a NEW call, which the shim retries like any other: from
    # there the app sees a connect still in progress (SO_ERROR 0, EAGAIN,
    # EALREADY) where the kernel alone refuses at once. Everything up to that
    # new call must be identical.
    cut_new_call() { sed -E 's/^(RESULT exhaust [a-z_0-9]+ connect: .* connect=-1\/EINPROGRESS) .*/\1/' "$1.out" | grep '^RESULT'; }
    diff <(cut_new_call plain_ex) <(cut_new_call shim_ex) >plain_ex.diff ||
        { sed 's/^/    /' plain_ex.diff; fail "exhaust: what the app sees differs with the shim"; }
    n_new=$(grep -c '^RESULT exhaust [a-z_0-9]* connect: .* connect=-1/EINPROGRESS so_error=0 recv=-1/EAGAIN connect=-1/EALREADY$' shim_ex.out)
    [ "$n_new" = 7 ] || fail "exhaust: the app's new connect after the error should look in progress under the shim (7 cases, got $n_new): $(grep 'exhaust [a-z_0-9]* connect:' shim_ex.out)"
    # Times: without the shim at once; with it 3 backoffs (>= 25+50+100 ms), within the deadline.
    paste <(grep '^TIME' plain_ex.out) <(grep '^TIME' shim_ex.out) | awk -v s="$SLACK" '
        { c = $3 " " $4; p = $5; q = $10; if (p > s) print "without the shim " c " took " p " ms";
          if (q < 170) print "with the shim " c " took only " q " ms: no retries?";
          if (q > 10000 + 500) print "with the shim " c " took " q " ms: past the deadline";
          if (q <= p) print "with the shim " c " was not later" }' >bad_times
    [ ! -s bad_times ] || fail "exhaust timing: $(head -n 5 bad_times)"
    [ "$(stat_field net.connect.gave_up shim_ex.err)" = 42 ] || fail "exhaust: connect $(stat_field net.connect shim_ex.err)"
    # 42 calls x 3 retries, plus one retry for each of the 7 new calls above.
    [ "$(stat_field net.connect.retries shim_ex.err)" = 133 ] || fail "exhaust: connect $(stat_field net.connect shim_ex.err)"
    pass "exhaust: 42 cases (7 waits x 6 ways of asking) identical without/with the shim; $(sed -n 's/^INFO exhaust 42 cases, wait took //p' shim_ex.out) with it (3 retries, base 50 ms), gave_up=42 retries=133"
}
timed && run_case exhaust case_exhaust

# ---- (b) abandon, timeouts, asking without a wait ---------------------------------
case_abandon() {
    local v=$1
    probe plain_ab_$v -- -e untouched abandon "$v"; expect_ok plain_ab_$v "abandon $v without the shim"
    probe shim_ab_$v -- -e untouched abandon "$v"; expect_ok shim_ab_$v "abandon $v with the shim"
    grep -q "^RESULT abandon $v: connect=EINPROGRESS first_poll=1 revents=OUT|ERR|HUP" plain_ab_$v.out ||
        fail "abandon $v without the shim: $(results plain_ab_$v | head -n 1)"
    # With the shim the failure was hidden: the socket was in its backoff when closed.
    grep -q "^RESULT abandon $v: connect=EINPROGRESS first_poll=0 revents=none" shim_ab_$v.out ||
        fail "abandon $v with the shim: the failure was not hidden: $(results shim_ab_$v | head -n 1)"
    diff <(grep "reused:" plain_ab_$v.out) <(grep "reused:" shim_ab_$v.out) >/dev/null ||
        fail "abandon $v: the reused descriptor differs: $(grep 'reused:' shim_ab_$v.out)"
    [ "$(stat_field net.connect.retries shim_ab_$v.err)" = 1 ] && [ "$(stat_field net.connect.recovered shim_ab_$v.err)" = 0 ] ||
        fail "abandon $v: connect $(stat_field net.connect shim_ab_$v.err)"
    pass "abandon $v: $(grep 'reused:' shim_ab_$v.out | sed 's/^RESULT abandon [a-z0-9]* reused: //'), as without the shim"
}
untimed && for v in socket udp healthy socketpair pipe accept dup2 rawclose; do run_case "abandon-$v" case_abandon "$v"; done

case_strace() {
    rc=0; strace -f -qq -e trace=connect -o strace.out env RESHIM_LOG=info LD_PRELOAD="$SHIM" \
        "$PROBE" -e untouched abandon healthy >st.out 2>st.err || rc=$?
    expect_ok st "abandon healthy under strace"
    local late nlate
    late=$(sed -n 's/^INFO late_port=\([0-9]*\) .*/\1/p' st.out)
    nlate=$(grep -c "htons($late)" strace.out || true)
    [ "$nlate" = 1 ] || { sed 's/^/    | /' strace.out; fail "strace: $nlate connects to the late port, expected only the app's one"; }
    pass "strace -f: the late port was connected to once (by the app), never by the shim's timer thread"
}
if ! untimed; then :
elif command -v strace >/dev/null && strace -f -qq -o /dev/null true 2>/dev/null; then
    run_case abandon-strace case_strace
else
    echo "    (strace unusable here: not checked with strace)"
fi

# The app's own timeouts while the shim retries.
case_timeout() {
    local w=$1
    probe plain_to_$w -- -e event timeout "$w" 100; expect_ok plain_to_$w "$w without the shim: expected the failure at once"
    probe shim_to_$w -- -e timeout -s "$SLACK" timeout "$w" 100; expect_ok shim_to_$w "$w(100 ms) with the shim, in backoff"
    # Base 40 ms: retries at 20-40 ms and 40-80 ms later fail inside the wait and are hidden again.
    probe shim_to2_$w RESHIM_BACKOFF_BASE=40ms -- -e timeout -s "$SLACK" timeout "$w" 100
    expect_ok shim_to2_$w "$w(100 ms) with the shim, reconnecting during the wait"
    [ "$(stat_field net.connect.retries shim_to2_$w.err)" -ge 2 ] || fail "$w: no reconnect happened inside the wait: connect $(stat_field net.connect shim_to2_$w.err)"
    probe shim_to0_$w -- -e timeout -s 20 timeout "$w" 0; expect_ok shim_to0_$w "$w(0) with the shim"
    pass "$w timeout kept while retrying: 100 ms in backoff / 100 ms with reconnects inside / 0 ms took" \
        "$(awk '/^TIME/ {print $5}' shim_to_$w.out)/$(awk '/^TIME/ {print $5}' shim_to2_$w.out)/$(awk '/^TIME/ {print $5}' shim_to0_$w.out) ms"
}
timed && for w in poll ppoll select pselect epoll_wait epoll_pwait epoll_pwait2; do run_case "timeout-$w" case_timeout "$w"; done

# The app asks how its connect is doing without a wait, after the shim's
# first retry was refused (the listener comes at 700 ms; see busy in nb_probe.c).
case_busy() {
    local h=$1
    probe plain_busy_$h -- -d 700 -e refused busy "$h"; expect_ok plain_busy_$h "busy $h without the shim: expected the refusal"
    probe shim_busy_$h -- -d 700 -e connected busy "$h"
    expect_ok shim_busy_$h "busy $h with the shim: a retry's failure was handed to the app with retries left"
    pass "busy $h: $(results shim_busy_$h | sed 's/^RESULT busy [a-z]*: //')"
}
untimed && for h in sockerr recv connect; do run_case "busy-$h" case_busy "$h"; done

# ---- (c) late listener, epoll ------------------------------------------------------
case_epoll() {
    local m=$1
    probe plain_ep_$m -- -e refused late-epoll "$m"; expect_ok plain_ep_$m "late-epoll $m without the shim: expected the refusal"
    probe shim_ep_$m -- -e connected -s "$SLACK" late-epoll "$m"; expect_ok shim_ep_$m "late-epoll $m with the shim"
    case $m in
    mod | readd) ;; # the reference would see the event before the change: the probe checks these itself
    *) probe plain_ep0_$m -- -d 0 -e connected late-epoll "$m"; expect_ok plain_ep0_$m "late-epoll $m, listener up from the start"
       same_results plain_ep0_$m shim_ep_$m "late-epoll $m: the app's events with the shim differ from a listener up from the start" ;;
    esac
    pass "late-epoll $m: $(results shim_ep_$m | sed 's/^RESULT late-epoll [a-z0-9]*: //'); first event at $(awk '/first_event/ {print $5}' shim_ep_$m.out) ms"
}
timed && for m in et oneshot mod readd twosets samedata samedata0; do run_case "late-epoll-$m" case_epoll "$m"; done

# RESHIM_NONBLOCK=off: non-blocking connects are counted, never retried.
case_nonblock_off() {
    probe plain_off -- -e refused late-epoll et; expect_ok plain_off "late-epoll et without the shim"
    probe shim_off RESHIM_NONBLOCK=off -- -e refused late-epoll et; expect_ok shim_off "late-epoll et, RESHIM_NONBLOCK=off: expected the refusal"
    same_results plain_off shim_off "RESHIM_NONBLOCK=off: the app's events differ from without the shim"
    [ "$(stat_field net.connect.calls shim_off.err)" = 1 ] && [ "$(stat_field net.connect.failures shim_off.err)" = 1 ] &&
        [ "$(stat_field net.connect.retries shim_off.err)" = 0 ] || fail "RESHIM_NONBLOCK=off: connect $(stat_field net.connect shim_off.err)"
    pass "RESHIM_NONBLOCK=off: refused at once as without the shim; counted (calls=1 failures=1 retries=0)"
}
untimed && run_case nonblock-off case_nonblock_off

# ---- (d) many descriptors -------------------------------------------------------------
case_many() {
    local w=$1
    probe plain_many_$w -- -e refused many "$w"; expect_ok plain_many_$w "many $w without the shim: expected the refusal"
    probe shim_many_$w -- -e connected -s "$SLACK" many "$w"; expect_ok shim_many_$w "many $w with the shim"
    pass "200 pipes + a pending connect, $w: 10 pipe events during the backoff returned at once;" \
        "$(grep '^TIME' shim_many_$w.out | sed 's/^TIME many [a-z_]* //')"
}
timed && for w in select poll epoll_wait; do run_case "many-$w" case_many "$w"; done

# ---- (e) threads ------------------------------------------------------------------------
case_threads() {
    local n=$1
    probe plain_th_$n -- -e refused threads "$n"; expect_ok plain_th_$n "threads $n without the shim: expected the refusal"
    probe plain_th0_$n -- -d 0 -e connected threads "$n"; expect_ok plain_th0_$n "threads $n, listener up from the start"
    probe shim_th_$n -- -e connected threads "$n"; expect_ok shim_th_$n "threads $n with the shim"
    same_results plain_th0_$n shim_th_$n "threads $n: what the threads see differs from a listener up from the start"
    pass "$n threads polling one pending socket: each sees POLLOUT only, as with a listener up from the start"
}
untimed && for n in 2 4; do run_case "threads-$n" case_threads "$n"; done

# ---- (f) fork -------------------------------------------------------------------------------
case_fork() {
    local m=$1 parent f kids=0 pid
    probe plain_fk_$m -- -e refused fork "$m"; expect_ok plain_fk_$m "fork $m without the shim: expected the refusal"
    probe plain_fk0_$m -- -d 0 -e connected fork "$m"; expect_ok plain_fk0_$m "fork $m, listener up from the start"
    probe shim_fk_$m -- -e connected fork "$m"; expect_ok shim_fk_$m "fork $m with the shim"
    same_results plain_fk0_$m shim_fk_$m "fork $m: the parent (or child) sees something else than with a listener up from the start"
    grep -q "^INFO fork first_poll=none" shim_fk_$m.out || fail "fork $m: the fork did not happen during the backoff"
    parent=$(cat shim_fk_$m.err.pid)
    grep -q "reshim\[$parent\]: info: connect to .* recovered after" shim_fk_$m.err ||
        fail "fork $m: no recovery logged by the parent"
    [ "$(stat_field net.connect.recovered "$parent")" = 1 ] || fail "fork $m: parent: connect $(stat_field net.connect "$parent")"
    for pid in $(sed -n 's/^INFO child pid=//p' shim_fk_$m.out); do
        kids=$((kids + 1))
        f=$(stat_field net.connect "$pid")   # its final stats, pushed at its exit
        if [ "$m" = child-connect ]; then # its own connect, its own retries (then gave up: the port never opens)
            [ "$(stat_field net.connect.calls "$pid")" = 1 ] && [ "$(stat_field net.connect.gave_up "$pid")" = 1 ] &&
                [ "$(stat_field net.connect.recovered "$pid")" = 0 ] || fail "fork $m: child $pid: connect $f"
        else
            [ "$(stat_field net.connect.calls "$pid")" = 0 ] && [ "$(stat_field net.connect.retries "$pid")" = 0 ] ||
                fail "fork $m: child $pid counted the parent's retries: connect $f"
        fi
    done
    pass "fork $m: $kids children exited, parent connected after $(awk '/^TIME/ {print $5}' shim_fk_$m.out) ms, children's stats clean"
}
untimed && for m in wait storm child-connect; do run_case "fork-$m" case_fork "$m"; done

[ "$nbad" = 0 ] || { echo "  FAIL: $nbad case(s) failed: ${bad_cases[*]}" >&2; exit 1; }
pass "every edge case ($NB_PART) behaves as without the shim (or is rescued)"
