#!/usr/bin/env bash
# `reshim doctor [CMD]`: the verdict and the exit code for the kinds of
# program the shim can and cannot be preloaded into, each made here: a
# dynamic glibc program (can), a static one and a static-pie (cannot), a
# setuid copy and one with file capabilities (can for root, who runs them
# without secure-execution; cannot for another user: shown to be true by
# running them as nobody with LD_PRELOAD and reading /proc/self/maps), a
# Go-like binary (a .note.go.buildid section; a Go build-ID note in another
# section), a musl one (linked with --dynamic-linker=/lib/ld-musl-...), a
# 32-bit one and big-endian ones (headers made by hand), truncated and
# garbage files (a clear message, exit 1, no crash; once under valgrind),
# #! scripts (followed to their interpreter, through env too), a missing
# command and a file that is not executable (exit 1: a verdict, not a usage
# error), and `doctor` alone (ok; exit 2 with a bad RESHIM_RETRIES).
source "$(dirname "$0")/lib.sh"

RESHIM="${RESHIM_CLI:-$ROOT/build/reshim}"   # RESHIM_CLI: test another build (test_cli_static.sh)
[ -x "$RESHIM" ] || fail "$RESHIM is missing (make all)"
[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
unset LD_PRELOAD
for v in $(env | sed -n 's/^\(RESHIM_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export NO_COLOR=1

# doctor_is EXPECTED_RC PATTERN CMD...: runs doctor on CMD, checks the exit
# code and that the output matches PATTERN (grep -E); leaves it in $TMP/out.
doctor_is() {
    local want=$1 pat=$2 rc=0; shift 2
    "$RESHIM" doctor "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
    if [ "$rc" != "$want" ] || ! grep -Eq -- "$pat" "$TMP/out"; then
        sed 's/^/    | /' "$TMP/out" "$TMP/err" >&2
        fail "doctor $*: exit $rc (expected $want), output should match: $pat"
    fi
}
verdict() { tail -n 1 "$TMP/out"; }

# 1. Without CMD: the library, its C library, the configuration.
doctor_is 0 "^ok +library: $SHIM\$"
grep -Eq '^ok +library built for glibc, needs GLIBC_2\.[0-9]+; this system has glibc' "$TMP/out" ||
    fail "doctor does not say which glibc the library needs: $(cat "$TMP/out")"
grep -q '^ok *library loads' "$TMP/out" || fail "doctor did not load the library"
grep -q $'\033' "$TMP/out" && fail "colour codes in output that is not a terminal"
pass "doctor alone: exit 0, $(grep -o 'needs GLIBC_[0-9.]*; this system has glibc [0-9.]*' "$TMP/out"), '$(verdict)'"
RESHIM_RETRIES=abc doctor_is 2 '^fail +configuration: RESHIM_RETRIES="abc": expected'
pass "RESHIM_RETRIES=abc: exit 2, '$(grep RESHIM_RETRIES "$TMP/out" | sed 's/  */ /g')'"
LD_PRELOAD="$SHIM" doctor_is 0 "^ok +LD_PRELOAD=.*: holds the shim"
pass "LD_PRELOAD with the shim is recognised"

# 2. A dynamic glibc program.
doctor_is 0 '^/bin/true can be preloaded$' /bin/true
grep -Eq '^ok +dynamically linked, interpreter /.*ld-linux.*\(glibc\)' "$TMP/out" || fail "no glibc interpreter line for /bin/true"
doctor_is 0 '^true can be preloaded$' true
grep -Eq '^ok +true: /.*/true \(from PATH\)' "$TMP/out" || fail "true was not looked up in PATH"
pass "/bin/true and true (through PATH): can be preloaded, exit 0"

# 3. Static binaries.
printf 'int main(void) { return 0; }\n' >"$TMP/hello.c"
if cc -static -o "$TMP/static" "$TMP/hello.c" 2>/dev/null; then
    doctor_is 1 '^.*/static cannot be preloaded: statically linked' "$TMP/static"
    pass "static binary: '$(verdict | sed "s#$TMP/##")', exit 1"
    if cc -static-pie -o "$TMP/spie" "$TMP/hello.c" 2>/dev/null; then
        doctor_is 1 'cannot be preloaded: statically linked \(static-pie\)' "$TMP/spie"
        pass "static-pie binary: cannot, exit 1"
    fi
else
    echo "  skip: no libc.a (libc6-dev), no static binary to check"
fi

# 4. setuid and file capabilities: root runs them without secure-execution
# (the loader keeps LD_PRELOAD), any other user with it (the loader drops it).
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
shim_in_maps() { grep -c libreshim "$1" || true; }
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    PUB="$TMP/pub"   # nobody must reach it: $TMP itself is 0700
    mkdir "$PUB" && chmod 711 "$TMP" && chmod 755 "$PUB"
    cp /bin/cat "$PUB/suid" && chmod 4755 "$PUB/suid"
    nosuid=$("$PY" -c "import os,sys; print(1 if os.statvfs(sys.argv[1]).f_flag & os.ST_NOSUID else 0)" "$PUB")
    if [ "$nosuid" = 1 ]; then
        doctor_is 0 '^ok +setuid bit ignored: the file system is mounted nosuid' "$PUB/suid"
        pass "setuid copy on a nosuid mount: the bit is ignored, can be preloaded"
    else
        doctor_is 0 '^warn +setuid \(owner uid 0, you\): preloaded only when run by uid 0' "$PUB/suid"
        pass "setuid-root copy, run by root: a warning, can be preloaded, exit 0"
        as_nobody "$RESHIM" doctor "$PUB/suid" >"$TMP/out" 2>&1 && fail "doctor as nobody on a setuid-root binary: exit 0"
        grep -q 'cannot be preloaded: setuid (owner uid 0)' "$TMP/out" || fail "as nobody: $(verdict)"
        # The truth behind both verdicts.
        LD_PRELOAD="$SHIM" RESHIM_DISABLE=1 "$PUB/suid" /proc/self/maps >"$TMP/maps_root"
        as_nobody env LD_PRELOAD="$SHIM" RESHIM_DISABLE=1 "$PUB/suid" /proc/self/maps >"$TMP/maps_nobody" 2>/dev/null || true
        [ "$(shim_in_maps "$TMP/maps_root")" -ge 1 ] || fail "the shim was not loaded into the setuid copy run by root"
        [ "$(shim_in_maps "$TMP/maps_nobody")" = 0 ] || fail "the shim was loaded into a setuid-root program run by nobody"
        pass "setuid-root copy, run by nobody: '$(verdict)', exit 1 (and indeed: the shim is in its maps run by root, not by nobody)"
    fi
    if command -v setcap >/dev/null; then
        cp /bin/cat "$PUB/capped" && chmod 755 "$PUB/capped"
        if setcap cap_net_raw+ep "$PUB/capped" 2>/dev/null; then
            doctor_is 0 '^warn +file capabilities cap_net_raw=ep: preloaded when root runs it' "$PUB/capped"
            as_nobody "$RESHIM" doctor "$PUB/capped" >"$TMP/out" 2>&1 && fail "doctor as nobody on a binary with file capabilities: exit 0"
            grep -q 'cannot be preloaded: file capabilities (cap_net_raw=ep)' "$TMP/out" || fail "as nobody: $(verdict)"
            as_nobody env LD_PRELOAD="$SHIM" RESHIM_DISABLE=1 "$PUB/capped" /proc/self/maps >"$TMP/maps_nobody" 2>/dev/null || true
            [ "$(shim_in_maps "$TMP/maps_nobody")" = 0 ] || fail "the shim was loaded into a program with file capabilities run by nobody"
            pass "file capabilities: root gets a warning (exit 0); nobody '$(verdict | sed "s#$PUB/##")' (exit 1; not in its maps indeed)"
        else
            echo "  skip: setcap failed here (no xattr support?), no file-capabilities case"
        fi
    else
        echo "  skip: no setcap (libcap2-bin), no file-capabilities case"
    fi
else
    echo "  skip: not root or no setpriv: no setuid and file-capabilities cases"
fi

# 5. Go: a .note.go.buildid section, or Go's build-ID note in a section of another name.
cc -o "$TMP/dyn" "$TMP/hello.c"
"$PY" -c 'import struct,sys; sys.stdout.buffer.write(struct.pack("<III",3,16,4)+b"Go\0\0"+b"fakebuildid/0123")' >"$TMP/gonote"
objcopy --add-section .note.go.buildid="$TMP/gonote" "$TMP/dyn" "$TMP/go1"
objcopy --add-section .note.x="$TMP/gonote" "$TMP/dyn" "$TMP/go2"
doctor_is 1 'cannot be preloaded: a Go program' "$TMP/go1"
grep -q 'a .note.go.buildid section' "$TMP/out" || fail "go1: the section is not named"
doctor_is 1 'cannot be preloaded: a Go program' "$TMP/go2"
grep -q 'a Go build ID note' "$TMP/out" || fail "go2: the note is not named"
doctor_is 0 'can be preloaded$' "$TMP/dyn"
pass "Go-like binaries (.note.go.buildid section; Go note elsewhere): cannot, exit 1; the same binary without: can"

# 6. musl: the interpreter names the C library.
MUSL_LD=/lib/ld-musl-$(uname -m).so.1
cc -Wl,--dynamic-linker="$MUSL_LD" -o "$TMP/musl" "$TMP/hello.c"
# With only the glibc build (a copy alone in a directory): it cannot.
mkdir "$TMP/lone" && cp "$SHIM" "$TMP/lone/libreshim.so"
RESHIM_LIBRARY="$TMP/lone/libreshim.so" doctor_is 1 \
    "cannot be preloaded: built for musl \(interpreter $MUSL_LD\); the shim is built for glibc" "$TMP/musl"
pass "musl-interpreter binary, no musl build beside the library: '$(verdict | sed "s#$TMP/##")', exit 1"
# With the musl build beside it (build/musl/libreshim.so): it can, and the
# musl limits are named.
if [ -f "$ROOT/build/musl/libreshim.so" ]; then
    doctor_is 0 "can be preloaded\$" "$TMP/musl"
    grep -q "preload the musl build, $ROOT/build/musl/libreshim.so" "$TMP/out" || fail "doctor does not name the musl build"
    grep -q 'on musl: no trim' "$TMP/out" || fail "doctor does not say that musl has no trim"
    pass "musl-interpreter binary with build/musl beside: '$(verdict | sed "s#$TMP/##")', exit 0; 'on musl: no trim' said"
fi

# 7. Other classes and byte orders, headers made by hand.
mkelf() { # CLASS ENDIAN MACHINE INTERP OUT
    "$PY" - "$@" <<'EOF'
import struct, sys
cls, end, mach, interp, out = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4].encode() + b"\0", sys.argv[5]
E = ">" if end == "be" else "<"
eh, ph = (64, 56) if cls == 64 else (52, 32)
off = eh + 2 * ph
total = off + len(interp)
def phdr(t, o, sz):
    if cls == 64: return struct.pack(E + "IIQQQQQQ", t, 4, o, 0x400000 + o, 0x400000 + o, sz, sz, 8)
    return struct.pack(E + "IIIIIIII", t, o, 0x400000 + o, 0x400000 + o, sz, sz, 4, 4)
ident = b"\x7fELF" + bytes([cls // 32, 2 if end == "be" else 1, 1]) + b"\0" * 9
rest = (E + "HHIQQQIHHHHHH") if cls == 64 else (E + "HHIIIIIHHHHHH")
h = ident + struct.pack(rest, 2, mach, 1, 0x401000, eh, 0, 0, eh, ph, 2, 0, 0, 0)
open(out, "wb").write(h + phdr(3, off, len(interp)) + phdr(1, 0, total) + interp)
EOF
    chmod +x "$5"
}
mkelf 64 be 22 /lib/ld64.so.1 "$TMP/s390x"
mkelf 32 be 20 /lib/ld.so.1 "$TMP/ppc32"
mkelf 32 le 3 /lib/ld-linux.so.2 "$TMP/i386"
doctor_is 1 'cannot be preloaded: a 64-bit s390 program; the shim is 64-bit' "$TMP/s390x"
grep -q 'ELF 64-bit MSB s390 executable' "$TMP/out" || fail "s390x header misread: $(cat "$TMP/out")"
doctor_is 1 'cannot be preloaded: a 32-bit ppc program' "$TMP/ppc32"
grep -q 'interpreter /lib/ld.so.1' "$TMP/out" || fail "ppc32 interpreter misread"
doctor_is 1 'cannot be preloaded: a 32-bit i386 program' "$TMP/i386"
pass "ELF64 big-endian (s390), ELF32 big-endian (ppc), ELF32 i386: read right, cannot (another class or machine), exit 1"

# 8. Truncated and garbage files: a message, exit 1, never a crash.
head -c 100 /bin/true >"$TMP/trunc100"
head -c 3000 /bin/true >"$TMP/trunc3000"
head -c 7 /bin/true >"$TMP/trunc7"
head -c 4096 /dev/urandom >"$TMP/garbage"
: >"$TMP/empty"
chmod +x "$TMP"/trunc* "$TMP/garbage" "$TMP/empty"
for f in trunc100 trunc3000 trunc7 garbage empty; do
    doctor_is 1 'cannot be preloaded: not a valid ELF executable' "$TMP/$f"
    echo "    $f: $(verdict | sed "s#$TMP/##")"
done
# Random corruption of real headers: only verdicts, never a signal.
"$PY" - "$TMP" <<'EOF'
import os, random, sys
random.seed(7)
src = open("/bin/true", "rb").read()
for i in range(40):
    b = bytearray(src)
    for _ in range(random.randrange(1, 12)):
        b[random.randrange(0, 2048)] = random.randrange(256)
    p = os.path.join(sys.argv[1], "mut%d" % i)
    open(p, "wb").write(b[:random.randrange(64, len(b))] if i % 3 == 0 else b)
    os.chmod(p, 0o755)
EOF
for i in $(seq 0 39); do
    rc=0; "$RESHIM" doctor "$TMP/mut$i" >"$TMP/out" 2>&1 || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "doctor on a corrupted copy of /bin/true (mut$i) exited $rc"
    grep -Eq 'can(not)? be preloaded' "$TMP/out" || fail "no verdict for mut$i"
done
if command -v valgrind >/dev/null; then
    for f in trunc100 trunc3000 garbage; do
        valgrind -q --error-exitcode=99 --leak-check=full "$RESHIM" doctor "$TMP/$f" >/dev/null 2>"$TMP/vg" ||
            [ $? = 1 ] || { cat "$TMP/vg" >&2; fail "valgrind found errors in doctor on $f"; }
        [ -s "$TMP/vg" ] && { cat "$TMP/vg" >&2; fail "valgrind reported on doctor $f"; }
    done
    pass "truncated, empty and garbage files: a clear verdict, exit 1; 40 corrupted copies: no crash; valgrind clean"
else
    pass "truncated, empty and garbage files: a clear verdict, exit 1; 40 corrupted copies: no crash (no valgrind here)"
fi

# 9. #! scripts: the interpreter is what gets preloaded.
printf '#!/bin/sh\nexit 0\n' >"$TMP/script.sh"
printf '#!/usr/bin/env python3\nprint(1)\n' >"$TMP/script.py"
printf '#!%s\n' "$TMP/static" >"$TMP/script.static"
chmod +x "$TMP"/script.*
doctor_is 0 'script.sh can be preloaded$' "$TMP/script.sh"
grep -q 'a script for /bin/sh' "$TMP/out" || fail "script.sh: the interpreter is not named"
doctor_is 0 'script.py can be preloaded$' "$TMP/script.py"
grep -Eq 'a script: #!/usr/bin/env python3, that is /' "$TMP/out" || fail "script.py: env python3 not followed"
if [ -x "$TMP/static" ]; then
    doctor_is 1 'script.static cannot be preloaded: statically linked' "$TMP/script.static"
fi
pass "#! scripts: /bin/sh and env python3 followed (can), one for a static interpreter (cannot)"

# 10. A missing command, a file that is not executable: exit 1, said plainly.
doctor_is 1 '^no-such-command-here cannot be preloaded: not found in PATH$' no-such-command-here
doctor_is 1 'cannot be preloaded: no such file' "$TMP/nothing/here"
cp "$TMP/hello.c" "$TMP/notexec"
doctor_is 1 'cannot be preloaded: not executable' "$TMP/notexec"
rc=0; "$RESHIM" doctor --bogus >/dev/null 2>&1 || rc=$?
[ "$rc" = 2 ] || fail "doctor --bogus: exit $rc, expected 2"
pass "missing command / missing file / not executable: exit 1; an unknown option: exit 2"

# 11. doctor --json (read by python3), and `reshim run` agreeing with doctor:
# the one check of preload.c decides both. For each program: doctor --json
# gives preloadable and reason; run warns "P cannot be preloaded: REASON"
# exactly when doctor says it cannot, with doctor's reason, and runs P.
json_field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=d[sys.argv[2]]; print("" if v is None else v if isinstance(v,str) else json.dumps(v))' "$TMP/json" "$1"; }
agree() {   # agree [RUNNER...] -- PROG: doctor --json and run on PROG, as RUNNER
    local runner=() rc=0
    while [ "$1" != -- ]; do runner+=("$1"); shift; done; shift
    "${runner[@]}" "$RESHIM" doctor --json "$1" >"$TMP/json" 2>"$TMP/err" || rc=$?
    "$PY" -c 'import json,sys
d=json.load(open(sys.argv[1]))
assert set(d) >= {"command","preloadable","reason","bad_config","library","checks","verdict"}, d
assert all(c["level"] in ("ok","warn","fail") and c["text"] for c in d["checks"]), d
assert d["preloadable"] == (d["reason"] is None) and d["command"] == sys.argv[2], d' "$TMP/json" "$1" ||
        fail "doctor --json $1: not the expected object: $(cat "$TMP/json")"
    local can reason; can=$(json_field preloadable); reason=$(json_field reason)
    { [ "$can" = true ] && [ $rc = 0 ]; } || { [ "$can" = false ] && [ $rc = 1 ]; } ||
        fail "doctor --json $1: preloadable=$can but exit $rc"
    "${runner[@]}" "$RESHIM" run -- "$1" </dev/null >/dev/null 2>"$TMP/run.err" ||
        fail "reshim run -- $1 did not run it: $(cat "$TMP/run.err")"
    if [ "$can" = true ]; then
        [ -s "$TMP/run.err" ] && fail "run warns for $1, which doctor can preload: $(cat "$TMP/run.err")"
    else
        grep -qF "warning: $1 cannot be preloaded: $reason;" "$TMP/run.err" ||
            fail "run on $1: no warning with doctor's reason '$reason': $(cat "$TMP/run.err")"
    fi
    echo "    $(basename "$1"): doctor --json preloadable=$can${reason:+ ($reason)}; run $([ "$can" = true ] && echo silent || echo warns the same)"
}
agree -- /bin/true
[ -x "$TMP/static" ] && agree -- "$TMP/static"
agree -- "$TMP/go1"
agree -- "$TMP/go2"
if [ -n "${PUB:-}" ] && [ -u "$PUB/suid" ] && [ "${nosuid:-1}" = 0 ]; then
    agree as_nobody -- "$PUB/suid"
    agree -- "$PUB/suid"
fi
pass "doctor --json parsed by python3; reshim run warns exactly when doctor says cannot, with its reason (dynamic, static, Go-like, setuid)"
