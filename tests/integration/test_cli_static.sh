#!/usr/bin/env bash
# alone: ls --json of both CLIs is compared, and other tests' processes would show in it
# The static CLI (build/reshim-static: musl-gcc -static, issue 15): a static
# executable (file, ldd) that needs no C library at all (it runs alone in an
# empty chroot), and that gives the same answers as the glibc CLI
# (build/reshim) about a glibc process under build/libreshim.so: ls --json,
# stats --json, metrics (promtool), config PID, config --check, doctor; serve
# on localhost:PORT. Then test_cli_doctor and test_collect (under make
# check-full also test_cli and test_serve) run again with it in place of
# build/reshim. When the musl
# library (build/musl/libreshim.so) is built, both CLIs also read a musl
# process. Skipped (77) without musl-gcc (`make deps` installs musl-tools).
source "$(dirname "$0")/lib.sh"

command -v musl-gcc >/dev/null || skip "musl-gcc is not installed (make deps installs musl-tools)"
STATIC="$ROOT/build/reshim-static"
GLIBC="$ROOT/build/reshim"
[ -x "$STATIC" ] || fail "$STATIC is missing (make all, with musl-gcc installed)"
[ -x "$GLIBC" ] || fail "$GLIBC is missing (make all)"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"

export RESHIM_RUN_DIR="$TMP/run"
unset RESHIM_DISABLE NO_COLOR LD_PRELOAD

# keys FILE: every key path of the JSON in FILE (lists: their first element),
# one a line, sorted.
keys() {
    "$PY" - "$1" <<'EOF'
import json, sys
def walk(v, p, out):
    if isinstance(v, dict):
        for k, x in v.items():
            out.add(p + "." + k); walk(x, p + "." + k, out)
    elif isinstance(v, list):
        for x in v[:1]: walk(x, p + "[]", out)
out = set(); walk(json.load(open(sys.argv[1])), "", out)
print("\n".join(sorted(out)))
EOF
}
# same_keys WHAT A B: A and B (JSON files) have the same key paths.
same_keys() {
    diff <(keys "$2") <(keys "$3") >"$TMP/keys.diff" || { cat "$TMP/keys.diff" >&2; fail "$1: the JSON keys differ (< glibc CLI, > static CLI)"; }
}
# series FILE: the metric names with their label sets, without values.
series() { grep -v '^#' "$1" | sed 's/ [^ ]*$//' | sort; }

# ---- what the file is ---------------------------------------------------------------
desc=$(file -b "$STATIC")
case $desc in *"statically linked"*) ;; *) fail "file: $desc" ;; esac
ldd_out=$(ldd "$STATIC" 2>&1 || true)
case $ldd_out in *"not a dynamic executable"*) ;; *) fail "ldd: $ldd_out" ;; esac
"$PY" - "$STATIC" <<'EOF' || fail "$STATIC has a PT_INTERP or PT_DYNAMIC program header"
import struct, sys
d = open(sys.argv[1], "rb").read()
phoff, = struct.unpack_from("<Q", d, 0x20); phentsize, phnum = struct.unpack_from("<HH", d, 0x36)
types = {struct.unpack_from("<I", d, phoff + i * phentsize)[0] for i in range(phnum)}
sys.exit(1 if types & {2, 3} else 0)    # PT_DYNAMIC, PT_INTERP
EOF
pass "$(basename "$STATIC"): $(stat -c %s "$STATIC") bytes; file: statically linked; ldd: not a dynamic executable; no PT_INTERP"

[ "$("$STATIC" --version)" = "reshim $VERSION" ] || fail "--version: $("$STATIC" --version)"

# ---- alone in an empty root: no libc, no /proc, no /etc -----------------------------
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
    mkdir "$TMP/root"
    cp "$STATIC" "$TMP/root/reshim"
    v=$(chroot "$TMP/root" /reshim --version) || fail "chroot: --version exited $?"
    [ "$v" = "reshim $VERSION" ] || fail "chroot: --version said $v"
    chroot "$TMP/root" /reshim config --check >"$TMP/cc" 2>&1 || { cat "$TMP/cc" >&2; fail "chroot: config --check exited $?"; }
    grep -q '^RESHIM_RETRIES  *5  *default' "$TMP/cc" || fail "chroot: config --check: $(cat "$TMP/cc")"
    rc=0; RESHIM_RETRIES=many chroot "$TMP/root" /reshim config --check >/dev/null 2>"$TMP/cc.err" || rc=$?
    [ $rc = 2 ] && grep -q 'RESHIM_RETRIES=many' "$TMP/cc.err" || fail "chroot: a bad value: exit $rc, $(cat "$TMP/cc.err")"
    [ "$(ls -A "$TMP/root")" = reshim ] || fail "chroot: the root holds more than reshim: $(ls -A "$TMP/root")"
    pass "in an empty chroot holding only itself: --version, config --check (exit 0; a bad value: exit 2)"
else
    echo "  note: not root: the empty-chroot part is skipped"
fi

# ---- a glibc process under build/libreshim.so, read by both CLIs --------------------
LD_PRELOAD="$SHIM" "$PY" -c '
import socket, time
for i in range(3):
    try: socket.create_connection(("127.0.0.1", 1), timeout=1)
    except OSError: pass
print("done", flush=True)
time.sleep(200)' >"$TMP/g.out" &
G=$!; CHILDREN+=($G)
wait_until 10 test -S "$RESHIM_RUN_DIR/$G.sock" || true
[ -S "$RESHIM_RUN_DIR/$G.sock" ] || fail "no stats socket for the glibc process $G"
# Until its three connects are over (it says so): the two reads compared
# below then agree (a call still retrying changes its retries).
wait_line "$TMP/g.out" '^done' || fail "the glibc process $G: its connects did not end"

"$GLIBC" ls --json >"$TMP/ls.g" && "$STATIC" ls --json >"$TMP/ls.s" || fail "ls --json exited $?"
same_keys "ls --json" "$TMP/ls.g" "$TMP/ls.s"
# (As root ls lists every user's shimmed processes, others' tests' too, which
# come and go: $G must be in both lists, with the same row less what moves.)
row() { "$PY" -c 'import json,sys; r=[p for p in json.load(open(sys.argv[1])) if p["pid"]==int(sys.argv[2])]; print(r and (r[0]["pid"], r[0]["comm"], r[0]["state"], r[0]["retries"], r[0]["recovered"], r[0]["gave_up"], r[0]["budget_bytes"]))' "$1" "$G"; }
[ "$(row "$TMP/ls.g")" = "$(row "$TMP/ls.s")" ] && [ "$(row "$TMP/ls.s")" != "[]" ] ||
    fail "ls --json, pid $G: glibc CLI $(row "$TMP/ls.g"), static CLI $(row "$TMP/ls.s")"

"$GLIBC" stats "$G" --json >"$TMP/st.g" && "$STATIC" stats "$G" --json >"$TMP/st.s" || fail "stats --json exited $?"
same_keys "stats --json" "$TMP/st.g" "$TMP/st.s"
# Everything but the clocks and what moves (uptime, time, memory) is equal.
stable() { "$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["pid"], j["comm"], j["version"], json.dumps(j["net"], sort_keys=True))' "$1"; }
[ "$(stable "$TMP/st.g")" = "$(stable "$TMP/st.s")" ] || fail "stats --json: $(stable "$TMP/st.g") vs $(stable "$TMP/st.s")"
"$GLIBC" stats "$G" | sed -n 2,99p >"$TMP/sth.g"; "$STATIC" stats "$G" | sed -n 2,99p >"$TMP/sth.s"
diff <(grep -v -i 'rss\|heap\|mmap\|usage' "$TMP/sth.g") <(grep -v -i 'rss\|heap\|mmap\|usage' "$TMP/sth.s") >&2 ||
    fail "stats (human): the net part differs"

"$GLIBC" metrics "$G" >"$TMP/m.g" && "$STATIC" metrics "$G" >"$TMP/m.s" || fail "metrics exited $?"
"$STATIC" metrics >"$TMP/mall.s" || fail "metrics (all) exited $?"
promtool check metrics <"$TMP/mall.s" >"$TMP/prom" 2>&1 || { cat "$TMP/prom" >&2; fail "promtool rejects the static CLI's metrics (all)"; }
promtool check metrics <"$TMP/m.s" >"$TMP/prom" 2>&1 || { cat "$TMP/prom" >&2; fail "promtool rejects the static CLI's metrics"; }
promtool check metrics <"$TMP/m.g" >"$TMP/prom" 2>&1 || { cat "$TMP/prom" >&2; fail "promtool rejects the glibc CLI's metrics"; }
diff <(series "$TMP/m.g") <(series "$TMP/m.s") >&2 || fail "metrics: the series differ"
diff <(grep '^#' "$TMP/m.g") <(grep '^#' "$TMP/m.s") >&2 || fail "metrics: HELP/TYPE lines differ"
grep -q "pid=\"$G\"" "$TMP/m.s" || fail "metrics lack pid $G"

"$GLIBC" config "$G" >"$TMP/cf.g" && "$STATIC" config "$G" >"$TMP/cf.s" || fail "config $G exited $?"
diff "$TMP/cf.g" "$TMP/cf.s" >&2 || fail "config $G differs"
for env in "" "RESHIM_RETRIES=3 RESHIM_MEM_BUDGET=200M" "RESHIM_RETRIES=many"; do
    rg=0; rs=0
    env $env "$GLIBC" config --check >"$TMP/cc.g" 2>&1 || rg=$?
    env $env "$STATIC" config --check >"$TMP/cc.s" 2>&1 || rs=$?
    [ $rg = $rs ] && diff "$TMP/cc.g" "$TMP/cc.s" >&2 || fail "config --check (${env:-no variables}): exit $rg vs $rs"
done

for cmd in /bin/true "$STATIC"; do
    rg=0; rs=0
    "$GLIBC" doctor "$cmd" >"$TMP/dr.g" 2>&1 || rg=$?
    "$STATIC" doctor "$cmd" >"$TMP/dr.s" 2>&1 || rs=$?
    [ $rg = $rs ] && diff "$TMP/dr.g" "$TMP/dr.s" >&2 || fail "doctor $cmd: exit $rg vs $rs"
done
grep -q "this system has glibc $(getconf GNU_LIBC_VERSION | cut -d' ' -f2)" "$TMP/dr.s" ||
    fail "doctor (static CLI) does not name this system's glibc: $(cat "$TMP/dr.s")"
grep -q "statically linked" "$TMP/dr.s" || fail "doctor does not call the static CLI static: $(cat "$TMP/dr.s")"
pass "glibc process $G: ls --json, stats --json, stats, metrics (promtool), config PID, config --check, doctor: the same from both CLIs"

# ---- serve on localhost:PORT (musl reads /etc/hosts, then DNS) ----------------------
port=$(free_port)
"$STATIC" serve --listen "localhost:$port" 2>"$TMP/serve.err" &
S=$!; CHILDREN+=($S)
wait_port "$port" 10 || { cat "$TMP/serve.err" >&2; fail "serve --listen localhost:$port did not come up"; }
curl -sf "http://127.0.0.1:$port/metrics" >"$TMP/m.http" || fail "GET /metrics failed"
promtool check metrics <"$TMP/m.http" >"$TMP/prom" 2>&1 || { cat "$TMP/prom" >&2; fail "promtool rejects serve's /metrics"; }
grep -q "pid=\"$G\"" "$TMP/m.http" || fail "serve's /metrics lack pid $G"
kill "$S"; wait "$S" 2>/dev/null || true
pass "serve --listen localhost:$port: /metrics passes promtool"

# ---- a musl process under build/musl/libreshim.so, when that is built ---------------
MUSL_SHIM="$ROOT/build/musl/libreshim.so"
if [ ! -f "$MUSL_SHIM" ]; then
    echo "  note: $MUSL_SHIM is not built (the musl library): reading a musl process is skipped"
elif [ ! -e /lib/ld-musl-x86_64.so.1 ] && ! ls /lib/ld-musl-*.so.1 >/dev/null 2>&1; then
    echo "  note: no musl dynamic loader (/lib/ld-musl-*.so.1): reading a musl process is skipped"
else
    cat >"$TMP/musl_prog.c" <<'EOF'
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
int main(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(1)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 3; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
    }
    (void)!write(1, "done\n", 5);
    sleep(200);
    return 0;
}
EOF
    musl-gcc -O1 -o "$TMP/musl_prog" "$TMP/musl_prog.c" || fail "musl-gcc could not build a dynamic musl program"
    RESHIM_RETRIES=1 LD_PRELOAD="$MUSL_SHIM" "$TMP/musl_prog" >"$TMP/m.out" &
    M=$!; CHILDREN+=($M)
    wait_until 10 test -S "$RESHIM_RUN_DIR/$M.sock" || true
    [ -S "$RESHIM_RUN_DIR/$M.sock" ] || fail "no stats socket for the musl process $M"
    wait_line "$TMP/m.out" '^done' || fail "the musl process $M: its connects did not end"
    "$STATIC" stats "$M" --json >"$TMP/ms.s" || fail "static CLI: stats $M exited $?"
    "$GLIBC" stats "$M" --json >"$TMP/ms.g" || fail "glibc CLI: stats $M exited $?"
    same_keys "stats --json (musl process)" "$TMP/ms.g" "$TMP/ms.s"
    [ "$(stable "$TMP/ms.g")" = "$(stable "$TMP/ms.s")" ] || fail "stats --json (musl process) differs"
    "$STATIC" metrics "$M" | promtool check metrics >"$TMP/prom" 2>&1 || { cat "$TMP/prom" >&2; fail "promtool: metrics $M"; }
    pass "musl process $M under $MUSL_SHIM: stats --json the same from both CLIs; metrics pass promtool"
fi

# ---- the CLI tests again, with the static CLI -------------------------------------
STATIC_TESTS=$(sized "test_cli_doctor test_collect" "test_cli test_cli_doctor test_serve test_collect")
for t in $STATIC_TESTS; do
    rc=0; RESHIM_CLI="$STATIC" bash "$ROOT/tests/integration/$t.sh" >"$TMP/$t.out" 2>&1 || rc=$?
    case $rc in
    0) ;;
    77) echo "  note: $t with the static CLI skipped: $(tail -n 1 "$TMP/$t.out")" ;;
    *) tail -n 30 "$TMP/$t.out" >&2; fail "$t with RESHIM_CLI=$STATIC: exit $rc" ;;
    esac
done
pass "$(echo $STATIC_TESTS | sed 's/ /, /g') pass with the static CLI"
