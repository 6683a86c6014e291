#!/bin/bash
# tests/fuzz/cli_hostile.sh: the reshim CLI facing a process that answers
# with terminal escape sequences in its strings (the regression test of the
# two CLI defects the fuzzers found: cli_sanitize let C1 controls and bytes
# that are not UTF-8 through, and error messages were printed unsanitized).
#
# A fake "shimmed process" (python3, a stats socket in a private run dir)
# answers stats, heap, config and trim with strings holding ESC ] (set the
# window title), BEL, ESC [2J (clear the screen), CSI as U+009B and as the
# raw byte 0x9b, and bytes that are not UTF-8; and `heap 7` with an answer
# that is not JSON (raw ESC bytes), which the CLI quotes in its error. Each command's output
# (stdout and stderr, as a terminal would get them) must hold none of those
# bytes, and must still show the text around them.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RESHIM=${RESHIM_CLI:-$ROOT/build/reshim}
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/reshim-fuzz-cli.XXXXXX)
peer=""
cleanup() {
    [ -n "$peer" ] && kill "$peer" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "  FAIL: $*" >&2; exit 1; }
mkdir -m 700 "$TMP/run"

# Answers: JSON escapes for the controls (as a real encoder would write
# them) and raw bytes (as a hostile one could).
"$PY" - "$TMP/run" "$TMP/ready" <<'EOF' &
import os, socket, sys
run, ready = sys.argv[1], sys.argv[2]
evil = "\\u001b]0;pwned\\u0007\\u001b[2Jsafe\\u009b31mred"
raw = b"\x9b2J\xc2\x9b\xff"  # raw bytes JSON allows in a string: C1 CSI, not UTF-8
stats = ('{"pid":%d,"comm":"%s","version":"0.1.0","net":{"destinations":[{"dest":"%s",'
         '"dir":"out","calls":1,"last_error":"E%s","breaker":"open"}]},'
         '"mem":{"state":"%s","policy":"trim","budget_source":"env"}}'
         % (os.getpid(), evil, evil, evil, evil)).encode() + b"\n"
heap = (b'{"sample_bytes":524288,"sites":[{"live_bytes":1048576,"live_objects":2,"allocs":2,'
        b'"samples":1,"live_samples":1,"stack":["' + evil.encode() + b'","raw' + raw +
        b'"]}],"sampled_live_bytes":1048576,"live_samples":1,"sites_used":1}\n')
config = (b'{"RESHIM_LOG":{"value":"' + evil.encode() + b'","source":"env"},'
          b'"RESHIM_DEST":{"value":"x' + raw + b'","source":"default (invalid env)",'
          b'"given":"' + evil.encode() + b'"}}\n')
trim = b'{"error":"' + evil.encode() + b' raw' + raw + b'"}\n'
# Not JSON at all (a raw ESC in a string): the CLI quotes it in its error.
broken = b'{"sites":"\x1b]0;pwned\x07\x1b[2Jsafe\x9b31m' + raw + b'"}\n'
answers = {b"stats": stats, b"heap": heap, b"config": config, b"trim": trim}
s = socket.socket(socket.AF_UNIX)
s.bind(os.path.join(run, "%d.sock" % os.getpid()))
s.listen(8)
open(ready, "w").write(str(os.getpid()))
while True:
    c, _ = s.accept()
    try:  # the CLI also connects only to see that the socket is alive
        line = b""
        while not line.endswith(b"\n"):
            b = c.recv(4096)
            if not b:
                break
            line += b
        words = line.split()
        if words == [b"heap", b"7"]:
            c.sendall(broken)
        elif words:
            c.sendall(answers.get(words[0], b'{"error":"unknown"}\n'))
    except OSError:
        pass
    c.close()
EOF
peer=$!
for _ in $(seq 100); do [ -s "$TMP/ready" ] && break; sleep 0.1; done
[ -s "$TMP/ready" ] || fail "the fake process did not start"
pid=$(cat "$TMP/ready")

check() { # NAME WANT ARGS...: the command's output holds WANT and no control byte
    local name=$1 want=$2
    shift 2
    RESHIM_RUN_DIR="$TMP/run" NO_COLOR=1 "$RESHIM" "$@" >"$TMP/$name.out" 2>&1
    # Every byte but newline and printable UTF-8: C0, DEL, C1 (raw or as
    # UTF-8 C2 80-9F), and any byte that is not UTF-8.
    "$PY" - "$TMP/$name.out" <<'EOF' || fail "reshim $* put control bytes on the terminal: $(od -c "$TMP/$name.out" | head -8)"
import sys
t = open(sys.argv[1], "rb").read()
try:
    s = t.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit("not UTF-8: %s" % e)
bad = [c for c in s if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
sys.exit("control characters %r" % bad if bad else 0)
EOF
    grep -q -- "$want" "$TMP/$name.out" || fail "reshim $*: no '$want' in: $(cat "$TMP/$name.out")"
}
check stats "safe" stats "$pid"
check heap "safe" heap "$pid"
check config "safe" config "$pid"
check trim "safe" trim "$pid"
check heap-broken "unexpected answer to heap.*safe" heap --top 7 "$pid"
echo "  ok: stats, heap, config, trim and a broken heap answer of a process answering ESC ]," \
    "BEL, ESC [2J, U+009B, raw 0x9b and non-UTF-8 bytes: none reach the terminal, the text" \
    "around them does"
