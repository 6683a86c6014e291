#!/usr/bin/env bash
# check-deb.sh VERSION (`make check-deb`): the .deb that `make deb` built,
# installed with dpkg in a fresh Debian root (debootstrap --variant=minbase,
# with python3 and man-db), tested there with that root's python3, and removed:
#   - a python3 client whose server comes up 1.5 s late fails without the
#     shim, succeeds under `reshim-run --` and under LD_PRELOAD=/usr/lib/...;
#   - `reshim ls` lists a running shimmed process; `reshim --version` is
#     VERSION; man finds the pages;
#   - `dpkg -r reshim` leaves nothing of the package behind (the root's file
#     list before install and after removal, less /var/lib/dpkg, /var/log,
#     /tmp, /proc, /dev).
# The debootstrap root is cached in $BUILD/debroot/ keyed by suite, variant,
# package list and mirror (`make clean` drops it); each run works on a copy.
# Exit status: 0 pass, 77 skip (not root; the mirror cannot be reached), else
# fail. Environment: BUILD, RESHIM_DEB_MIRROR (default deb.debian.org).
set -euo pipefail

VERSION=${1:?usage: check-deb.sh VERSION}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
ARCH=$(dpkg --print-architecture)
DEB="$BUILD/reshim_${VERSION}_${ARCH}.deb"
SUITE=bookworm
VARIANT=minbase
INCLUDE=python3,man-db
MIRROR=${RESHIM_DEB_MIRROR:-http://deb.debian.org/debian}

say() { echo "check-deb: $*"; }
skip() { echo "check-deb: skip: $*" >&2; exit 77; }
die() { echo "check-deb: FAIL: $*" >&2; exit 1; }
T0=$(date +%s.%N)
lap_t=$T0
# lap NAME: prints how long the step since the previous lap took.
lap() {
    local now; now=$(date +%s.%N)
    awk -v a="$lap_t" -v b="$now" -v n="$1" 'BEGIN { printf "check-deb: time: %-28s %6.1f s\n", n, b - a }'
    lap_t=$now
}

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, dpkg in the root)"
[ -f "$DEB" ] || die "$DEB is missing (make deb)"
for t in debootstrap chroot; do
    command -v "$t" >/dev/null || die "$t is not installed (make deps)"
done

key=$(printf '%s\n' "$SUITE" "$VARIANT" "$INCLUDE" "$MIRROR" | sha256sum | cut -c1-12)
CACHE="$ROOT/$BUILD/debroot/$SUITE-$VARIANT-$key"
WORK="$ROOT/$BUILD/check-deb"
R="$WORK/root"

# Everything mounted in, or running in, the root goes on exit, whatever happens.
cleanup() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    for m in "$R/dev/pts" "$R/proc"; do
        mountpoint -q "$m" 2>/dev/null && { umount "$m" || umount -l "$m"; }
    done
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The cached root, or a fresh one.
if [ -f "$CACHE/.complete" ]; then
    say "cached root $CACHE"
    lap "debootstrap (cached)"
else
    if command -v curl >/dev/null && ! curl -sfI -m 20 -o /dev/null "$MIRROR/dists/$SUITE/Release"; then
        skip "the mirror $MIRROR cannot be reached"
    fi
    rm -rf "$CACHE" "$CACHE.tmp"
    mkdir -p "$(dirname "$CACHE")"
    say "debootstrap --variant=$VARIANT --include=$INCLUDE $SUITE ($MIRROR)"
    if ! debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$CACHE.tmp" "$MIRROR" \
        > "$WORK.debootstrap.log" 2>&1; then
        tail -n 20 "$WORK.debootstrap.log" >&2
        for m in "$CACHE.tmp/proc" "$CACHE.tmp/sys"; do mountpoint -q "$m" && umount -l "$m"; done
        rm -rf "$CACHE.tmp"
        if grep -qiE "Failed getting release|Couldn't download|Could not resolve|Temporary failure|Connection (refused|timed out)" \
            "$WORK.debootstrap.log"; then
            skip "debootstrap could not download from $MIRROR (log: $WORK.debootstrap.log)"
        fi
        die "debootstrap failed (log: $WORK.debootstrap.log)"
    fi
    apt_clean=$CACHE.tmp/var/cache/apt/archives
    rm -f "$apt_clean"/*.deb
    touch "$CACHE.tmp/.complete"
    mv "$CACHE.tmp" "$CACHE"
    lap "debootstrap (fresh)"
fi

# 2. A copy to work in: the cache stays as debootstrap left it.
rm -rf "$WORK"
mkdir -p "$WORK"
cp -a --reflink=auto "$CACHE" "$R"
rm -f "$R/.complete"
mount -t proc proc "$R/proc"
mkdir -p "$R/dev/pts"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
lap "copy of the root, mounts"

ROOT_ENV=(/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    HOME=/root LANG=C.UTF-8)
in_root() { chroot "$R" "${ROOT_ENV[@]}" "$@"; }
# For `in_root_bg CMD... &`: $! is then CMD's own pid (chroot and env exec).
in_root_bg() { exec chroot "$R" "${ROOT_ENV[@]}" "$@"; }
# The root's files, less what dpkg and logs keep and the pseudo file systems.
file_list() {
    (cd "$R" && find . \( -path ./proc -o -path ./dev -o -path ./tmp -o -path ./sys -o -path ./run \
        -o -path ./var/lib/dpkg -o -path ./var/log \) -prune -o -print | LC_ALL=C sort)
}

# 3. Install. man-db's cache (/var/cache/man) first brought up to date, as
# its trigger does on dpkg -i: its CACHEDIR.TAG files are man-db's, not ours.
if [ -x "$R/usr/bin/mandb" ]; then in_root mandb -q >/dev/null 2>&1 || true; fi
file_list > "$WORK/files.before"
cp "$DEB" "$R/tmp/"
in_root dpkg -i "/tmp/$(basename "$DEB")" > "$WORK/dpkg-i.log" 2>&1 ||
    { cat "$WORK/dpkg-i.log" >&2; die "dpkg -i failed"; }
in_root dpkg -s reshim | grep -qx 'Status: install ok installed' || die "reshim is not installed"
# shellcheck disable=SC2016
say "installed: $(in_root dpkg-query -W -f='${Package} ${Version} ${Architecture}' reshim)"
lap "dpkg -i"

# 4. The tests, in the root, with its python3.
cat > "$R/tmp/server.py" <<'EOF'
import socket, sys, time
time.sleep(float(sys.argv[2]))              # the backend comes up late
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8); s.settimeout(10)
try:
    c, _ = s.accept(); c.recv(100); c.sendall(b"pong\n"); c.close()
except socket.timeout:
    pass
EOF
cat > "$R/tmp/client.py" <<'EOF'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
c.sendall(b"ping\n"); print(c.recv(100).decode().strip())
EOF
cat > "$R/tmp/idle.py" <<'EOF'
import select, socket, time
time.sleep(0.3)                             # the stats socket appears after 100 ms
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
while True:
    select.select([s], [], [], 0.2)
EOF
free_port() { in_root python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# late NAME EXPECT CMD...: the client, run by CMD, against a server 1.5 s late.
late() {
    local name=$1 expect=$2; shift 2
    local port out rc spid
    port=$(free_port)
    in_root_bg python3 /tmp/server.py "$port" 1.5 & spid=$!
    rc=0; out=$(in_root "$@" /tmp/client.py "$port" 2>&1) || rc=$?
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
late "no shim" fail python3
late "reshim-run -- python3" ok reshim-run -- python3
late "LD_PRELOAD=/usr/lib/reshim/libreshim.so" ok env LD_PRELOAD=/usr/lib/reshim/libreshim.so python3

in_root_bg reshim-run -- python3 /tmp/idle.py & ipid=$!
listed=""
for _ in $(seq 50); do
    sleep 0.1
    if in_root reshim ls 2>/dev/null | grep -qw "$ipid"; then listed=1; break; fi
done
ls_out=$(in_root reshim ls 2>&1 || true)
kill "$ipid" 2>/dev/null || true; wait "$ipid" 2>/dev/null || true
[ -n "$listed" ] || die "reshim ls does not list the shimmed python3 (pid $ipid): $ls_out"
say "ok: reshim ls lists pid $ipid: $(echo "$ls_out" | grep -w "$ipid")"

failed=""
v=$(in_root reshim --version)
if [ "$v" = "reshim $VERSION" ]; then say "ok: reshim --version: $v"
else echo "check-deb: FAIL: reshim --version says '$v', the package is $VERSION" >&2; failed=1; fi

if in_root sh -c 'command -v man' >/dev/null; then
    for page in "1 reshim" "1 reshim-run" "7 libreshim"; do
        # shellcheck disable=SC2086
        p=$(in_root man -w $page 2>&1) || die "man -w $page: $p"
    done
    say "ok: man -w finds reshim(1), reshim-run(1), libreshim(7)"
else
    say "no man-db in the root: man pages not looked up"
fi
lap "tests in the root"

# 5. Remove: nothing of the package may be left.
in_root dpkg -r reshim > "$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log" >&2; die "dpkg -r failed"; }
rm -f "$R/tmp/$(basename "$DEB")"
file_list > "$WORK/files.after"
if ! diff -u "$WORK/files.before" "$WORK/files.after" > "$WORK/files.diff"; then
    cat "$WORK/files.diff" >&2
    die "the root's files differ after dpkg -r reshim (above)"
fi
# shellcheck disable=SC2016
st=$(in_root dpkg-query -W -f='${Status}' reshim 2>/dev/null || true)
case $st in "" | *not-installed | *config-files) ;; *) die "dpkg still has reshim: $st" ;; esac
say "ok: dpkg -r reshim leaves the root's file list as it was ($(wc -l < "$WORK/files.before") entries)"
lap "dpkg -r, file lists"

cleanup
rm -rf "$R"
lap_t=$T0; lap total
[ -z "$failed" ] || exit 1
say "pass"
