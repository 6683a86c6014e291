#!/usr/bin/env bash
# errno transparency: build/bin/errno_probe (errno_probe.c) calls every
# function reshim interposes on failing and edge inputs (bad and closed fds,
# pipes and files, EAGAIN, EINTR, EPIPE, ECONNRESET, EOF, MSG_PEEK/MSG_TRUNC,
# pending and refused connects, bad arguments, getaddrinfo errors, ...) and
# prints "NAME RET ERRNO" per case. Without and with reshim the output must be
# identical, line for line. The probe is fortified, so read/recv/recvfrom
# also reach reshim as __read_chk/__recv_chk/__recvfrom_chk.
source "$(dirname "$0")/lib.sh"

PROBE="$BIN/errno_probe"
MIN_CASES=250

make -s -C "$ROOT" build/bin/errno_probe >"$TMP/make.out" 2>&1 || { cat "$TMP/make.out" >&2; fail "cannot build errno_probe"; }

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
rc=0; RESHIM_LOG=info with_shim "$PROBE" all >"$TMP/out1" 2>"$TMP/err1" || rc=$?
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
    "socket-bad-domain -1 EAFNOSUPPORT" "gai-numerichost-name EAI_NONAME" "gai-localhost-inet 0"; do
    grep -q "^$want" "$TMP/out0" || fail "probe without the shim lacks \"$want\" (the kernel or libc answers differently here?)"
done
if ! diff "$TMP/out0" "$TMP/out1" >"$TMP/diff"; then
    sed 's/^/    /' "$TMP/diff" | head -n 30
    fail "$(grep -c '^<' "$TMP/diff") of $total cases differ with the shim"
fi
grep -E "reshim\[[0-9]+\]: (warn|error)" "$TMP/err1" && fail "reshim warned during the probe"
grep -q "exit summary" "$TMP/err1" || fail "no exit summary: was the shim loaded?"
for f in "connect calls" "dns calls" "send calls" "recv calls"; do
    n=$(summary_field "$TMP/err1" ${f% *} ${f#* })
    [ "${n:-0}" -ge 5 ] || fail "shim counted only ${n:-0} $f: the probe did not go through it"
done
[ "$(summary_field "$TMP/err1" connect retries)" = 0 ] || fail "the shim retried a connect in the 'all' cases"
pass "$total cases identical without and with the shim ($(grep -o 'send calls=[0-9]*' "$TMP/err1"), $(grep -o 'recv calls=[0-9]*' "$TMP/err1") counted)"

# 2. Blocking connects reshim would retry (ECONNREFUSED; ENOENT on unix), retries off.
"$PROBE" refused >"$TMP/ref0" 2>&1 || fail "errno_probe refused failed without the shim"
RESHIM_RETRIES=0 RESHIM_LOG=info with_shim "$PROBE" refused >"$TMP/ref1" 2>"$TMP/ref1.err" ||
    fail "errno_probe refused failed with the shim: $(cat "$TMP/ref1.err")"
grep -q "^connect-blocking-refused -1 ECONNREFUSED" "$TMP/ref0" || fail "no refused connect without the shim: $(cat "$TMP/ref0")"
grep -q "^connect-unix-missing -1 ENOENT" "$TMP/ref0" || fail "no ENOENT unix connect without the shim"
diff "$TMP/ref0" "$TMP/ref1" >&2 || fail "refused connects differ with the shim (RESHIM_RETRIES=0)"
[ "$(summary_field "$TMP/ref1.err" connect retries)" = 0 ] || fail "retries with RESHIM_RETRIES=0"
[ "$(summary_field "$TMP/ref1.err" connect failures)" -ge 3 ] || fail "refused connects not counted as failures"
pass "$(sed -n 's/^total //p' "$TMP/ref0") refused-connect cases identical with RESHIM_RETRIES=0 ($(grep -o 'connect calls=[0-9]* failures=[0-9]*' "$TMP/ref1.err"))"

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
