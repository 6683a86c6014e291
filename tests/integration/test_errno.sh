#!/usr/bin/env bash
# errno transparency: build/bin/errno_probe (errno_probe.c) calls every
# function reshim interposes on failing and edge inputs (bad and closed fds,
# pipes and files, EAGAIN, EINTR, EPIPE, ECONNRESET, EOF, MSG_PEEK/MSG_TRUNC,
# pending and refused connects, bad arguments, getaddrinfo errors, ...) and
# prints "NAME RET ERRNO" per case. Without and with reshim the output must be
# identical, line for line. The probe is fortified, so read/recv/recvfrom
# also reach reshim as __read_chk/__recv_chk/__recvfrom_chk (and poll/ppoll
# as __poll_chk/__ppoll_chk).
# The waits (poll, ppoll, select, pselect, epoll_ctl, epoll_wait, epoll_pwait,
# epoll_pwait2) are probed twice: with no connect being retried (they pass
# straight through) and while a non-blocking connect to a refusing port is
# being retried in the background (every wait takes reshim's slow path).
# The malloc family and the mappings are probed too, in "all": malloc, calloc,
# realloc, reallocarray, posix_memalign, memalign, aligned_alloc, valloc and
# pvalloc with sizes that overflow or exceed PTRDIFF_MAX (ENOMEM) and bad
# alignments (EINVAL, errno kept by posix_memalign), the blocks they return
# (zeroed, contents kept by a failed realloc, aligned, malloc_usable_size),
# free; mmap and mmap64 with bad fds, lengths, offsets and flags, anonymous
# and file mappings, MAP_FIXED over a counted mapping; munmap of a part, of a
# hole, unaligned, of nothing; mremap of an unmapped address (EFAULT), bad
# flags, grow in place or moving, shrink, MREMAP_FIXED, MREMAP_DONTUNMAP.
# Pointers print as ptr/NULL/MAP_FAILED, never as values.
# Last, non-blocking connects that are refused for good, waited for with each
# wait: when the retries run out the app must see exactly what it sees
# without reshim (events, SO_ERROR once, a repeated connect, the I/O after).
source "$(dirname "$0")/lib.sh"

PROBE="$BIN/errno_probe"
MIN_CASES=500

need "$BIN/errno_probe"

# The probe must import every symbol reshim exports, the _chk forms included.
exported=$(sed -n '/global:/,/local:/p' "$ROOT/shim/libreshim.map" | tr ' ;' '\n\n' |
    grep -E '^[A-Za-z_][A-Za-z0-9_]*$' | grep -vx -e global -e local | sort -u)
[ "$(echo "$exported" | wc -l)" -ge 20 ] || fail "could not read the exported symbols from shim/libreshim.map"
nm -D --undefined-only "$PROBE" | awk '{print $2}' | sed 's/@.*//' | sort -u >"$TMP/imports"
missing=$(comm -23 <(echo "$exported") "$TMP/imports" | tr '\n' ' ')
[ -z "$missing" ] || fail "errno_probe does not call these interposed functions: $missing"
pass "errno_probe imports all $(echo "$exported" | wc -l) functions reshim interposes (incl. __read_chk, __recv_chk, __recvfrom_chk)"

cd "$TMP"
# 1. Every case reshim never retries, with default settings.
"$PROBE" all >"$TMP/out0" 2>"$TMP/err0" || fail "errno_probe failed without the shim: $(cat "$TMP/err0")"
rc=0; RESHIM_LOG=info pushed "$PROBE" all >"$TMP/out1" 2>"$TMP/err1" || rc=$?
[ "$rc" = 0 ] || fail "errno_probe failed with the shim (rc $rc); last case before: $(tail -n 1 "$TMP/out1")"
total=$(sed -n 's/^total \([0-9]*\)$/\1/p' "$TMP/out0")
lines=$(grep -vc '^total ' "$TMP/out0" || true)
[ -n "$total" ] && [ "$total" = "$lines" ] || fail "probe output is incomplete: total=${total:-missing}, lines=$lines"
[ "$total" -ge "$MIN_CASES" ] || fail "only $total cases (expected >= $MIN_CASES)"
# Not vacuous: these outcomes must be there, as the kernel gives them.
for want in \
    "recv-fd-1 -1 EBADF" "__read_chk-closed -1 EBADF" "recvmmsg-pipe -1 ENOTSOCK" \
    "read-pipe 4 -" "writev-file 5 -" "recv-peek 5 -" "recv-nonblock-empty -1 EAGAIN" \
    "__recv_chk-nonblock-empty -1 EAGAIN" "__recvfrom_chk-nonblock-empty -1 EAGAIN" \
    "sendmmsg-nonblock-full -1 EAGAIN" "recv-eintr -1 EINTR" "__read_chk-eintr -1 EINTR" \
    "send-blocking-full-eintr -1 EINTR" "send-peer-closed-nosignal -1 EPIPE" \
    "recv-peer-closed-eof 0 -" "recv-dgram-trunc-flag 10 -" "recv-tcp-reset -1 ECONNRESET" \
    "connect-tcp-eisconn -1 EISCONN" "connect-nonblock-pending -1 EINPROGRESS" \
    "connect-nonblock-again -1 EALREADY" "connect-blocking-eintr -1 EINTR" \
    "connect-bad-family-inet6-addr -1 EAFNOSUPPORT" "getsockopt-bad-option -1 ENOPROTOOPT" \
    "accept-not-listening -1 EINVAL" "close-closed -1 EBADF" "close_range-first-gt-last -1 EINVAL" \
    "socket-bad-domain -1 EAFNOSUPPORT" "gai-numerichost-name EAI_NONAME" "gai-localhost-inet 0" \
    "poll-pipe-empty 0 - revents=0" "poll-pipe-data 1 - revents=0x1" "poll-closed-fd 1 - revents=0x20" \
    "__poll_chk-pipe-data 1 - revents=0x1" "__poll_chk-overflow-child - - signal=ABRT" \
    "ppoll-ts-nsec-1e9 -1 EINVAL" "__ppoll_chk-closed-fd 1 - revents=0x20" "select-nfds-neg -1 EINVAL" \
    "select-tv-usec-neg -1 EINVAL" "select-pipe-data 1 - rd=1" "select-closed-fd -1 EBADF" \
    "pselect-sigmask-pending -1 EINTR handled=1" "epoll_ctl-epfd-1 -1 EBADF" \
    "epoll_ctl-add-again -1 EEXIST" "epoll_ctl-mod-unregistered -1 ENOENT" \
    "epoll_ctl-del-unregistered -1 ENOENT" "epoll_wait-epfd-1 -1 EBADF" \
    "epoll_wait-maxevents-0 -1 EINVAL" "epoll_wait-pipe-data 1 - ev=0x21:0x1" \
    "epoll_pwait2-ts-nsec-1e9 -1 EINVAL" "epoll_wait-eintr -1 EINTR" \
    "malloc-size_max NULL ENOMEM" "malloc-ptrdiff_max+1 NULL ENOMEM" "calloc-overflow NULL ENOMEM" \
    "calloc-25x8-zeroed ptr - aligned=1 usable>=n=1 zeroed=1" "realloc-size_max NULL ENOMEM kept=1" \
    "realloc-null ptr -" "reallocarray-overflow NULL ENOMEM kept=1" \
    "posix_memalign-align-3 22 - err=EINVAL memptr=untouched" \
    "posix_memalign-align-0 22 - err=EINVAL memptr=untouched" \
    "posix_memalign-size_max 12 - err=ENOMEM" "posix_memalign-64 0 - err=0 memptr=ptr aligned=1" \
    "memalign-24 ptr - aligned=1" "aligned_alloc-size_max NULL ENOMEM" "valloc-size_max NULL ENOMEM" \
    "pvalloc-size_max NULL ENOMEM" "valloc-1 ptr - aligned=1 usable>=n=1" \
    "malloc_usable_size-null 0 -" "free-null 0 -" "mmap-file-fd-1 MAP_FAILED EBADF" \
    "mmap-len-0 MAP_FAILED EINVAL" "mmap-fixed-unaligned MAP_FAILED EINVAL" \
    "mmap-no-private-shared MAP_FAILED EINVAL" "mmap-anon-4-pages ptr - zeroed=1" \
    "mmap-anon-munmap 0 -" "mmap64-file-fd-1 MAP_FAILED EBADF" "mmap64-len-0 MAP_FAILED EINVAL" \
    "munmap-unaligned -1 EINVAL" "munmap-len-0 -1 EINVAL" "munmap-middle-page 0 - rest-kept=1" \
    "munmap-unmapped 0 -" "mremap-unmapped MAP_FAILED EFAULT" "mremap-bad-flags MAP_FAILED EINVAL" \
    "mremap-grow-maymove ptr - kept=1 tail-zeroed=1" "mremap-shrink ptr - same=1 kept=1"; do
    grep -q "^$want" "$TMP/out0" || fail "probe without the shim lacks \"$want\" (the kernel or libc answers differently here?)"
done
# A difference here is counted (problems), not fatal: the checks below still run.
problems=0
if ! diff "$TMP/out0" "$TMP/out1" >"$TMP/diff"; then
    sed 's/^/    /' "$TMP/diff" | head -n 30 >&2
    echo "  FAIL: $(grep -c '^<' "$TMP/diff") of $total cases differ with the shim" >&2
    grep -q '^> pvalloc-0 ' "$TMP/diff" &&
        echo "    (pvalloc(0): shim/alloc.c pvalloc allocates a whole page when the size rounds to 0; glibc 2.36 pvalloc(0) gives a 1-byte page-aligned block (malloc_usable_size 24), so the app sees another usable size)" >&2
    grep -q '^> mremap-dontunmap-unaligned-hint ' "$TMP/diff" &&
        echo "    (mremap with MREMAP_DONTUNMAP and a new_address: shim/alloc.c mremap reads new_address only with MREMAP_FIXED and passes NULL otherwise, but the kernel takes it as a placement hint with MREMAP_DONTUNMAP too (an unaligned one fails with EINVAL): the app's hint is dropped)" >&2
    problems=$((problems + 1))
fi
grep -E "reshim\[[0-9]+\]: (warn|error)" "$TMP/err1" && fail "reshim warned during the probe"
stat_field pid "$TMP/err1" >/dev/null || fail "no stats pushed: was the shim loaded?"
for f in "connect calls" "dns calls" "send calls" "recv calls"; do
    n=$(stat_field "net.${f% *}.${f#* }" "$TMP/err1")
    [ "${n:-0}" -ge 5 ] || fail "shim counted only ${n:-0} $f: the probe did not go through it"
done
[ "$(stat_field net.connect.retries "$TMP/err1")" = 0 ] || fail "the shim retried a connect in the 'all' cases"
[ "$problems" = 0 ] &&
    pass "$total cases identical without and with the shim (send calls=$(stat_field net.send.calls "$TMP/err1"), recv calls=$(stat_field net.recv.calls "$TMP/err1") counted)"

# 2. Blocking connects reshim would retry (ECONNREFUSED; ENOENT on unix), retries off.
"$PROBE" refused >"$TMP/ref0" 2>&1 || fail "errno_probe refused failed without the shim"
RESHIM_RETRIES=0 RESHIM_LOG=info pushed "$PROBE" refused >"$TMP/ref1" 2>"$TMP/ref1.err" ||
    fail "errno_probe refused failed with the shim: $(cat "$TMP/ref1.err")"
grep -q "^connect-blocking-refused -1 ECONNREFUSED" "$TMP/ref0" || fail "no refused connect without the shim: $(cat "$TMP/ref0")"
grep -q "^connect-unix-missing -1 ENOENT" "$TMP/ref0" || fail "no ENOENT unix connect without the shim"
grep -q "^getsockopt-so_error-refused 0 - val=ECONNREFUSED" "$TMP/ref0" || fail "no refused non-blocking connect without the shim"
diff "$TMP/ref0" "$TMP/ref1" >&2 || fail "refused connects differ with the shim (RESHIM_RETRIES=0)"
[ "$(stat_field net.connect.retries "$TMP/ref1.err")" = 0 ] || fail "retries with RESHIM_RETRIES=0"
[ "$(stat_field net.connect.failures "$TMP/ref1.err")" -ge 3 ] || fail "refused connects not counted as failures"
pass "$(sed -n 's/^total //p' "$TMP/ref0") refused-connect cases identical with RESHIM_RETRIES=0 (connect calls=$(stat_field net.connect.calls "$TMP/ref1.err") failures=$(stat_field net.connect.failures "$TMP/ref1.err"))"

# 3. connect with an address pointer the kernel rejects: EFAULT, not a crash.
"$PROBE" efault >"$TMP/ef0" 2>&1 || fail "errno_probe efault failed without the shim"
grep -q "^connect-efault-addr -1 EFAULT" "$TMP/ef0" || fail "no EFAULT without the shim: $(cat "$TMP/ef0")"
rc=0; with_shim "$PROBE" efault >"$TMP/ef1" 2>&1 || rc=$?
if [ "$rc" -gt 128 ]; then
    fail "with the shim, connect() with a bad address pointer killed the process (signal $((rc - 128))) instead of returning EFAULT: shim/net.c reshim_connect reads addr->sa_family before the real connect does"
fi
[ "$rc" = 0 ] || fail "errno_probe efault failed with the shim (rc $rc): $(cat "$TMP/ef1")"
diff "$TMP/ef0" "$TMP/ef1" >&2 || fail "EFAULT connect cases differ with the shim"
pass "connect with a bad address pointer: EFAULT without and with the shim"

# 4. The waits again, while a non-blocking connect to a port that refuses is
#    being retried in the background (its backoff made long, so it is pending
#    throughout): every wait goes through reshim's slow path (wait.c) and must
#    still return what the kernel returns, errno, revents and fd sets included.
WAITENV=(RESHIM_BACKOFF_BASE=30s RESHIM_BACKOFF_MAX=30s RESHIM_RETRY_DEADLINE=60s RESHIM_LOG=info)
"$PROBE" waits >"$TMP/w0" 2>"$TMP/w0.err" || fail "errno_probe waits failed without the shim: $(cat "$TMP/w0.err")"
rc=0; pushed env "${WAITENV[@]}" "$PROBE" waits >"$TMP/w1" 2>"$TMP/w1.err" || rc=$?
[ "$rc" = 0 ] || fail "errno_probe waits failed with the shim (rc $rc); last case before: $(tail -n 1 "$TMP/w1")"
[ "$(stat_field net.connect.retries "$TMP/w1.err")" = 1 ] ||
    fail "the background connect was not being retried (connect retries=$(stat_field net.connect.retries "$TMP/w1.err")): the waits did not take the slow path"
wtotal=$(sed -n 's/^total //p' "$TMP/w0")
if diff "$TMP/w0" "$TMP/w1" >"$TMP/wdiff"; then
    pass "$wtotal wait cases identical while a non-blocking connect is being retried"
else
    sed 's/^/    /' "$TMP/wdiff" | head -n 30 >&2
    echo "  FAIL: $(grep -c '^<' "$TMP/wdiff") of $wtotal wait cases differ while a non-blocking connect is being retried (shim/wait.c slow path: wait_poll/wait_select/wait_epoll)" >&2
    grep -q '^> [_a-z]*ppoll[_a-z]*-ts-' "$TMP/wdiff" &&
        echo "    (ppoll with an invalid timespec: shim/wait.c reshim_ppoll passes it to ts_ns(), which turns a negative one into 0 and takes tv_nsec >= 1e9 as is; the real wait then gets a valid timeout instead of failing with EINVAL)" >&2
    grep -q '^> select-eintr .*tv_updated=0' "$TMP/wdiff" &&
        echo "    (select that fails (EINTR): shim/wait.c wait_select returns without writing the time left to the app's timeval, which Linux always does)" >&2
    problems=$((problems + 1))
fi

# 5. EFAULT pointers given to the waits in the same state, each in a child of
#    its own: the slow path must not read what the kernel would reject.
"$PROBE" waits-efault >"$TMP/we0" 2>&1 || fail "errno_probe waits-efault failed without the shim"
grep -q "^poll-efault-fds -1 EFAULT" "$TMP/we0" || fail "no EFAULT poll without the shim: $(head -n 3 "$TMP/we0")"
env "${WAITENV[@]}" LD_PRELOAD="$SHIM" "$PROBE" waits-efault >"$TMP/we1" 2>"$TMP/we1.err" ||
    fail "errno_probe waits-efault failed with the shim: $(tail -n 3 "$TMP/we1.err")"
if diff "$TMP/we0" "$TMP/we1" >"$TMP/wediff"; then
    pass "$(sed -n 's/^total //p' "$TMP/we0") EFAULT wait cases identical while a non-blocking connect is being retried"
else
    sed 's/^/    /' "$TMP/wediff" | head -n 30 >&2
    echo "  FAIL: with a retry pending, $(grep -c '^>.* died ' "$TMP/wediff") waits given a pointer the kernel rejects with EFAULT crash instead (shim/wait.c reads the app's memory before the real call does: wait_poll reads fds[i].fd, save_sets copies the fd_sets, reshim_epoll_pwait2 reads ts->tv_nsec)" >&2
    problems=$((problems + 1))
fi

# 6. Non-blocking connects refused for good (a fresh refusing port each, so no
#    budget or breaker gets in the way), with retries on and a short backoff:
#    once they run out the app sees what it sees without the shim, only later.
"$PROBE" nbfail >"$TMP/nf0" 2>&1 || fail "errno_probe nbfail failed without the shim"
for want in "nbfail-poll-wait 1 - revents=0x1c" "nbfail-poll-so_error 0 - val=ECONNREFUSED" \
    "nbfail-poll-so_error-again 0 - val=0" "nbfail-epoll_wait-wait 1 - ev=0xa1:0x1c"; do
    grep -q "^$want" "$TMP/nf0" || fail "probe nbfail without the shim lacks \"$want\""
done
nseq=$(grep -c -- '-connect -1 EINPROGRESS$' "$TMP/nf0" || true)
rc=0; RESHIM_RETRIES=2 RESHIM_BACKOFF_BASE=10ms RESHIM_LOG=info pushed "$PROBE" nbfail >"$TMP/nf1" 2>"$TMP/nf1.err" || rc=$?
[ "$rc" = 0 ] || fail "errno_probe nbfail failed with the shim (rc $rc); last case before: $(tail -n 1 "$TMP/nf1")"
gave_up=$(stat_field net.connect.gave_up "$TMP/nf1.err")
retries=$(stat_field net.connect.retries "$TMP/nf1.err")
[ "${gave_up:-0}" -ge "$nseq" ] && [ "${retries:-0}" -ge $((2 * nseq)) ] ||
    fail "the refused non-blocking connects were not all retried: gave_up=$gave_up retries=$retries for $nseq connects"
if diff "$TMP/nf0" "$TMP/nf1" >"$TMP/nfdiff"; then
    pass "$nseq non-blocking connects refused for good: $(sed -n 's/^total //p' "$TMP/nf0") cases identical after the retries ran out (retries=$retries gave_up=$gave_up)"
else
    sed 's/^/    /' "$TMP/nfdiff" | head -n 30 >&2
    echo "  FAIL: $(grep -c '^<' "$TMP/nfdiff") cases differ once the retries of a refused non-blocking connect ran out" >&2
    if grep -q '^> nbfail-ppoll-recv 0 -' "$TMP/nfdiff"; then
        echo "    (a repeated connect() that takes the final error is answered by shim/nbconn.c nb_connect_again without the real connect, which would have reset the socket: recv then reads EOF instead of ENOTCONN, and a new connect on the socket fails with ECONNABORTED)" >&2
    fi
    problems=$((problems + 1))
fi
RESHIM_NONBLOCK=off RESHIM_RETRIES=2 RESHIM_BACKOFF_BASE=10ms RESHIM_LOG=info pushed "$PROBE" nbfail >"$TMP/nf2" 2>"$TMP/nf2.err" ||
    fail "errno_probe nbfail failed with the shim and RESHIM_NONBLOCK=off"
[ "$(stat_field net.connect.retries "$TMP/nf2.err")" = 0 ] || fail "RESHIM_NONBLOCK=off: non-blocking connects were retried"
nf2_failures=$(stat_field net.connect.failures "$TMP/nf2.err")
if [ "${nf2_failures:-0}" -lt "$nseq" ]; then
    echo "  FAIL: RESHIM_NONBLOCK=off: only $nf2_failures failed connects counted for $nseq refused non-blocking connects (connect calls=$(stat_field net.connect.calls "$TMP/nf2.err")): a failure the app learns from its first send/recv/read/write is never counted as a failed connect (shim/io.c account() records only the success of a PH_CONNECTING socket)" >&2
    problems=$((problems + 1))
fi
if diff "$TMP/nf0" "$TMP/nf2" >"$TMP/nf2diff"; then
    pass "RESHIM_NONBLOCK=off: $(sed -n 's/^total //p' "$TMP/nf0") cases identical, never retried (connect calls=$(stat_field net.connect.calls "$TMP/nf2.err") failures=$nf2_failures)"
else
    sed 's/^/    /' "$TMP/nf2diff" | head -n 20 >&2
    echo "  FAIL: RESHIM_NONBLOCK=off: $(grep -c '^<' "$TMP/nf2diff") nbfail cases differ" >&2
    problems=$((problems + 1))
fi
[ "$problems" = 0 ] || fail "$problems of the checks failed (above)"
