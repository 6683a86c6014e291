#!/usr/bin/env bash
# RESHIM_REPLAY=safe (the default): connections that break before the peer
# could act on what was sent are connected again and the bytes resent, with
# real clients (python3 urllib, python3-requests Session, raw sockets) against
# tests/integration/peers/replay_peer.py; each case also runs without the
# shim. Rescued: reset on accept, reset or end of file after a GET was read,
# a reused keep-alive connection closed under a GET, a send that finds the
# reset (nothing sent yet). Never replayed (the peer's own count of requests
# is the same with and without the shim, and so is the app's error): POST
# and PUT with bodies, a GET whose response began, two pipelined GETs, a GET
# with a body. Non-blocking sockets too (curl, node, urllib with a timeout);
# that event loops keep running while a replay waits is test_replay_loops.sh
# (their lag is judged: it runs alone). Figures come from the stats the shim
# pushes at exit.
# RESHIM_REPLAY=connect and off: the reset on accept fails as without the shim.
source "$(dirname "$0")/lib.sh"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
"$PY" "$ROOT/tests/integration/replay_cases.py" "$SHIM" others || fail "replay cases"
