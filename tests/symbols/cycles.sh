#!/usr/bin/env bash
# tests/symbols/cycles.sh: files of shim/ only call downward (README, "How it is built"):
# no files call each other, directly or round a loop of any length. The
# file-level call graph is read from `nm` of build/obj/*.o: file A calls
# file B when A's object has an undefined symbol that B's object defines
# (functions and data alike; calls through a function pointer handed in
# are not edges, which is the point of handing them in). Its strongly
# connected components (Tarjan) are the loops: fails listing each one, its
# files and the symbols each calls within it. Then checks itself: the same
# scan over probe objects, three calling round a loop and a fourth calling
# into it, must find that loop and only its three files (so that it can
# fail, and on a loop of more than two).
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

# "loop: a.c b.c c.c: a.c calls s1 s2 (b.c); b.c calls s3 (c.c); ..." for
# each strongly connected component of more than one file (its files in
# name order). Reads the "caller callee symbol" lines, sorted.
cycles() {
    sort | awk '
        function strong(v,   i, w) {
            idx[v] = low[v] = ++counter
            stack[++sp] = v
            on[v] = 1
            for (i = 1; i <= nout[v]; i++) {
                w = out[v, i]
                if (!(w in idx)) {
                    strong(w)
                    if (low[w] < low[v]) low[v] = low[w]
                } else if (on[w] && idx[w] < low[v]) {
                    low[v] = idx[w]
                }
            }
            if (low[v] == idx[v]) {
                size = 0
                do { w = stack[sp--]; on[w] = 0; comp[w] = v; size++ } while (w != v)
                csize[v] = size
            }
        }
        { k = $1 " " $2
          if (!(k in syms)) { pairs[++npairs] = k; out[$1, ++nout[$1]] = $2 }
          syms[k] = syms[k] " " $3
          if (!($1 in seen)) { seen[$1] = 1; nodes[++nnodes] = $1 } }
        END {
            for (i = 1; i <= nnodes; i++) if (!(nodes[i] in idx)) strong(nodes[i])
            for (i = 1; i <= nnodes; i++) {
                r = comp[nodes[i]]
                if (csize[r] < 2) continue
                files[r] = files[r] " " nodes[i] ".c"
            }
            for (i = 1; i <= npairs; i++) {
                split(pairs[i], p, " ")
                r = comp[p[1]]
                if (csize[r] < 2 || comp[p[2]] != r) continue
                calls[r] = calls[r] (calls[r] == "" ? " " : "; ") p[1] ".c calls" syms[pairs[i]] " (" p[2] ".c)"
            }
            for (r in files) print "loop:" files[r] ":" calls[r]
        }' | sort
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

# The scan catches what it must: three probe objects calling round a loop
# (pa -> pb -> pc -> pa), and not pd, which calls into the loop from outside.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
probe_src() { # name, the function it defines, the one it calls
    printf 'int %s(int);\nint %s(int x) { return x > 0 ? %s(x - 1) : 0; }\n' "$3" "$2" "$3" >"$tmp/$1.c"
}
probe_src pa probe_a probe_b
probe_src pb probe_b probe_c
probe_src pc probe_c probe_a
probe_src pd probe_d probe_a
for p in pa pb pc pd; do
    ${CC:-cc} -O2 -fPIC -c "$tmp/$p.c" -o "$tmp/$p.o" ||
        { echo "FAIL: cannot build the probe objects" >&2; exit 1; }
done
probe=$(edges "$tmp"/p[a-d].o | cycles)
want="loop: pa.c pb.c pc.c: pa.c calls probe_b (pb.c); pb.c calls probe_c (pc.c); pc.c calls probe_a (pa.c)"
[ "$probe" = "$want" ] ||
    { echo "FAIL: the scan found '$probe' in three probes calling round a loop" >&2; exit 1; }

if [ -n "$found" ]; then
    echo "FAIL: files of shim/ that call each other, round these loops (layers call only downward: README, "How it is built"):" >&2
    echo "$found" | sed 's/^/  /' >&2
    exit 1
fi
echo "ok: ${#objs[@]} objects, $nedges file-level calls, no loop among the files of shim/ (probe: caught pa.c -> pb.c -> pc.c -> pa.c)"
