#!/usr/bin/env bash
# tests/symbols/cycles.sh: files of shim/ only call downward (DESIGN.md):
# no two files call each other. The file-level call graph is read from
# `nm` of build/obj/*.o: file A calls file B when A's object has an
# undefined symbol that B's object defines (functions and data alike;
# calls through a function pointer handed in at init are not edges, which
# is the point of handing them in). Fails listing every pair A <-> B with
# the symbols each way. Then checks itself: the same scan over two probe
# objects that call each other must find their cycle (so that it can fail).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
OBJ=$BUILD/obj

# "caller callee symbol" for every cross-file reference among the objects
# given (the definer of a symbol: its global definition, any type).
edges() {
    nm -A "$@" 2>/dev/null | awk '
        { f = $1; sub(/:.*/, "", f); sub(/.*\//, "", f); sub(/\.o$/, "", f) }
        $(NF - 1) == "U" { use[f " " $NF] = 1; next }
        $(NF - 1) ~ /^[A-TV-Z]$/ { def[$NF] = f }
        END { for (k in use) { split(k, u, " ");
                  if ((u[2] in def) && def[u[2]] != u[1]) print u[1], def[u[2]], u[2] } }'
}

# "a <-> b: a calls s1 s2; b calls s3" for each pair calling each other.
cycles() {
    awk '{ k = $1 " " $2; syms[k] = syms[k] " " $3; pair[k] = 1 }
        END { for (k in pair) { split(k, p, " ");
                  r = p[2] " " p[1];
                  if ((r in pair) && p[1] < p[2])
                      printf "%s.c <-> %s.c: %s.c calls%s; %s.c calls%s\n",
                          p[1], p[2], p[1], syms[k], p[2], syms[r] } }' | sort
}

objs=()
for o in "$OBJ"/*.o; do
    [ -f "$ROOT/shim/$(basename "$o" .o).c" ] && objs+=("$o") # not a stale object
done
[ "${#objs[@]}" -ge 20 ] || { echo "FAIL: only ${#objs[@]} objects under $OBJ: build first (make all)" >&2; exit 1; }

all=$(edges "${objs[@]}")
nedges=$(echo "$all" | awk '{print $1, $2}' | sort -u | grep -c .)
[ "$nedges" -ge 50 ] || { echo "FAIL: read only $nedges file-level calls from $OBJ (nm?)" >&2; exit 1; }
found=$(echo "$all" | cycles)

# The scan catches what it must: two probe objects calling each other.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'int probe_b(int);\nint probe_a(int x) { return x > 0 ? probe_b(x - 1) : 0; }\n' >"$tmp/pa.c"
printf 'int probe_a(int);\nint probe_b(int x) { return x > 0 ? probe_a(x - 1) : 1; }\n' >"$tmp/pb.c"
${CC:-cc} -O2 -fPIC -c "$tmp/pa.c" -o "$tmp/pa.o" && ${CC:-cc} -O2 -fPIC -c "$tmp/pb.c" -o "$tmp/pb.o" ||
    { echo "FAIL: cannot build the probe objects" >&2; exit 1; }
probe=$(edges "$tmp/pa.o" "$tmp/pb.o" | cycles)
[ "$probe" = "pa.c <-> pb.c: pa.c calls probe_b; pb.c calls probe_a" ] ||
    { echo "FAIL: the scan found '$probe' in two probes calling each other" >&2; exit 1; }

if [ -n "$found" ]; then
    echo "FAIL: files of shim/ that call each other (layers call only downward, DESIGN.md):" >&2
    echo "$found" | sed 's/^/  /' >&2
    exit 1
fi
echo "ok: ${#objs[@]} objects, $nedges file-level calls, no two files of shim/ call each other (probe: caught pa.c <-> pb.c)"
