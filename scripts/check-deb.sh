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

NAME=check-deb
# shellcheck source=scripts/lib-root.sh
. scripts/lib-root.sh

root_require "debootstrap, chroot, dpkg in the root"
[ -f "$DEB" ] || die "$DEB is missing (make deb)"

WORK="$ROOT/$BUILD/check-deb"
R=""
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. The cached root, or a fresh one.
root_cache "$SUITE" "$VARIANT" "$INCLUDE" "$MIRROR" "$WORK"

# 2. A copy to work in: the cache stays as debootstrap left it.
root_copy "$WORK"

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
late_setup
late "no shim" fail python3 /tmp/client.py
late "reshim-run -- python3" ok reshim-run -- python3 /tmp/client.py
late "LD_PRELOAD=/usr/lib/reshim/libreshim.so" ok env LD_PRELOAD=/usr/lib/reshim/libreshim.so python3 /tmp/client.py

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
