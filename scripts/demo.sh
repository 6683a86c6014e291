#!/usr/bin/env bash
# scripts/demo.sh (`make demo`): reshim in one picture. A python3 HTTP backend
# on 127.0.0.1 keeps restarting (its listener closes for 1.0-1.4 s, then comes
# back). Two copies of the same unmodified python3 client (urllib, one request
# every 50 ms for 10 s, and a cache that leaks 15 MB a second) run against it
# at the same time: one plain, one started with `reshim run --budget 100M
# --policy enforce`. While they run, `reshim ls`, `reshim stats` and a few
# seconds of `reshim watch` show the shimmed one from outside. Prints what
# each saw. Exits 0 when the plain client had failures and the one under
# reshim had (nearly) none and was kept within its memory budget, 1
# otherwise. Loopback only, on a free port; every process it starts is
# stopped on exit. DEMO_SECONDS (default 10) sets how long the clients run;
# DEMO_LIB another library to preload instead of build/libreshim.so.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIB=${DEMO_LIB:-$ROOT/build/libreshim.so}
RESHIM=$ROOT/build/reshim
PY=/usr/bin/python3
BUDGET_MB=100
GROW_MB=15
DURATION=${DEMO_SECONDS:-10}
INTERVAL=0.05

for f in "$LIB" "$RESHIM"; do
    if [ ! -f "$f" ]; then
        echo "demo: $f is missing; build it with \`make\` (or run \`make demo\`)" >&2
        exit 1
    fi
done
if [ ! -x "$PY" ]; then
    echo "demo: $PY is missing; \`make deps\` installs it" >&2
    exit 1
fi

# Both clients start from the same environment, without any preload.
unset LD_PRELOAD
while IFS= read -r v; do unset "$v"; done < <(compgen -e | grep '^RESHIM_' || true)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/reshim-demo.XXXXXX") || exit 1
# A run directory of the demo's own: `reshim ls` shows the demo's process only.
export RESHIM_RUN_DIR=$TMP/run
PIDS=""
# shellcheck disable=SC2317 # called from the traps
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM HUP

"$PY" -u "$ROOT/scripts/demo/backend.py" "$TMP/port" >"$TMP/backend.log" 2>&1 &
BACKEND=$!
PIDS="$BACKEND"
for _ in $(seq 100); do
    [ -s "$TMP/port" ] && break
    kill -0 "$BACKEND" 2>/dev/null || break
    sleep 0.05
done
if [ ! -s "$TMP/port" ]; then
    echo "demo: the backend did not start:" >&2
    cat "$TMP/backend.log" >&2
    exit 1
fi
PORT=$(cat "$TMP/port")
URL="http://127.0.0.1:$PORT/"

echo "reshim demo: one python3 program, a backend that keeps restarting, a cache that leaks"
echo
echo "  backend  $URL  (python3) goes down for 1.0-1.4 s about every 2 s"
echo "  client   python3 urllib.request.urlopen(url), no retry logic of its own:"
echo "           a request every 50 ms for $DURATION s, and a cache growing $GROW_MB MB/s that it"
echo "           drops when it gets a MemoryError; two copies run at the same time,"
echo "           plain:   python3 client.py"
echo "           reshim:  reshim run --budget ${BUDGET_MB}M --policy enforce -- python3 client.py"
echo

"$PY" -u "$ROOT/scripts/demo/client.py" "$URL" "$DURATION" "$INTERVAL" "$GROW_MB" \
    >"$TMP/plain.out" 2>"$TMP/plain.err" &
PLAIN=$!
RESHIM_LIBRARY=$LIB RESHIM_LOG=info "$RESHIM" run --budget "${BUDGET_MB}M" --policy enforce -- \
    "$PY" -u "$ROOT/scripts/demo/client.py" "$URL" "$DURATION" "$INTERVAL" "$GROW_MB" \
    >"$TMP/shim.out" 2>"$TMP/shim.err" &
SHIM=$!
PIDS="$PLAIN $SHIM $BACKEND"

count() { # count WORD FILE: lines starting with WORD
    grep -c "^$1 " "$2" 2>/dev/null || true
}
progress() {
    printf '  %4s s   plain: %3d ok, %3d failed    reshim: %3d ok, %3d failed    backend restarts: %d\n' \
        "$1" "$(count ok "$TMP/plain.out")" "$(count fail "$TMP/plain.out")" \
        "$(count ok "$TMP/shim.out")" "$(count fail "$TMP/shim.out")" "$(count down "$TMP/backend.log")"
}

# cli TITLE ARGS...: one reshim command, shown as typed, its output indented.
cli() {
    echo
    echo "  \$ reshim $*"
    "$RESHIM" "$@" 2>&1 | sed 's/^/    /'
    echo
}

# While the clients run: a progress line every 2.5 s, and at 3 s, 5.5 s and
# 6 s a look from outside with the CLI (at most DURATION + 20 s in all).
start=$(date +%s%N)
next=25
shown=0
while kill -0 "$PLAIN" 2>/dev/null || kill -0 "$SHIM" 2>/dev/null; do
    sleep 0.1
    now=$(date +%s%N)
    tenths=$(((now - start) / 100000000))
    if [ "$tenths" -ge "$next" ] && [ "$next" -le $((DURATION * 10)) ]; then
        progress "$((next / 10)).$((next % 10))"
        next=$((next + 25))
    fi
    if kill -0 "$SHIM" 2>/dev/null; then
        if [ "$shown" = 0 ] && [ "$tenths" -ge 30 ]; then
            cli ls
            shown=1
        elif [ "$shown" = 1 ] && [ "$tenths" -ge 55 ]; then
            cli stats "$SHIM"
            shown=2
        elif [ "$shown" = 2 ] && [ "$tenths" -ge 60 ] && [ "$tenths" -lt $((DURATION * 10 - 25)) ]; then
            echo
            echo "  \$ reshim watch $SHIM -n 0.5 --count 6"
            if [ -t 1 ]; then
                "$RESHIM" watch "$SHIM" -n 0.5 --count 6 || true
                echo "    (the live view ran for 3 s on this terminal's alternate screen)"
            else
                "$RESHIM" watch "$SHIM" -n 0.5 --count 6 2>&1 | sed 's/^/    /'
            fi
            echo
            shown=3
            next=$(( ( ($(date +%s%N) - start) / 100000000 + 24) / 25 * 25 ))
        fi
    fi
    if [ "$tenths" -gt $(((DURATION + 20) * 10)) ]; then
        echo "demo: the clients did not finish in time" >&2
        exit 1
    fi
done
wait "$PLAIN"
plain_rc=$?
wait "$SHIM"
shim_rc=$?
kill "$BACKEND" 2>/dev/null
if [ "$plain_rc" != 0 ] || [ "$shim_rc" != 0 ]; then
    echo "demo: a client exited with an error (plain $plain_rc, reshim $shim_rc):" >&2
    tail -n 5 "$TMP/plain.err" "$TMP/shim.err" >&2
    exit 1
fi

# field NAME LINE: the value of NAME=value in a line of words.
field() {
    local f
    for f in $2; do
        case $f in "$1="*) echo "${f#*=}"; return 0 ;; esac
    done
    echo "?"
}
plain_sum=$(grep '^summary ' "$TMP/plain.out")
shim_sum=$(grep '^summary ' "$TMP/shim.out")
p_req=$(field requests "$plain_sum") p_ok=$(field succeeded "$plain_sum")
p_fail=$(field failed "$plain_sum") p_slow=$(field slowest "$plain_sum")
s_req=$(field requests "$shim_sum") s_ok=$(field succeeded "$shim_sum")
s_fail=$(field failed "$shim_sum") s_slow=$(field slowest "$shim_sum")
p_mem=$(field memerrors "$plain_sum") p_peak=$(field peak_rss_mb "$plain_sum")
s_mem=$(field memerrors "$shim_sum") s_peak=$(field peak_rss_mb "$shim_sum")
# "exit summary: connect calls=N failures=N retries=N recovered=N gave_up=N; dns ..."
connect_sum=$(sed -n 's/.*exit summary: \(connect [^;]*\);.*/\1/p' "$TMP/shim.err" | tail -n 1)
s_retries=$(field retries "$connect_sum")
s_recovered=$(field recovered "$connect_sum")
restarts=$(count down "$TMP/backend.log")
if [ -z "$shim_sum" ] || [ -z "$plain_sum" ]; then
    echo "demo: FAILED: a client's results are missing" >&2
    tail -n 3 "$TMP/plain.out" "$TMP/plain.err" "$TMP/shim.out" "$TMP/shim.err" >&2
    exit 1
fi

echo
printf '  %-8s %9s %10s %7s %10s %16s %10s %12s %13s\n' "client" "requests" "succeeded" "failed" \
    "slowest" "connect retries" "recovered" "peak RSS" "MemoryErrors"
printf '  %-8s %9s %10s %7s %8s s %16s %10s %9s MB %13s\n' "plain" "$p_req" "$p_ok" "$p_fail" \
    "$p_slow" "-" "-" "$p_peak" "$p_mem"
printf '  %-8s %9s %10s %7s %8s s %16s %10s %9s MB %13s\n' "reshim" "$s_req" "$s_ok" "$s_fail" \
    "$s_slow" "$s_retries" "$s_recovered" "$s_peak" "$s_mem"
echo

sample=$(grep -m 1 'recovered after' "$TMP/shim.err" || true)
reason=$(sed -n 's/^fail [0-9.]* //p' "$TMP/plain.out" | sort | uniq -c | sort -rn | head -n 1 |
    awk '{ $1 = ""; sub(/^ /, ""); gsub(/_/, " "); print }')

if [ -z "$connect_sum" ]; then
    echo "demo: FAILED: no exit summary from reshim on the client's stderr; was $LIB loaded?" >&2
    tail -n 5 "$TMP/shim.err" | sed 's/^/      /' >&2
    exit 1
fi
if [ "$p_fail" -eq 0 ]; then
    echo "demo: FAILED: the plain client saw no failures; the backend restarted $restarts times" >&2
    echo "      (is the machine so loaded that the backend did not go down?)" >&2
    exit 1
fi
if [ "$s_fail" -gt 1 ]; then
    echo "demo: FAILED: the client under reshim still had $s_fail failed requests:" >&2
    grep '^fail ' "$TMP/shim.out" | head -n 5 | sed 's/^/      /' >&2
    grep -v 'exit summary' "$TMP/shim.err" | tail -n 5 | sed 's/^/      /' >&2
    exit 1
fi
if [ "$s_mem" = "?" ] || [ "$s_mem" -lt 1 ] || [ "$s_peak" -gt $((BUDGET_MB + 15)) ]; then
    echo "demo: FAILED: the client under reshim was not kept within its ${BUDGET_MB} MB budget" \
        "(peak $s_peak MB, $s_mem MemoryErrors; plain: peak $p_peak MB)" >&2
    grep -i 'memory' "$TMP/shim.err" | grep -v 'exit summary' | tail -n 5 | sed 's/^/      /' >&2
    exit 1
fi
echo "The backend restarted $restarts times. The plain client lost $p_fail requests (${reason:-errors})."
echo "Under reshim the same program lost $s_fail: each refused connect was retried on the same"
echo "socket until the backend was back (so it sent fewer requests: the slowest waited ${s_slow} s"
echo "instead of failing at once). From reshim's log:"
[ -n "$sample" ] && echo "  $sample"
echo
echo "The plain client's cache took it to $p_peak MB: in a ${BUDGET_MB} MB container the kernel would"
echo "have killed it. Under reshim (policy enforce) its allocations past the ${BUDGET_MB} MB budget"
echo "failed instead: python3 raised MemoryError $s_mem time(s), the program dropped its cache and"
echo "carried on, and its peak stayed at $s_peak MB. From reshim's log:"
grep -m 1 'denied an allocation' "$TMP/shim.err" | sed 's/^/  /' || true
if [ "$s_fail" -gt 0 ]; then
    # One failure is tolerated (e.g. a connection established in the instant
    # the backend closes its listener is reset, and reshim never replays a
    # request); say what it was.
    echo "(the one failure under reshim: $(grep -m 1 '^fail ' "$TMP/shim.out" | cut -d' ' -f3- | tr _ ' '))"
fi
exit 0
