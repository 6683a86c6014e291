#!/usr/bin/env bash
# tests/symbols/check_self_calls.sh: the shim never runs its own interposers
# for its own purposes (shim/sys.h). A call from inside the library to an
# interposed name (read, close, mmap, malloc...) would run the shim's own
# exported wrapper: its maps counted as the app's memory, its descriptors
# entered in the fd table, its reads retried. Three checks:
#   1. every object of shim/ but sys.o (build/obj, and build/musl/obj when
#      built): no relocation names an interposed function. Relocations, not
#      only `nm -u`: a call to a wrapper defined in the same file (alloc.c's
#      realloc calling malloc) is a relocation too, and undefined nowhere.
#      The shim's own calls go to sys.c; memory it hands to the app goes
#      through alloc.h's hidden aliases (reshim_app_malloc...).
#   2. build/libreshim.so: no dynamic relocation names an interposed
#      function (what `readelf -r` shows when the library binds a call back
#      into itself).
#   3. the scanner of 1 finds a bare close() and malloc() in a probe object
#      built with the library's flags (so that 1 can fail).
# The interposed names are shim/libreshim.map's global list.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

names=$(sed -n '/global:/,/local:/p' "$ROOT/shim/libreshim.map" | tr ' ;' '\n\n' |
    grep -E '^[A-Za-z_][A-Za-z0-9_]*$' | grep -vx -e global -e local | sort -u)
count=$(echo "$names" | wc -l)
[ "$count" -ge 40 ] || { echo "FAIL: read only $count interposed names from shim/libreshim.map" >&2; exit 1; }

# The interposed names among an ELF file's relocations, "name" per line.
interposed_relocs() {
    readelf -rW "$1" | awk '$1 ~ /^[0-9a-f]+$/ && NF >= 5 {print $5}' | sed 's/@.*//' |
        grep -xF -f <(echo "$names") | sort -u
}

# 1. the objects
checked=0
for dir in "$BUILD/obj" "$BUILD/musl/obj"; do
    [ -d "$dir" ] || continue
    for o in "$dir"/*.o; do
        [ "$(basename "$o")" = sys.o ] && continue
        src=$ROOT/shim/$(basename "$o" .o).c
        [ -f "$src" ] || continue # a stale object of a file no longer there
        checked=$((checked + 1))
        bad=$(interposed_relocs "$o" | tr '\n' ' ')
        [ -z "$bad" ] || fail "shim/$(basename "$src") calls interposed functions itself: $bad(use sys.h, or alloc.h's reshim_app_* for memory handed to the app) [$o]"
    done
done
[ "$checked" -ge 20 ] || fail "only $checked objects checked under $BUILD/obj: build first (make all)"

# 2. the library
if [ -f "$BUILD/libreshim.so" ]; then
    bad=$(interposed_relocs "$BUILD/libreshim.so" | tr '\n' ' ')
    [ -z "$bad" ] || fail "build/libreshim.so binds calls back into itself (readelf -r): $bad"
else
    fail "$BUILD/libreshim.so is missing: build first (make all)"
fi

# 3. the scanner catches what it must
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/probe.c" <<'C'
#include <stdlib.h>
#include <unistd.h>
void *probe_kept;
__attribute__((visibility("default"))) int probe(int fd, size_t n)
{
    probe_kept = malloc(n);
    free(probe_kept);
    return close(fd);
}
C
${CC:-cc} -O2 -fPIC -fvisibility=hidden -fno-builtin-malloc -c "$tmp/probe.c" -o "$tmp/probe.o" ||
    fail "cannot build the probe object"
got=$(interposed_relocs "$tmp/probe.o" | tr '\n' ' ')
[ "$got" = "close free malloc " ] || fail "the scanner found '$got' in a probe calling close, free and malloc"

if [ "$fails" -gt 0 ]; then
    exit 1
fi
echo "ok: $checked objects and libreshim.so: no call of the shim's own binds to its $count interposed names (probe: caught '$got')"
