#!/usr/bin/env bash
# scripts/reshim-run, the POSIX sh entrypoint wrapper, under dash and busybox
# sh with a minimal environment: the program runs with the shim in the
# wrapper's own PID (exec) and gets SIGTERM directly; LD_PRELOAD keeps what
# was there and gets the shim once, even nested; options become RESHIM_
# variables; static, setuid, "musl" and missing programs, and a missing
# library, get a warning and run as they would without the wrapper; usage
# errors exit 2. Also: shellcheck on the wrapper, the man pages render
# without warnings.
source "$(dirname "$0")/lib.sh"

RUN="$ROOT/scripts/reshim-run"
[ -f "$SHIM" ] || fail "build/libreshim.so missing: run make"

# ---- static checks ---------------------------------------------------------
if command -v shellcheck >/dev/null; then
    out=$(shellcheck "$RUN" 2>&1) || fail "shellcheck scripts/reshim-run: $out"
    pass "shellcheck scripts/reshim-run: no warnings"
else
    pass "shellcheck not installed: skipped"
fi

# The version: the in-tree copy reads the sibling build's build/VERSION;
# build/reshim-run (installed by make install) has it written in by make.
[ "$(dash "$RUN" --version)" = "reshim-run $VERSION" ] ||
    fail "--version says '$(dash "$RUN" --version)', the Makefile says $VERSION"
[ "$(dash "$ROOT/build/reshim-run" --version)" = "reshim-run $VERSION" ] ||
    fail "build/reshim-run --version says '$(dash "$ROOT/build/reshim-run" --version)'"
if grep -q '@VERSION@' "$ROOT/build/reshim-run" "$ROOT"/build/man/*; then
    fail "a placeholder left in build/reshim-run or build/man/"
fi
mkdir -p "$TMP/unbuilt/scripts" && cp "$RUN" "$TMP/unbuilt/scripts/"
[ "$(dash "$TMP/unbuilt/scripts/reshim-run" --version)" = "reshim-run dev" ] ||
    fail "an in-tree copy with no build says '$(dash "$TMP/unbuilt/scripts/reshim-run" --version)', want dev"
pass "--version: the Makefile's ($VERSION) in-tree and in build/reshim-run; dev with no build"

# ---- helpers built in $TMP ----------------------------------------------------
cat > "$TMP/empty.c" <<'EOF'
int reshim_test_empty_preload;
EOF
cc -shared -fPIC -o "$TMP/libempty.so" "$TMP/empty.c" || fail "cannot build an empty .so"
# A program that prints its LD_PRELOAD (C, so it can be built static too).
cat > "$TMP/show.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
int main(void)
{
    const char *p = getenv("LD_PRELOAD");
    printf("LD_PRELOAD=%s\n", p ? p : "(unset)");
    return 0;
}
EOF
cc -o "$TMP/show" "$TMP/show.c" || fail "cannot build show"
static=
if [ -f /usr/lib/x86_64-linux-gnu/libc.a ] || [ -f /usr/lib/libc.a ]; then
    cc -static -o "$TMP/show-static" "$TMP/show.c" && static="$TMP/show-static"
fi
# A glibc program whose program interpreter is named like musl's (a symlink to
# glibc's loader, so it runs): the wrapper must leave LD_PRELOAD alone.
ldso=$("$PY" -c 'import sys; d=open(sys.argv[1],"rb").read(); i=d.index(b"/lib"); print(d[i:d.index(b"\0",i)].decode())' "$TMP/show")
ln -s "$ldso" "$TMP/ld-musl-x86_64.so.1"
cc -Wl,--dynamic-linker="$TMP/ld-musl-x86_64.so.1" -o "$TMP/show-musl" "$TMP/show.c" ||
    fail "cannot build show-musl"

# A "#!/usr/bin/env python3" script printing its pid, whether the shim is
# mapped, and the environment variables asked for.
cat > "$TMP/probe.py" <<'EOF'
#!/usr/bin/env python3
import os, sys
maps = open('/proc/self/maps').read()
print('pid', os.getpid())
print('shim', 'libreshim.so' in maps)
print('euid', os.geteuid())
for k in sys.argv[1:]:
    print('%s=%s' % (k, os.environ.get(k, '(unset)')))
EOF
chmod +x "$TMP/probe.py"

# busybox applets only (od, readlink, ls) for the busybox run.
shells=(dash)
if command -v busybox >/dev/null; then
    mkdir -p "$TMP/bb"
    for a in od readlink ls; do ln -s "$(command -v busybox)" "$TMP/bb/$a"; done
    shells+=("busybox sh")
else
    pass "busybox not installed: the busybox sh runs are skipped"
fi

field() { sed -n "s/^$1[ =]//p" "$2" | head -n 1; }

for sh in "${shells[@]}"; do
    read -r -a SH <<<"$sh"
    if [ "$sh" = dash ]; then path=/usr/bin:/bin; else path=$TMP/bb:/usr/bin:/bin; fi
    # w ARGS...: the wrapper under this shell with a minimal environment.
    w() { env -i PATH="$path" "${SH[@]}" "$RUN" "$@"; }

    # -- exec: same pid, shim mapped
    env -i PATH="$path" "${SH[@]}" -c 'echo outer $$; exec "$@"' sh "${SH[@]}" "$RUN" -- "$PY" "$TMP/probe.py" LD_PRELOAD \
        >"$TMP/out" 2>"$TMP/err" || fail "[$sh] wrapper failed: $(cat "$TMP/err")"
    [ -s "$TMP/err" ] && fail "[$sh] not quiet by default: $(cat "$TMP/err")"
    [ "$(field outer "$TMP/out")" = "$(field pid "$TMP/out")" ] ||
        fail "[$sh] the program's pid differs from the wrapper's: $(cat "$TMP/out")"
    [ "$(field shim "$TMP/out")" = True ] || fail "[$sh] libreshim.so not mapped: $(cat "$TMP/out")"
    [ "$(field LD_PRELOAD "$TMP/out")" = "$SHIM" ] ||
        fail "[$sh] LD_PRELOAD is '$(field LD_PRELOAD "$TMP/out")', want the absolute $SHIM"
    pass "[$sh] the program runs in the wrapper's pid, libreshim.so mapped, LD_PRELOAD=$SHIM"

    # -- an existing LD_PRELOAD is kept; the shim goes in front, once, even nested
    env -i PATH="$path" LD_PRELOAD="$TMP/libempty.so" "${SH[@]}" "$RUN" -- "${SH[@]}" "$RUN" -- \
        "$PY" "$TMP/probe.py" LD_PRELOAD >"$TMP/out" 2>"$TMP/err" || fail "[$sh] nested run failed"
    [ "$(field LD_PRELOAD "$TMP/out")" = "$SHIM:$TMP/libempty.so" ] ||
        fail "[$sh] LD_PRELOAD after two nested wrappers: '$(field LD_PRELOAD "$TMP/out")'"
    [ "$(field shim "$TMP/out")" = True ] || fail "[$sh] shim not mapped with another preload"
    pass "[$sh] LD_PRELOAD=libempty.so kept: $SHIM:…/libempty.so, no duplicate when nested"
    env -i PATH="$path" LD_PRELOAD="$SHIM" "${SH[@]}" "$RUN" "$TMP/show" >"$TMP/out" ||
        fail "[$sh] run with the shim already preloaded failed"
    [ "$(cat "$TMP/out")" = "LD_PRELOAD=$SHIM" ] || fail "[$sh] shim added twice: $(cat "$TMP/out")"
    pass "[$sh] a LD_PRELOAD that already has the shim is left as it is"

    # -- options become RESHIM_ variables
    (cd "$TMP" && w --log info --retries 2 --budget=300M --policy enforce --deadline 2s \
        --dest '127.0.0.1:80,!10.0.0.0/8' --run-dir run --push /tmp/x.sock -- \
        "$PY" "$TMP/probe.py" RESHIM_LOG RESHIM_RETRIES RESHIM_MEM_BUDGET RESHIM_MEM_POLICY \
        RESHIM_RETRY_DEADLINE RESHIM_DEST RESHIM_RUN_DIR RESHIM_PUSH) >"$TMP/out" 2>"$TMP/err" ||
        fail "[$sh] run with options failed: $(cat "$TMP/err")"
    for kv in RESHIM_LOG=info RESHIM_RETRIES=2 RESHIM_MEM_BUDGET=300M RESHIM_MEM_POLICY=enforce \
        RESHIM_RETRY_DEADLINE=2s 'RESHIM_DEST=127.0.0.1:80,!10.0.0.0/8' \
        "RESHIM_RUN_DIR=$TMP/run" RESHIM_PUSH=/tmp/x.sock; do
        grep -qxF "$kv" "$TMP/out" || fail "[$sh] $kv not passed: $(cat "$TMP/out")"
    done
    grep -q "reshim\[$(field pid "$TMP/out")\]: info: exit summary" "$TMP/err" ||
        fail "[$sh] --log info gave no exit summary: $(cat "$TMP/err")"
    pass "[$sh] the 8 options become RESHIM_ variables (--log info: the exit summary; --run-dir made absolute)"

    # -- a static program: a warning, and it runs
    if [ -n "$static" ]; then
        w "$static" >"$TMP/out" 2>"$TMP/err" || fail "[$sh] static program failed"
        grep -q "warn: .*statically linked" "$TMP/err" || fail "[$sh] no warning for a static program: $(cat "$TMP/err")"
        grep -q "^LD_PRELOAD=" "$TMP/out" || fail "[$sh] the static program did not run"
        env -i PATH="$path" RESHIM_RUN_QUIET=1 "${SH[@]}" "$RUN" "$static" >/dev/null 2>"$TMP/err" ||
            fail "[$sh] quiet static run failed"
        [ -s "$TMP/err" ] && fail "[$sh] RESHIM_RUN_QUIET=1 still warns: $(cat "$TMP/err")"
        pass "[$sh] static program: warned ('statically linked'), runs, exit 0; RESHIM_RUN_QUIET=1 silences it"
        # Without od the checks are skipped: no warning, the library is set as usual.
        mkdir -p "$TMP/no-od"
        env -i PATH="$TMP/no-od" "$(command -v "${SH[0]}")" "${SH[@]:1}" "$RUN" "$static" >"$TMP/out" 2>"$TMP/err" ||
            fail "[$sh] run without od failed: $(cat "$TMP/err")"
        [ ! -s "$TMP/err" ] && [ "$(cat "$TMP/out")" = "LD_PRELOAD=$SHIM" ] ||
            fail "[$sh] without od: $(cat "$TMP/out" "$TMP/err")"
        pass "[$sh] no od in PATH: the checks are skipped, the library is preloaded, nothing printed"
    else
        pass "[$sh] no libc.a: the static case is skipped"
    fi

    # -- a program whose interpreter is musl's, and only a glibc build (a copy
    # alone in a directory): warned, LD_PRELOAD untouched
    mkdir -p "$TMP/lone" && cp "$SHIM" "$TMP/lone/libreshim.so"
    env -i PATH="$path" RESHIM_LIBRARY="$TMP/lone/libreshim.so" "${SH[@]}" "$RUN" "$TMP/show-musl" \
        >"$TMP/out" 2>"$TMP/err" || fail "[$sh] musl-named program failed: $(cat "$TMP/err")"
    grep -q "warn: .*musl.*built for glibc" "$TMP/err" || fail "[$sh] no musl warning: $(cat "$TMP/err")"
    [ "$(cat "$TMP/out")" = "LD_PRELOAD=(unset)" ] || fail "[$sh] musl program got $(cat "$TMP/out")"
    pass "[$sh] interpreter ld-musl, no musl build: a warning, run without the shim (a glibc shim would stop it)"
    # (with the musl build beside the glibc one, a real musl program gets it:
    # test_musl.sh)

    # -- setuid to another user (root only): warned; the loader really ignores it
    if [ "$(id -u)" = 0 ]; then
        cp "$(readlink -f "$PY")" "$TMP/py-suid"
        chown nobody "$TMP/py-suid" && chmod u+s "$TMP/py-suid"
        # (-c: the euid nobody cannot read $TMP, which is 0700)
        w "$TMP/py-suid" -c "$(cat "$TMP/probe.py")" >"$TMP/out" 2>"$TMP/err" ||
            fail "[$sh] setuid program failed: $(cat "$TMP/err")"
        grep -q "warn: .*setuid/setgid" "$TMP/err" || fail "[$sh] no setuid warning: $(cat "$TMP/err")"
        if [ "$(field euid "$TMP/out")" != 0 ]; then
            [ "$(field shim "$TMP/out")" = False ] || fail "[$sh] shim loaded in a secure-execution program?"
            pass "[$sh] setuid-nobody program: warned, runs (euid $(field euid "$TMP/out")), the loader indeed skipped the shim"
        else
            pass "[$sh] setuid-nobody program: warned, runs (the file system ignores setuid here)"
        fi
    else
        pass "[$sh] not root: the setuid case is skipped"
    fi

    # -- the library missing: warned, the program still runs
    env -i PATH="$path" RESHIM_LIBRARY=/nonexistent/libreshim.so "${SH[@]}" "$RUN" -- "$PY" "$TMP/probe.py" \
        >"$TMP/out" 2>"$TMP/err" || fail "[$sh] missing library: program did not run"
    grep -q "warn: .*RESHIM_LIBRARY=/nonexistent" "$TMP/err" || fail "[$sh] no warning for a missing library"
    [ "$(field shim "$TMP/out")" = False ] || fail "[$sh] shim mapped without a library?"
    pass "[$sh] RESHIM_LIBRARY=/nonexistent: warned, program runs without the shim"

    # -- installed layout, reached through a symlink elsewhere
    mkdir -p "$TMP/pfx/bin" "$TMP/pfx/lib/reshim" "$TMP/elsewhere"
    cp "$RUN" "$TMP/pfx/bin/reshim-run"
    cp "$SHIM" "$TMP/pfx/lib/reshim/libreshim.so"
    ln -sf "../pfx/bin/reshim-run" "$TMP/elsewhere/rr"
    (cd "$TMP/elsewhere" && env -i PATH="$path" "${SH[@]}" ./rr "$TMP/show") >"$TMP/out" ||
        fail "[$sh] installed layout failed"
    [ "$(cat "$TMP/out")" = "LD_PRELOAD=$TMP/pfx/lib/reshim/libreshim.so" ] ||
        fail "[$sh] installed layout via a symlink: $(cat "$TMP/out")"
    pass "[$sh] \$PREFIX/bin/reshim-run (through a relative symlink) finds \$PREFIX/lib/reshim/libreshim.so"

    # -- usage errors and not found
    set +e
    w --bogus -- true 2>"$TMP/err"; rc=$?
    [ $rc = 2 ] || fail "[$sh] unknown option: exit $rc, want 2"
    grep -q "unknown option --bogus" "$TMP/err" || fail "[$sh] unknown option not named"
    w 2>/dev/null; rc=$?
    [ $rc = 2 ] || fail "[$sh] no command: exit $rc, want 2"
    w --retries 2>/dev/null; rc=$?
    [ $rc = 2 ] || fail "[$sh] option without value: exit $rc, want 2"
    w --help >"$TMP/out" 2>&1; rc=$?
    if [ $rc != 0 ] || ! grep -q "^usage: reshim-run" "$TMP/out"; then fail "[$sh] --help: exit $rc"; fi
    w -- no-such-command-xyz 2>"$TMP/err"; rc=$?
    [ $rc = 127 ] || fail "[$sh] missing command: exit $rc, want 127"
    grep -q "warn: no-such-command-xyz: command not found" "$TMP/err" || fail "[$sh] no not-found warning"
    set -e
    pass "[$sh] unknown option, no command, missing value: exit 2; --help: 0; command not found: 127"

    # -- SIGTERM goes straight to the program
    cat > "$TMP/term.py" <<'EOF'
import os, signal, sys, time
def on_term(sig, frame):
    print('got SIGTERM in', os.getpid(), flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
open(sys.argv[1], 'w').write(str(os.getpid()))
time.sleep(30)
print('no signal', flush=True)
EOF
    rm -f "$TMP/ready"
    env -i PATH="$path" "${SH[@]}" "$RUN" -- "$PY" "$TMP/term.py" "$TMP/ready" >"$TMP/out" 2>&1 &
    wpid=$!
    CHILDREN+=("$wpid")
    wait_until 5 test -s "$TMP/ready" || true
    [ -s "$TMP/ready" ] || fail "[$sh] the SIGTERM program did not start"
    [ "$(cat "$TMP/ready")" = "$wpid" ] || fail "[$sh] program pid $(cat "$TMP/ready") != wrapper pid $wpid"
    comm=$(cat "/proc/$wpid/comm")
    kill -TERM "$wpid"
    wait "$wpid" || fail "[$sh] the program did not exit 0 on SIGTERM: $(cat "$TMP/out")"
    grep -q "got SIGTERM in $wpid" "$TMP/out" || fail "[$sh] the program did not get SIGTERM: $(cat "$TMP/out")"
    pass "[$sh] kill -TERM of the wrapper's pid ($comm, not a shell) reaches the program's handler"
done

# ---- man pages -----------------------------------------------------------------
pages=("$ROOT"/build/man/reshim.1 "$ROOT"/build/man/reshim-run.1 "$ROOT"/build/man/libreshim.7)
for p in "${pages[@]}"; do [ -f "$p" ] || fail "missing man page ${p#"$ROOT"/}"; done
if command -v groff >/dev/null; then
    for p in "${pages[@]}"; do
        out=$(groff -man -Tutf8 -ww -z "$p" 2>&1) || fail "groff failed on ${p##*/}: $out"
        [ -z "$out" ] || fail "groff warns on ${p##*/}: $out"
    done
    pass "groff -man -ww: no warnings on reshim(1), reshim-run(1), libreshim(7)"
else
    pass "groff not installed: the roff check is skipped"
fi
if command -v man >/dev/null; then
    for p in "${pages[@]}"; do
        out=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null) || fail "man -l failed on ${p##*/}: $out"
        [ -z "$out" ] || fail "man --warnings on ${p##*/}: $out"
        lines=$(MANWIDTH=80 man -l "$p" 2>/dev/null | wc -l)
        [ "$lines" -gt 40 ] || fail "${p##*/} renders to only $lines lines"
    done
    pass "man --warnings -l: all three render at 80 columns without warnings"
else
    pass "man not installed: the man -l check is skipped"
fi
