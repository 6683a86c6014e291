#!/bin/sh
# Installs the Debian packages a make target needs, only when something is
# missing. Needs root (or sudo) only in that case.
#   scripts/install-deps.sh demo    what `make demo` needs: the build and python3
#   scripts/install-deps.sh [check] what `make check` (and check-full, bench) needs:
#                                   the build, the test tools, the programs tests run
set -eu

# `make all`: a C compiler and make; uthash's header (the CLI's tables, the
# library's DNS cache).
BUILD="build-essential uthash-dev"
# The demo: a python3 backend and two python3 clients (scripts/demo).
DEMO="$BUILD python3"
# The tests: unit (cmocka), sanitizers and fuzzing (clang), the programs run under
# the shim (python3 and its test suite, curl, wget, redis, node, nginx, haproxy,
# git, java), the tools they are checked with (strace, jq, socat, promtool,
# iptables/nftables, setcap, shellcheck, groff, lintian), the musl build.
CHECK="$BUILD pkg-config libunwind-dev libdw1 libcmocka-dev python3 curl wget
redis-server redis-tools util-linux iproute2 procps socat jq nodejs openjdk-17-jdk-headless
libpython3.11-testsuite heaptrack zstd prometheus busybox dash shellcheck groff-base man-db
libcap2-bin clang libclang-rt-14-dev haproxy nginx-light wrk git iptables nftables strace
python3-requests debootstrap lintian python3-venv python3-yaml musl-tools python3-gunicorn"

case "${1:-check}" in
demo) PKGS=$DEMO ;;
check) PKGS=$CHECK ;;
*) echo "usage: scripts/install-deps.sh [demo|check]" >&2; exit 2 ;;
esac

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "reshim: installing Debian packages:$missing" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "reshim: need root to install:$missing" >&2; exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The Debian redis-server package starts a system instance; tests run their own.
# The same for prometheus and its node exporter, haproxy and nginx (tests start
# their own, on loopback).
if command -v systemctl >/dev/null 2>&1; then
    for s in redis-server prometheus prometheus-node-exporter haproxy nginx; do
        $SUDO systemctl disable --now "$s" >/dev/null 2>&1 || true
    done
fi
