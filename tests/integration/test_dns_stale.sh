#!/usr/bin/env bash
# A temporary DNS failure. In a private mount namespace, /etc/resolv.conf
# points at a tiny DNS server on a loopback address (peers/dns_server.py). A
# python3 client fetches http://backend.reshim.test:PORT/ once, then the DNS
# server goes silent (drops every query) and the client keeps fetching.
# Without reshim the later fetches fail ("Temporary failure in name
# resolution"); with reshim every one succeeds on the last good answer
# (serve-stale), and the log says so.
source "$(dirname "$0")/lib.sh"

NAME=backend.reshim.test
LATER=4                                   # fetches after the DNS server went silent

[ -e /etc/resolv.conf ] || skip "no /etc/resolv.conf to bind-mount over"
grep -qi "^[^#]*$NAME" /etc/hosts && skip "$NAME is in /etc/hosts"
echo probe > "$TMP/probe"
unshare -m --propagation private true 2>/dev/null ||
    skip "cannot create a mount namespace (unshare -m): not root or not permitted here"
unshare -m --propagation private sh -c "mount --bind '$TMP/probe' /etc/resolv.conf" 2>/dev/null ||
    skip "cannot bind-mount over /etc/resolv.conf in a mount namespace"

# The DNS server, on the first 127.x address whose port 53 is free.
dns_addr=""
for a in 127.0.53.53 127.53.0.53 127.53.53.1 127.99.53.1; do
    : > "$TMP/dns.log"
    "$PY" "$PEERS/dns_server.py" "$a" 53 "$NAME" "$TMP/silent" "$TMP/dns.log" 2>"$TMP/dns.err" &
    pid=$!
    for _ in $(seq 100); do
        grep -q ready "$TMP/dns.log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if grep -q ready "$TMP/dns.log"; then dns_addr=$a; CHILDREN+=("$pid"); break; fi
    kill "$pid" 2>/dev/null || true
done
[ -n "$dns_addr" ] || { cat "$TMP/dns.err" >&2; fail "the DNS server could not bind port 53 on any candidate address"; }
printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$dns_addr" > "$TMP/resolv.conf"

port=$(free_port)
mkdir "$TMP/www" && echo hello > "$TMP/www/index.html"
spawn "$PY" -m http.server --bind 127.0.0.1 --directory "$TMP/www" "$port" >/dev/null 2>&1
wait_port "$port" || fail "http server did not start"

cat > "$TMP/client.py" <<PYEOF
import sys, time, urllib.request
url, flag, later = sys.argv[1], sys.argv[2], int(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
def fetch(i):
    t = time.monotonic()
    try:
        with opener.open(url, timeout=10) as r:
            body = r.read().decode().strip()
        print("fetch %d ok %s (%.1f s)" % (i, body, time.monotonic() - t), flush=True)
    except Exception as e:
        print("fetch %d fail %s (%.1f s)" % (i, e, time.monotonic() - t), flush=True)
fetch(0)
open(flag, "w").close()            # the DNS server goes silent from now on
for i in range(1, later + 1):
    time.sleep(0.3)
    fetch(i)
PYEOF

# run_client OUT ERR [shim]: the client in its own mount namespace (with
# "shim": through pushed.sh, the shim preloaded, its stats pushed).
run_client() {
    rm -f "$TMP/silent"
    unshare -m --propagation private bash -c '
        mount --bind "$1" /etc/resolv.conf || exit 90
        shift
        exec "$@"' _ "$TMP/resolv.conf" env ${3:+"$PUSHED"} \
        "$PY" "$TMP/client.py" "http://$NAME:$port/" "$TMP/silent" "$LATER" >"$1" 2>"$2"
}

# Without the shim: the first fetch works, the later ones fail.
before=$(grep -c '' "$TMP/dns.log")
run_client "$TMP/out0" "$TMP/err0" || fail "client failed without the shim: $(cat "$TMP/err0")"
sed 's/^/    without: /' "$TMP/out0"
grep -q "^fetch 0 ok hello" "$TMP/out0" || fail "the first fetch (DNS answering) failed without the shim"
nfail=$(grep -c "^fetch [1-9][0-9]* fail .*Temporary failure in name resolution" "$TMP/out0" || true)
[ "$nfail" = "$LATER" ] || fail "without the shim, expected $LATER fetches failing with 'Temporary failure in name resolution', got $nfail"
tail -n +$((before + 1)) "$TMP/dns.log" | grep -q "^answered A $NAME" ||
    fail "the lookup did not reach our DNS server"
tail -n +$((before + 1)) "$TMP/dns.log" | grep -q "^dropped A $NAME" ||
    fail "no query was dropped by the silent DNS server"
pass "without reshim: fetch 0 ok, then $LATER/$LATER fetches fail with 'Temporary failure in name resolution'"

# With the shim: every fetch succeeds, the later ones on the stale answer.
before=$(grep -c '' "$TMP/dns.log")
push_start
RESHIM_LOG=info run_client "$TMP/out1" "$TMP/err1" shim ||
    fail "client failed with the shim: $(cat "$TMP/err1")"
sed 's/^/    with: /' "$TMP/out1"
grep "reshim" "$TMP/err1" | sed 's/^/    with: /'
nok=$(grep -c "^fetch [0-9]* ok hello" "$TMP/out1" || true)
[ "$nok" = $((LATER + 1)) ] || fail "with the shim, expected $((LATER + 1)) successful fetches, got $nok"
dropped=$(tail -n +$((before + 1)) "$TMP/dns.log" | grep -c "^dropped A $NAME" || true)
[ "$dropped" -ge "$LATER" ] || fail "with the shim, the DNS server dropped only $dropped A queries: the later fetches did not really face a silent DNS server"
nstale=$(grep -c "getaddrinfo($NAME): temporary failure; answering with the last good answer" "$TMP/err1" || true)
[ "$nstale" -ge 1 ] || fail "no stale-answer log line"
stale=$(stat_field net.dns_stale "$TMP/err1")
[ -n "$stale" ] && [ "$stale" -ge "$LATER" ] || fail "net.dns_stale=${stale:-missing}, expected >= $LATER"
[ "$(stat_field net.dns.gave_up "$TMP/err1")" = 0 ] || fail "dns gave_up != 0 with the shim"
pass "with reshim: $nok/$nok fetches ok, $nstale stale-answer log lines, dns_stale=$stale, $dropped queries dropped"
