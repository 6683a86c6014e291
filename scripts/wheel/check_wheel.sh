#!/usr/bin/env bash
# check_wheel.sh (make check-wheel): the wheel, installed with pip --no-index
# into a fresh venv (/usr/bin/python3 -m venv), against a backend that starts
# listening 1.5 s late (tests/integration/peers/late_http.py). A python3
# urllib client fails without the shim, and is rescued through the venv's
# reshim-run, through `python -m reshim run`, and through reshim.activate() as
# its first line (the same pid before and after the re-exec, the library in
# /proc/self/maps, `reshim stats PID --json` from the venv's reshim). The
# guard: activate() twice re-executes once; a re-exec after which the library
# is still not loaded warns and does not loop; RESHIM_DISABLE=1 warns and does
# not re-execute; so do (faked where this machine cannot show them) not
# Linux, not glibc, an old glibc, no sys.orig_argv, an empty sys.executable, a
# setuid interpreter, a forked worker, the library missing, a program read
# from stdin. Exit 0 pass, 77 skip (reason on stderr), else failure.
source "$(dirname "$0")/../../tests/integration/lib.sh"

WHEEL=${WHEEL:-$(ls "$ROOT"/build/reshim-*.whl 2>/dev/null | tail -n 1)}
[ -f "$WHEEL" ] || fail "no wheel (make wheel)"
"$PY" -c 'import venv, ensurepip' 2>/dev/null || skip "python3-venv not installed (make deps)"

# ---- install ---------------------------------------------------------------
VENV=$TMP/venv
"$PY" -m venv "$VENV" >"$TMP/venv.log" 2>&1 || { cat "$TMP/venv.log"; fail "python3 -m venv"; }
"$VENV/bin/pip" install -q --no-index --disable-pip-version-check "$WHEEL" >"$TMP/pip.log" 2>&1 ||
    { sed 's/^/    | /' "$TMP/pip.log"; fail "pip install --no-index ${WHEEL##*/}"; }
VPY=$VENV/bin/python
SITE=$("$VPY" -c 'import reshim, os; print(os.path.dirname(reshim.__file__))')
[ "$SITE" != "${SITE#"$VENV"/}" ] || fail "reshim imported from $SITE, not from the venv"
for f in reshim reshim-run; do [ -x "$VENV/bin/$f" ] || fail "no console script $VENV/bin/$f"; done
for f in reshim reshim-run libreshim.so; do [ -x "$SITE/_bin/$f" ] || fail "$SITE/_bin/$f: missing or not executable"; done
"$VENV/bin/reshim" --version >/dev/null || fail "the venv's reshim --version"
"$VENV/bin/reshim-run" --version >/dev/null || fail "the venv's reshim-run --version"
LIB=$SITE/_bin/libreshim.so
pass "pip install --no-index ${WHEEL##*/}: reshim and reshim-run on the venv's PATH, the library at $LIB"

# Preloaded programs must find the venv's library, not the source tree's.
unset LD_PRELOAD RESHIM_LIBRARY RESHIM_DISABLE RESHIM_ACTIVATED
export RESHIM_RUN_DIR=$TMP/run
mkdir -m 700 "$RESHIM_RUN_DIR"
export PATH=$VENV/bin:$PATH

# client.py PORT MODE: MODE plain (GET, print the body), activate (the same,
# reshim.activate() first, printing the pid before and after it, whether
# libreshim.so is mapped, and the stats of this pid from the venv's reshim),
# twice (activate() twice, no GET), only (activate() once, no GET).
cat >"$TMP/client.py" <<'EOF'
import os, sys
port, mode = sys.argv[1], sys.argv[2]
if mode != "plain":
    print("before", os.getpid(), flush=True)
    import reshim
    ok = reshim.activate()
    if mode == "twice":
        ok = reshim.activate() and ok
    maps = open("/proc/self/maps").read()
    print("after", os.getpid(), ok, "mapped" if reshim.library() in maps else "unmapped", flush=True)
    if mode in ("twice", "only"):
        sys.exit(0)
import json, subprocess, urllib.request
print("body", urllib.request.urlopen("http://127.0.0.1:%s/" % port).read().decode(), flush=True)
if mode == "activate":
    r = subprocess.run(["reshim", "stats", str(os.getpid()), "--json"], capture_output=True, text=True)
    c = json.loads(r.stdout)["net"]["connect"]
    print("stats", c["retries"], c["recovered"], flush=True)
EOF

DELAY=1.5
server_pid=
launch_late() {
    spawn "$PY" "$PEERS/late_http.py" "$1" "$DELAY" "$(date +%s.%N)" "late $1" >"$TMP/server.$1" 2>&1
    server_pid=$!
}
stop_server() { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }

# run_late CMD...: CMD (@PORT@ in its arguments becomes the port) against a
# fresh late server; sets rc, ms and port; stdout in $TMP/out, stderr in $TMP/err.
run_late() {
    port=$(free_port)
    launch_late "$port"
    local t0; t0=$(date +%s%N)
    rc=0; "${@//@PORT@/$port}" >"$TMP/out" 2>"$TMP/err" || rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    stop_server
}
rescued() { # NAME
    [ $rc -eq 0 ] || { sed 's/^/    | /' "$TMP/err"; fail "$1: rc $rc after ${ms} ms"; }
    grep -qx "body late $port" "$TMP/out" || fail "$1: wrong output: $(cat "$TMP/out")"
    grep -q "connect to 127.0.0.1:$port recovered after" "$TMP/err" ||
        { sed 's/^/    | /' "$TMP/err"; fail "$1: no 'recovered' log line"; }
}

# ---- without the shim: refused ---------------------------------------------
run_late "$VPY" "$TMP/client.py" @PORT@ plain
[ $rc -ne 0 ] || fail "the client succeeded without the shim (after ${ms} ms)"
grep -q "Connection refused" "$TMP/err" || fail "without the shim: $(tail -n 1 "$TMP/err")"
pass "without the shim: refused after ${ms} ms (rc $rc)"

# ---- reshim-run (the venv's console script) ---------------------------------
RESHIM_LOG=info run_late reshim-run -- "$VPY" "$TMP/client.py" @PORT@ plain
rescued "reshim-run"
pass "venv's reshim-run -- python client.py: the body after ${ms} ms, connect recovered"

# ---- python -m reshim run ----------------------------------------------------
RESHIM_LOG=info run_late "$VPY" -m reshim run -- "$VPY" "$TMP/client.py" @PORT@ plain
rescued "python -m reshim run"
pass "python -m reshim run -- python client.py: the body after ${ms} ms, connect recovered"

# ---- reshim.activate() as the first line --------------------------------------
RESHIM_LOG=info run_late "$VPY" "$TMP/client.py" @PORT@ activate
rescued "activate()"
mapfile -t before < <(sed -n 's/^before \([0-9]*\)$/\1/p' "$TMP/out")
after=$(sed -n 's/^after //p' "$TMP/out")
[ ${#before[@]} -eq 2 ] || fail "activate(): ${#before[@]} runs before activate(), expected 2 (one re-exec): $(cat "$TMP/out")"
[ "${before[0]}" = "${before[1]}" ] && [ "$after" = "${before[0]} True mapped" ] ||
    fail "activate(): pids before ${before[*]}, after: $after (expected one pid, True, mapped)"
read -r _ retries recovered < <(grep '^stats ' "$TMP/out") || fail "activate(): no stats: $(cat "$TMP/err")"
[ "$recovered" = 1 ] && [ "$retries" -ge 1 ] || fail "activate(): reshim stats: retries=$retries recovered=$recovered"
! grep -q "warn: activate" "$TMP/err" || fail "activate(): a warning: $(grep 'warn: activate' "$TMP/err")"
pass "reshim.activate(): re-executed once as pid ${before[0]} (same pid), libreshim.so mapped, the body after ${ms} ms; reshim stats ${before[0]} --json: connect retries=$retries recovered=$recovered"

# ---- the guard ---------------------------------------------------------------
# activate() twice: one re-exec, the second call sees the library mapped.
"$VPY" "$TMP/client.py" 0 twice >"$TMP/out" 2>"$TMP/err" || fail "activate() twice: $(cat "$TMP/err")"
[ "$(grep -c '^before' "$TMP/out")" = 2 ] && grep -q '^after [0-9]* True mapped$' "$TMP/out" ||
    fail "activate() twice: $(cat "$TMP/out" "$TMP/err")"
pass "activate() twice: one re-exec, True"

# A re-exec after which the library is still not loaded (RESHIM_LIBRARY: a
# library that loads but is not reshim): a warning, False, no second re-exec.
mkdir "$TMP/fake"
libm=$("$PY" -c 'print([l.split()[-1] for l in open("/proc/self/maps") if "/libm.so" in l][0])') ||
    fail "cannot find the interpreter's libm"
cp "$libm" "$TMP/fake/libnotreshim.so"
rc=0; RESHIM_LIBRARY=$TMP/fake/libnotreshim.so timeout 10 "$VPY" "$TMP/client.py" 0 only >"$TMP/out" 2>"$TMP/err" || rc=$?
[ $rc -eq 0 ] || fail "the guard: rc $rc (a loop killed by timeout is 124): $(head -c 600 "$TMP/out")"
[ "$(grep -c '^before' "$TMP/out")" = 2 ] && grep -q '^after [0-9]* False unmapped$' "$TMP/out" ||
    fail "the guard: $(cat "$TMP/out")"
[ "$(grep -c '^reshim: warn: activate(): re-executed with .* but it is not loaded' "$TMP/err")" = 1 ] ||
    fail "the guard: no (or more than one) warning: $(cat "$TMP/err")"
pass "the guard: a re-exec that did not load the library: one re-exec, False, one warning"

# RESHIM_DISABLE=1: a warning, False, no re-exec.
RESHIM_DISABLE=1 "$VPY" "$TMP/client.py" 0 only >"$TMP/out" 2>"$TMP/err" || fail "RESHIM_DISABLE=1: $(cat "$TMP/err")"
[ "$(grep -c '^before' "$TMP/out")" = 1 ] && grep -q '^after [0-9]* False unmapped$' "$TMP/out" ||
    fail "RESHIM_DISABLE=1: $(cat "$TMP/out")"
grep -q '^reshim: warn: activate(): RESHIM_DISABLE=1: not activated' "$TMP/err" ||
    fail "RESHIM_DISABLE=1: no warning: $(cat "$TMP/err")"
[ "$(wc -l <"$TMP/err")" = 1 ] || fail "RESHIM_DISABLE=1: more than the one line of warning: $(cat "$TMP/err")"
pass "RESHIM_DISABLE=1: no re-exec, False, one line on stderr: $(cat "$TMP/err")"

# Where a re-exec cannot work: one line on stderr, False, no re-exec (each
# case faked in the interpreter where this machine cannot show it).
cases=(
    "not Linux|import sys; sys.platform = 'darwin'"
    "not glibc|import os; os.confstr = lambda name: None"
    "old glibc|import os; os.confstr = lambda name: 'glibc 2.16'"
    "no sys.orig_argv|import sys; del sys.orig_argv"
    "embedded (sys.executable empty)|import sys; sys.executable = ''"
    "setuid interpreter|import os; os.geteuid = lambda: os.getuid() + 1"
    "a forked worker|import os, sys; pid = os.fork(); pid and sys.exit(os.waitpid(pid, 0)[1] >> 8)"
)
for c in "${cases[@]}"; do
    name=${c%%|*}
    rc=0; "$VPY" -c "${c#*|}
import reshim; print('before'); print(reshim.activate())" >"$TMP/out" 2>"$TMP/err" || rc=$?
    [ $rc -eq 0 ] && [ "$(tr '\n' ' ' <"$TMP/out")" = "before False " ] && [ "$(wc -l <"$TMP/err")" = 1 ] &&
        grep -q '^reshim: warn: activate(): .*running without reshim$' "$TMP/err" ||
        fail "$name: rc $rc, stdout: $(cat "$TMP/out"), stderr: $(cat "$TMP/err")"
    pass "$name: False, no re-exec: $(cut -c 27-110 "$TMP/err")..."
done
rc=0; RESHIM_LIBRARY=$TMP/none.so "$VPY" -c 'import reshim; print(reshim.activate())' >"$TMP/out" 2>"$TMP/err" || rc=$?
[ $rc -eq 0 ] && [ "$(cat "$TMP/out")" = False ] && grep -q "none.so: no such readable file" "$TMP/err" ||
    fail "library missing: rc $rc: $(cat "$TMP/out" "$TMP/err")"
pass "the library missing: False, no re-exec: $(cut -c 27-110 "$TMP/err")..."
rc=0; echo 'import reshim; print(reshim.activate())' | "$VPY" - >"$TMP/out" 2>"$TMP/err" || rc=$?
[ $rc -eq 0 ] && [ "$(cat "$TMP/out")" = False ] && grep -q "read from stdin" "$TMP/err" ||
    fail "a program from stdin: rc $rc: $(cat "$TMP/out" "$TMP/err")"
pass "a program from stdin: False, no re-exec"
