# lib.sh: shared by the integration tests (sourced, bash). Each test is a
# script tests/integration/test_NAME.sh that exits 0 on pass, 77 on skip
# (with the reason on stderr), anything else on failure.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SHIM="$ROOT/build/libreshim.so"
BIN="$ROOT/build/bin"
PEERS="$ROOT/tests/integration/peers"
PY=/usr/bin/python3          # Debian's python3, never a pyenv shim
# The version the build must report: the Makefile's VERSION, its one place.
VERSION=$(sed -n 's/^VERSION *:*= *\([^ ]*\).*/\1/p' "$ROOT/Makefile")
[ -n "$VERSION" ] || { echo "lib.sh: no VERSION in $ROOT/Makefile" >&2; exit 1; }
export RESHIM_TEST_VERSION=$VERSION   # for the Python the tests run
TMP=$(mktemp -d /tmp/reshim-test.XXXXXX)
CHILDREN=()

cleanup() {
    for p in "${CHILDREN[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

# Runs "$@" in the background and remembers it for cleanup.
spawn() { "$@" & CHILDREN+=($!); }

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wait_port PORT [SECONDS]: until something listens on 127.0.0.1:PORT.
wait_port() {
    local port=$1 t=${2:-10} i=0
    while ! "$PY" -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt $((t * 20)) ] && return 1; sleep 0.05
    done
}

# with_shim CMD...: runs CMD with the shim preloaded (env passes through).
with_shim() { LD_PRELOAD="$SHIM${LD_PRELOAD:+:$LD_PRELOAD}" "$@"; }

# summary_field LOGFILE CLASS FIELD: a counter from the RESHIM_LOG=info exit
# summary ("connect calls=1 failures=0 retries=3 recovered=1 gave_up=0; ...").
summary_field() {
    grep -o "exit summary: .*" "$1" | tail -n 1 | sed 's/^exit summary: //' | tr ';' '\n' |
        sed -n "s/^ *$2 .*\b$3=\([0-9]*\).*/\1/p"
}

# need FILE...: what a test runs from the build. `make check-integration` builds
# it all first (the library, the CLI, build/bin/*); a test never runs make.
need() {
    local f
    for f; do [ -e "$f" ] || fail "$f is missing (make check-integration builds it)"; done
}

pass() { echo "  ok: $*"; }
fail() { echo "  FAIL: $*" >&2; exit 1; }
skip() { echo "  skip: $*" >&2; exit 77; }
