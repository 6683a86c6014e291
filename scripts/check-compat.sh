#!/usr/bin/env bash
# check-compat.sh (`make check-compat`): the library and the CLI that `make`
# built here, on an older glibc: a Debian 11 root (bullseye, glibc 2.31;
# debootstrap --variant=minbase, with python3 and curl), tested there with
# that root's programs:
#   - no GLIBC_ symbol version above the floor (2.17) in either (objdump -T);
#   - a python3 client and curl, whose server comes up 1.5 s late, fail
#     without the shim and are rescued under LD_PRELOAD;
#   - RESHIM_MEM_POLICY=enforce RESHIM_MEM_BUDGET=100M: python3 growing a list
#     catches MemoryError (without the shim it grows past 100 MB);
#   - `reshim ls` lists a shimmed python3, `reshim stats PID` shows it (the
#     glibc CLI; a static CLI too if one was built: build/musl/reshim-static,
#     build/reshim-static);
#   - mawk, which links neither libdl nor libpthread (the library opens them
#     there): listed by `reshim ls` once its heap grows, and it ends.
# No older suite: deb.debian.org has nothing before bullseye (buster and
# stretch are on archive.debian.org only). The root is cached in
# $BUILD/debroot/ (scripts/lib-root.sh, shared with check-deb.sh).
# Exit status: 0 pass, 77 skip (not root; the mirror cannot be reached), else
# fail. Environment: BUILD, RESHIM_COMPAT_MIRROR (default deb.debian.org).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
SUITE=bullseye
VARIANT=minbase
INCLUDE=python3,curl
MIRROR=${RESHIM_COMPAT_MIRROR:-http://deb.debian.org/debian}
FLOOR=2.17
LIB="$BUILD/libreshim.so"
CLI="$BUILD/reshim"

NAME=check-compat
# shellcheck source=scripts/lib-root.sh
. scripts/lib-root.sh

# 1. The symbol versions: no root needed.
for f in "$LIB" "$CLI"; do
    [ -f "$f" ] || die "$f is missing (make all)"
    top=$(objdump -T "$f" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
    if [ "$(printf '%s\n' "$top" "$FLOOR" | sort -V | tail -n 1)" != "$FLOOR" ]; then
        objdump -T "$f" | grep -E 'GLIBC_' | grep -vE 'GLIBC_2\.([0-9]|1[0-7])(\.[0-9]+)?[ )]' >&2 || true
        die "$f needs GLIBC_$top, above the floor $FLOOR (shim/compat.h: pin the symbols above)"
    fi
    say "ok: $f needs GLIBC_$top at most (floor $FLOOR)"
done

root_require "debootstrap, chroot"
WORK="$ROOT/$BUILD/check-compat"
R=""
trap cleanup EXIT
trap 'exit 130' INT TERM

# 2. The root (cached), a copy, the library and the CLI in it.
root_cache "$SUITE" "$VARIANT" "$INCLUDE" "$MIRROR" "$WORK"
root_copy "$WORK"
say "root: Debian $(cat "$R/etc/debian_version"), $(in_root ldd --version | head -n 1)"
mkdir -p "$R/opt/reshim"
cp "$LIB" "$R/opt/reshim/libreshim.so"
cp "$CLI" "$R/opt/reshim/reshim"
cp tests/integration/mem_hog.py "$R/tmp/"
SO=/opt/reshim/libreshim.so
late_setup
cat > "$R/tmp/curl.sh" <<'EOF2'
#!/bin/sh
exec curl -sS --max-time 10 "http://127.0.0.1:$1/"
EOF2
chmod +x "$R/tmp/curl.sh"
lap "setup"

# 3. It loads, and rescues.
out=$(in_root env LD_PRELOAD=$SO python3 -c 'print("loaded")' 2>&1) || die "python3 under the shim: $out"
[ "$out" = loaded ] || die "python3 under the shim says: $out"
# (the whole output first: grep -q leaving early would break the pipe of a
# /bin/true still writing, and the pipeline would fail under pipefail)
out=$(in_root env LD_PRELOAD=$SO LD_DEBUG=files /bin/true 2>&1)
grep -q "calling init: $SO" <<<"$out" || die "ld.so did not load $SO in the root"
say "ok: the library loads on glibc $(in_root ldd --version | head -n 1 | awk '{print $NF}')"
late "python3, no shim" fail python3 /tmp/client.py
late "python3, LD_PRELOAD" ok env LD_PRELOAD=$SO python3 /tmp/client.py
late "curl, no shim" fail /tmp/curl.sh
late "curl, LD_PRELOAD" ok env LD_PRELOAD=$SO /tmp/curl.sh
lap "late server"

# 4. The memory budget.
out=$(in_root python3 /tmp/mem_hog.py small --bound-mb 300 2>&1) || die "mem_hog without the shim: $out"
echo "$out" | grep -q "bound reached" || die "without the shim, python3 did not grow past 100 MB: $out"
say "ok: no shim: $(echo "$out" | head -n 1)"
rc=0
out=$(in_root env LD_PRELOAD=$SO RESHIM_MEM_POLICY=enforce RESHIM_MEM_BUDGET=100M \
    python3 /tmp/mem_hog.py small --bound-mb 300 2>&1) || rc=$?
[ $rc = 0 ] || die "mem_hog under the shim exited $rc: $out"
echo "$out" | grep -q "caught MemoryError" || die "under the budget, no MemoryError: $out"
say "ok: RESHIM_MEM_BUDGET=100M enforce: $(echo "$out" | grep "caught MemoryError"), exit 0"
lap "memory budget"

# 5. The CLI: reshim ls and reshim stats.
# cli_test NAME PATH-IN-ROOT: ls lists a shimmed python3, stats shows it.
cli_test() {
    local name=$1 cli=$2 ipid listed="" out
    out=$(in_root "$cli" --version 2>&1) || die "$name does not run in the root: $out"
    in_root_bg env LD_PRELOAD=$SO python3 /tmp/idle.py & ipid=$!
    for _ in $(seq 50); do
        sleep 0.1
        if in_root "$cli" ls 2>/dev/null | grep -qw "$ipid"; then listed=1; break; fi
    done
    out=$(in_root "$cli" ls 2>&1 || true)
    if [ -z "$listed" ]; then
        kill "$ipid" 2>/dev/null || true; wait "$ipid" 2>/dev/null || true
        die "$name ls does not list the shimmed python3 (pid $ipid): $out"
    fi
    say "ok: $name ls: $(echo "$out" | grep -w "$ipid")"
    out=$(in_root "$cli" stats "$ipid" 2>&1) || {
        kill "$ipid" 2>/dev/null || true; wait "$ipid" 2>/dev/null || true
        die "$name stats $ipid: $out"
    }
    kill "$ipid" 2>/dev/null || true; wait "$ipid" 2>/dev/null || true
    say "ok: $name stats $ipid: $(echo "$out" | wc -l) lines: $(echo "$out" | head -n 1)"
}
cli_test "reshim (glibc)" /opt/reshim/reshim
static=""
for s in "$BUILD/musl/reshim-static" "$BUILD/reshim-static" "$BUILD/musl/reshim"; do
    if [ -f "$s" ]; then static=$s; break; fi
done
if [ -n "$static" ]; then
    cp "$static" "$R/opt/reshim/reshim-static"
    cli_test "reshim (static, $static)" /opt/reshim/reshim-static
else
    say "no static CLI built (build/reshim-static, branch i15-cli): its part skipped"
fi
lap "CLI"

# 6. A program that links neither libdl nor libpthread (mawk): the library
# opens them itself (shim/compat.c, from its constructor). mawk's heap grows
# on a slow input, the stats thread starts (ls lists it), and mawk ends with
# its answer (a lock of libc taken as a no-op before libpthread came and
# released for real after it hangs the next setlocale).
if in_root ldd /usr/bin/mawk | grep -qE 'libdl|libpthread'; then
    die "mawk in the root links libdl or libpthread: no test of the library opening them"
fi
cat > "$R/tmp/feed.sh" <<'EOF2'
#!/bin/sh
# Numbers, 20000 each 0.1 s, until /tmp/feed.stop is there (at most 30 s).
i=0
while [ ! -e /tmp/feed.stop ] && [ $i -lt 300 ]; do seq 20000; sleep 0.1; i=$((i + 1)); done
EOF2
chmod +x "$R/tmp/feed.sh"
rm -f "$R/tmp/feed.stop" "$R/tmp/mawk.out"
in_root_bg sh -c "/tmp/feed.sh | LD_PRELOAD=$SO mawk '{a[\$0 \" \" NR]=1} END{print length(a)}' >/tmp/mawk.out" &
fpid=$!
listed=""
for _ in $(seq 50); do
    sleep 0.1
    if in_root /opt/reshim/reshim ls 2>/dev/null | grep -qw mawk; then listed=1; break; fi
done
mpid=$(in_root pidof mawk || true)
libs=$(cat "/proc/${mpid:-0}/maps" 2>/dev/null | grep -oE 'lib(dl|pthread)-[0-9.]+\.so' | sort -u | tr '\n' ' ')
touch "$R/tmp/feed.stop"
for _ in $(seq 100); do kill -0 "$fpid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$fpid" 2>/dev/null; then
    in_root pidof mawk >/dev/null && in_root kill -9 $(in_root pidof mawk) 2>/dev/null
    die "mawk under the shim did not end 10 s after its input did (hung)"
fi
wait "$fpid" || die "mawk under the shim failed"
[ -n "$listed" ] || die "reshim ls did not list mawk (pid ${mpid:-?}): the stats thread did not start"
n=$(cat "$R/tmp/mawk.out")
[ "${n:-0}" -gt 0 ] 2>/dev/null || die "mawk under the shim printed \"$n\", not a count"
say "ok: mawk (neither libdl nor libpthread linked) under the shim: listed by ls, $n lines, opened ${libs:-?}"
lap "mawk"

cleanup
rm -rf "$R"
lap_t=$T0; lap total
say "pass"
