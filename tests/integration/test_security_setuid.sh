#!/usr/bin/env bash
# alone: it works in the shared run directories (/tmp/reshim-UID, abstract names) that other tests' processes use
# setuid and file-capability programs (secure execution, AT_SECURE) are
# untouched, and the shim never trusts their environment (needs root).
# The program: copies of build/bin/secure_probe, run as uid 65534 with an
# attacker's environment: RESHIM_RUN_DIR, RESHIM_LOG=debug and
# RESHIM_LOG_FILE, RESHIM_PUSH (a collector of uid 65534) every 10 ms, and
# RESHIM_MEM_BUDGET=1M with RESHIM_MEM_POLICY=enforce (its 4 MiB malloc
# would fail). Each run is observed from outside: is libreshim in
# /proc/PID/maps, is there a reshim-stats thread, a stats socket, a log
# file, a pushed datagram, "reshim" lines on stderr, did the malloc fail.
#   - LD_PRELOAD (absolute path): the plain copy has the shim and obeys
#     (the control); the setuid-root copy and the cap_net_bind_service+ep
#     copy do not load it; neither through `reshim run` nor `reshim-run`,
#     which warn.
#   - Where the loader does load the shim into a secure process: listed in
#     /etc/ld.so.preload, or named without a slash in LD_PRELOAD while in a
#     system library directory with its setuid bit (ld.so(8)). Both are set
#     up in a private mount namespace (unshare -m, overlay mounts over /etc
#     and the library directory; the host is not touched). There the shim
#     is in the setuid and the setcap processes' maps, and stays passive:
#     no thread, no socket, no log, no push, the malloc succeeds. The plain
#     copy with the same ld.so.preload is active (control); without its
#     setuid bit the library is not loaded at all.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/security_lib.sh"
security_require_root
RESHIM="$ROOT/build/reshim"
PROBE="$BIN/secure_probe"
[ -x "$PROBE" ] && [ -x "$RESHIM" ] || fail "$PROBE or $RESHIM is missing (make all and the test programs)"
command -v setcap >/dev/null || skip "setcap (libcap2-bin) is not installed"

install -m 0755 "$PROBE" "$TMP/plain"
install -m 4755 -o root -g root "$PROBE" "$TMP/suid"
install -m 0755 "$PROBE" "$TMP/cap"; setcap cap_net_bind_service+ep "$TMP/cap" || skip "setcap failed (no xattr support?)"
ATT="$TMP/att"; mkdir -m 700 "$ATT"; chown $NOBODY:$NOBODY "$ATT"
cat > "$TMP/collector.py" <<'PYEOF'
import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o666)
out = open(sys.argv[2], "a", buffering=1)
print("up", flush=True)
while True:
    d = s.recv(1 << 20)
    try:
        out.write("%d\n" % json.loads(d)["pid"])
    except ValueError:
        out.write("garbage\n")
PYEOF
chmod 644 "$TMP/collector.py"; touch "$TMP/got"; chmod 666 "$TMP/got"
# setpriv itself in the background (it execs python3): $! is then the
# collector, which the cleanup kills; a backgrounded as_uid would be a
# subshell whose child outlived it.
setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups \
    "$PY" "$TMP/collector.py" "$ATT/push.sock" "$TMP/got" >"$TMP/collector.out" 2>&1 &
CHILDREN+=($!)
i=0; until grep -q up "$TMP/collector.out"; do i=$((i + 1)); [ $i -gt 250 ] && fail "no collector"; sleep 0.02; done
ATTACK=(RESHIM_RUN_DIR="$ATT/run" RESHIM_LOG=debug RESHIM_LOG_FILE="$ATT/log" RESHIM_PUSH="$ATT/push.sock"
        RESHIM_INTERVAL=10ms RESHIM_MEM_BUDGET=1M RESHIM_MEM_POLICY=enforce)

# observe NAME CMD...: runs CMD (which ends with the probe and its quit file
# $TMP/quit.NAME) in the background; prints one line of observations.
observe() {
    local name=$1; shift
    rm -f "$TMP/quit.$name" "$ATT/log"; rm -rf "$ATT/run"
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    CHILDREN+=($!)
    local i=0
    while ! grep -q '^ready' "$TMP/$name.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 500 ] && { cat "$TMP/$name.err" >&2; fail "$name: the probe did not start"; }
        sleep 0.02
    done
    local pid; pid=$(sed -n 's/^ready \([0-9]*\) .*/\1/p' "$TMP/$name.out")
    local loaded=no thread=no sock=no
    grep -q libreshim "/proc/$pid/maps" && loaded=yes
    grep -qx reshim-stats /proc/"$pid"/task/*/comm 2>/dev/null && thread=yes
    # The thread, when there is one, binds its socket at once (the probe is
    # past 100 ms): wait for it in that case only.
    i=0; while [ $thread = yes ] && [ $sock = no ] && [ $i -lt 250 ]; do
        { [ -S "$ATT/run/$pid.sock" ] || grep -Eq " @reshim-[0-9]+/$pid\$" /proc/net/unix; } && sock=yes
        i=$((i + 1)); sleep 0.02
    done
    { [ -S "$ATT/run/$pid.sock" ] || grep -Eq " @reshim-[0-9]+/$pid\$" /proc/net/unix; } && sock=yes
    touch "$TMP/quit.$name"
    i=0; while kill -0 "$pid" 2>/dev/null; do i=$((i + 1)); [ $i -gt 500 ] && fail "$name: did not exit"; sleep 0.02; done
    sleep 0.05   # the final datagram, if any, reaches the collector
    local pushed; pushed=$(grep -cx "$pid" "$TMP/got" || true)
    local log=no; [ -s "$ATT/log" ] && log=yes
    local lines; lines=$(grep -c '^reshim\[' "$TMP/$name.err" || true)
    local who; who=$(sed -n 's/^ready [0-9]* \(ruid=[0-9]* euid=[0-9]* secure=[0-9]*\) malloc=\(.*\)/\1 malloc=\2/p' "$TMP/$name.out")
    echo "$who loaded=$loaded thread=$thread socket=$sock log=$log pushed=$pushed stderr=$lines"
}
row() { printf '    %-44s %s\n' "$1" "$2"; }
# expect WHAT GOT PATTERN
# shellcheck disable=SC2254 # $3 is a pattern
expect() { case "$2" in $3) row "$1" "$2" ;; *) fail "$1: got '$2', expected '$3'" ;; esac; }
ACTIVE="ruid=$NOBODY euid=$NOBODY secure=0 malloc=failed loaded=yes thread=yes socket=yes log=yes pushed=[1-9]* stderr=[0-9]*"
NOTLOADED="ruid=$NOBODY euid=0 secure=1 malloc=ok loaded=no thread=no socket=no log=no pushed=0 stderr=0"
CAP_NOTLOADED="ruid=$NOBODY euid=$NOBODY secure=1 malloc=ok loaded=no thread=no socket=no log=no pushed=0 stderr=0"
PASSIVE="ruid=$NOBODY euid=0 secure=1 malloc=ok loaded=yes thread=no socket=no log=no pushed=0 stderr=0"
CAP_PASSIVE="ruid=$NOBODY euid=$NOBODY secure=1 malloc=ok loaded=yes thread=no socket=no log=no pushed=0 stderr=0"

echo "    LD_PRELOAD=$SHIM, as uid $NOBODY, with the attacker's RESHIM_ variables:"
AS=(setpriv "--reuid=$NOBODY" "--regid=$NOBODY" --clear-groups)
expect "plain copy (control)" "$(observe plain "${AS[@]}" env "${ATTACK[@]}" LD_PRELOAD="$SHIM" "$TMP/plain" "$TMP/quit.plain")" "$ACTIVE"
expect "setuid root copy" "$(observe suid "${AS[@]}" env "${ATTACK[@]}" LD_PRELOAD="$SHIM" "$TMP/suid" "$TMP/quit.suid")" "$NOTLOADED"
expect "cap_net_bind_service+ep copy" "$(observe cap "${AS[@]}" env "${ATTACK[@]}" LD_PRELOAD="$SHIM" "$TMP/cap" "$TMP/quit.cap")" "$CAP_NOTLOADED"
expect "reshim run -- setuid copy" "$(observe run-suid "${AS[@]}" env "${ATTACK[@]}" "$RESHIM" run -- "$TMP/suid" "$TMP/quit.run-suid")" "$NOTLOADED"
grep -q "cannot be preloaded: setuid (owner uid 0): the loader drops LD_PRELOAD" "$TMP/run-suid.err" || fail "reshim run did not warn: $(cat "$TMP/run-suid.err")"
expect "reshim run -- setcap copy" "$(observe run-cap "${AS[@]}" env "${ATTACK[@]}" "$RESHIM" run -- "$TMP/cap" "$TMP/quit.run-cap")" "$CAP_NOTLOADED"
grep -q "cannot be preloaded: file capabilities (cap_net_bind_service=ep)" "$TMP/run-cap.err" || fail "reshim run did not warn: $(cat "$TMP/run-cap.err")"
expect "reshim-run -- setuid copy" "$(observe rr-suid "${AS[@]}" env "${ATTACK[@]}" RESHIM_LIBRARY="$SHIM" "$ROOT/scripts/reshim-run" -- "$TMP/suid" "$TMP/quit.rr-suid")" "$NOTLOADED"
grep -q "setuid/setgid: the loader ignores LD_PRELOAD" "$TMP/rr-suid.err" || fail "reshim-run did not warn: $(cat "$TMP/rr-suid.err")"
expect "reshim-run -- setcap copy" "$(observe rr-cap "${AS[@]}" env "${ATTACK[@]}" RESHIM_LIBRARY="$SHIM" "$ROOT/scripts/reshim-run" -- "$TMP/cap" "$TMP/quit.rr-cap")" "$CAP_NOTLOADED"
pass "LD_PRELOAD: the plain copy obeys the attacker's variables (control); the setuid and setcap copies never load the shim, also through reshim run / reshim-run (which warn)"

# ---- where the loader does load it into a secure process ----
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
grep -qw overlay /proc/filesystems || skip "no overlay filesystem: cannot set up /etc/ld.so.preload privately"
LIBDIR=/usr/lib/x86_64-linux-gnu
[ -d "$LIBDIR" ] || LIBDIR=$(dirname "$(ldd "$PROBE" | awk '/libc.so/ {print $3}')")
mkdir -m 755 "$TMP/etc" "$TMP/lib" "$TMP/lib-nosuid"
echo "$SHIM" > "$TMP/etc/ld.so.preload"; chmod 644 "$TMP/etc/ld.so.preload"
install -m 4755 -o root -g root "$SHIM" "$TMP/lib/libreshim.so"
install -m 0755 -o root -g root "$SHIM" "$TMP/lib-nosuid/libreshim.so"
# in_ns MOUNT CMD...: CMD in a private mount namespace with MOUNT's overlay.
in_ns() {
    local m=$1; shift
    local lower target
    case $m in
    preload) lower="$TMP/etc"; target=/etc ;;
    lib) lower="$TMP/lib"; target=$LIBDIR ;;
    lib-nosuid) lower="$TMP/lib-nosuid"; target=$LIBDIR ;;
    esac
    unshare -m --propagation private sh -c 'mount -t overlay overlay -o "lowerdir=$1:$2" "$2" || exit 99; shift 2; exec "$@"' \
        sh "$lower" "$target" "$@"
}
[ ! -e /etc/ld.so.preload ] || [ "$(cat /etc/ld.so.preload)" != "$SHIM" ] || fail "the host's /etc/ld.so.preload names the shim"
in_ns preload sh -c '[ "$(cat /etc/ld.so.preload)" = "$1" ]' sh "$SHIM" || skip "the private /etc/ld.so.preload could not be set up"
echo "    /etc/ld.so.preload naming the shim (private mount namespace), as uid $NOBODY, same variables:"
expect "plain copy (control)" "$(observe ns-plain in_ns preload "${AS[@]}" env "${ATTACK[@]}" "$TMP/plain" "$TMP/quit.ns-plain")" "$ACTIVE"
expect "setuid root copy" "$(observe ns-suid in_ns preload "${AS[@]}" env "${ATTACK[@]}" "$TMP/suid" "$TMP/quit.ns-suid")" "$PASSIVE"
expect "cap_net_bind_service+ep copy" "$(observe ns-cap in_ns preload "${AS[@]}" env "${ATTACK[@]}" "$TMP/cap" "$TMP/quit.ns-cap")" "$CAP_PASSIVE"
echo "    LD_PRELOAD=libreshim.so (no slash), the library in $LIBDIR (private overlay):"
expect "setuid copy, library setuid (ld.so loads it)" "$(observe lib-suid in_ns lib "${AS[@]}" env "${ATTACK[@]}" LD_PRELOAD=libreshim.so "$TMP/suid" "$TMP/quit.lib-suid")" "$PASSIVE"
expect "setcap copy, library setuid" "$(observe lib-cap in_ns lib "${AS[@]}" env "${ATTACK[@]}" LD_PRELOAD=libreshim.so "$TMP/cap" "$TMP/quit.lib-cap")" "$CAP_PASSIVE"
expect "setuid copy, library not setuid" "$(observe lib-nosuid in_ns lib-nosuid "${AS[@]}" env "${ATTACK[@]}" LD_PRELOAD=libreshim.so "$TMP/suid" "$TMP/quit.lib-nosuid")" "$NOTLOADED"
[ ! -e /etc/ld.so.preload ] && [ ! -e "$LIBDIR/libreshim.so" ] || fail "the host was changed"
[ ! -e "$ATT/log" ] && [ ! -e "$ATT/run" ] || fail "something was left in the attacker's directory"
pass "loaded into secure processes (ld.so.preload; a setuid library in $LIBDIR): in their maps, yet passive with the attacker's variables: no thread, socket, log, push; the 1M enforce budget ignored; the plain copy obeys them (control); the host untouched"
