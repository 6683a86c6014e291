#!/usr/bin/env bash
# alone: event-loop lag under 50 ms while a replay waits
# Event loops keep running while a replay waits (RESHIM_REPLAY=safe): asyncio
# and node (epoll, non-blocking sockets) with a 10 ms timer, their GETs reset
# on accept and replayed: worst timer lag < 50 ms (or the loop's own lag
# without the shim + 40 ms), replays counted in the stats the shim pushes at
# exit. The other replay cases are test_replay.sh.
source "$(dirname "$0")/lib.sh"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
"$PY" "$ROOT/tests/integration/replay_cases.py" "$SHIM" loops || fail "replay loop cases"
