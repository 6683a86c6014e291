# lib-root.sh: sourced by check-deb.sh and check-compat.sh: a Debian root made
# with debootstrap, cached in $BUILD/debroot/ keyed by suite, variant,
# package list and mirror (`make clean` drops it), a copy of it to work in
# with /proc and /dev/pts mounted, commands run in it, and the cleanup; the
# late-server test both scripts run in their roots.
# Before sourcing: NAME (the prefix of every message), ROOT (the source tree,
# the current directory), BUILD.
# shellcheck shell=bash

say() { echo "${NAME:?}: $*"; }
skip() { echo "$NAME: skip: $*" >&2; exit 77; }
die() { echo "$NAME: FAIL: $*" >&2; exit 1; }
T0=$(date +%s.%N)
lap_t=$T0
# lap NAME: prints how long the step since the previous lap took.
lap() {
    local now; now=$(date +%s.%N)
    awk -v a="$lap_t" -v b="$now" -v n="$1" -v p="$NAME" \
        'BEGIN { printf "%s: time: %-28s %6.1f s\n", p, n, b - a }'
    lap_t=$now
}

# root_require WHY: root and the tools, or skip/fail.
root_require() {
    [ "$(id -u)" = 0 ] || skip "needs root ($1)"
    local t
    for t in debootstrap chroot; do
        command -v "$t" >/dev/null || die "$t is not installed (make deps)"
    done
}

# root_cache SUITE VARIANT INCLUDE MIRROR WORK: sets CACHE to the cached root,
# made first if there is none (its log: $WORK.debootstrap.log). Skips when
# the mirror cannot be reached.
root_cache() {
    local suite=$1 variant=$2 include=$3 mirror=$4 work=$5 key m
    key=$(printf '%s\n' "$suite" "$variant" "$include" "$mirror" | sha256sum | cut -c1-12)
    CACHE="$ROOT/$BUILD/debroot/$suite-$variant-$key"
    if [ -f "$CACHE/.complete" ]; then
        say "cached root $CACHE"
        lap "debootstrap (cached)"
        return 0
    fi
    if command -v curl >/dev/null && ! curl -sfI -m 20 -o /dev/null "$mirror/dists/$suite/Release"; then
        skip "the mirror $mirror cannot be reached (or has no $suite)"
    fi
    rm -rf "$CACHE" "$CACHE.tmp"
    mkdir -p "$(dirname "$CACHE")" "$(dirname "$work")"
    say "debootstrap --variant=$variant --include=$include $suite ($mirror)"
    if ! debootstrap --variant="$variant" --include="$include" "$suite" "$CACHE.tmp" "$mirror" \
        > "$work.debootstrap.log" 2>&1; then
        tail -n 20 "$work.debootstrap.log" >&2
        for m in "$CACHE.tmp/proc" "$CACHE.tmp/sys"; do mountpoint -q "$m" && umount -l "$m"; done
        rm -rf "$CACHE.tmp"
        if grep -qiE "Failed getting release|Couldn't download|Could not resolve|Temporary failure|Connection (refused|timed out)" \
            "$work.debootstrap.log"; then
            skip "debootstrap could not download from $mirror (log: $work.debootstrap.log)"
        fi
        die "debootstrap failed (log: $work.debootstrap.log)"
    fi
    rm -f "$CACHE.tmp"/var/cache/apt/archives/*.deb
    touch "$CACHE.tmp/.complete"
    mv "$CACHE.tmp" "$CACHE"
    lap "debootstrap (fresh)"
}

# root_copy WORK: R=WORK/root, a fresh copy of $CACHE (the cache stays as
# debootstrap left it), /proc and /dev/pts mounted; cleanup undoes it.
root_copy() {
    WORK=$1
    R="$WORK/root"
    rm -rf "$WORK"
    mkdir -p "$WORK"
    cp -a --reflink=auto "$CACHE" "$R"
    rm -f "$R/.complete"
    mount -t proc proc "$R/proc"
    mkdir -p "$R/dev/pts"
    mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
    lap "copy of the root, mounts"
}

# Everything mounted in, or running in, the root goes (trap cleanup EXIT).
cleanup() {
    local p m
    [ -n "${R:-}" ] || return 0
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    for m in "$R/dev/pts" "$R/proc"; do
        mountpoint -q "$m" 2>/dev/null && { umount "$m" || umount -l "$m"; }
    done
    return 0
}

ROOT_ENV=(/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME=/root LANG=C.UTF-8)
in_root() { chroot "$R" "${ROOT_ENV[@]}" "$@"; }
# For `in_root_bg CMD... &`: $! is then CMD's own pid (chroot and env exec).
in_root_bg() { exec chroot "$R" "${ROOT_ENV[@]}" "$@"; }

# late_setup: the python3 server and client of `late` in the root's /tmp, and
# idle.py, a long-lived process for `reshim ls/stats` to find.
late_setup() {
    cat > "$R/tmp/server.py" <<'PY'
import socket, sys, time
time.sleep(float(sys.argv[2]))              # the backend comes up late
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); s.settimeout(10)
try:
    c, _ = s.accept(); req = c.recv(1000)
    if req.startswith(b"GET "):             # an HTTP client (curl)
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\npong\n")
    else:
        c.sendall(b"pong\n")
    c.close()
except socket.timeout:
    pass
PY
    cat > "$R/tmp/client.py" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
c.sendall(b"ping\n"); print(c.recv(100).decode().strip())
PY
    cat > "$R/tmp/idle.py" <<'PY'
import select, socket, time
time.sleep(0.3)                             # the stats socket appears after 100 ms
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
while True:
    select.select([s], [], [], 0.2)
PY
}
free_port() { in_root python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# late NAME EXPECT CMD...: CMD, with the port as its last argument, against a
# server 1.5 s late; EXPECT fail (it must fail) or ok (it must print pong).
late() {
    local name=$1 expect=$2; shift 2
    local port out rc spid
    port=$(free_port)
    in_root_bg python3 /tmp/server.py "$port" 1.5 & spid=$!
    rc=0; out=$(in_root "$@" "$port" 2>&1) || rc=$?
    if [ "$expect" = fail ]; then
        kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
        [ $rc -ne 0 ] || die "$name: the client succeeded without the shim: $out"
        say "ok: $name: fails ($(echo "$out" | tail -n 1))"
    else
        wait "$spid" 2>/dev/null || true
        if [ $rc -ne 0 ] || [ "$out" != pong ]; then die "$name: the client failed (rc $rc): $out"; fi
        say "ok: $name: rescued"
    fi
}
