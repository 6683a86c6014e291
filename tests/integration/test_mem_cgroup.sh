#!/usr/bin/env bash
# A real container memory limit: a child memory cgroup of the one this test
# runs in, limited to 256M (cgroup v1 memory.limit_in_bytes, and memsw too;
# or cgroup v2 memory.max with memory.swap.max 0). python3 (mem_hog.py)
# appends small objects to a list inside it. Without the shim the kernel's
# OOM killer ends it (SIGKILL, exit 137, oom_kill counted by the cgroup).
# With the shim, RESHIM_MEM_POLICY=enforce and the default budget (auto: the
# container limit), the same program gets a MemoryError, recovers, allocates
# again and exits 0; its stats say budget=268435456 budget_source=cgroup;
# no OOM kill. RESHIM_MEM_BUDGET=50% is half the limit. Needs root and a
# memory cgroup it may create children in; else skipped. The cgroups are
# removed at exit.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"
HOG="$ROOT/tests/integration/mem_hog.py"
LIMIT=$((256 * 1048576))

CGROUPS=()
V2_ENABLED=""   # the cgroup.subtree_control where this test enabled +memory
cg_cleanup() {
    local d
    for d in "${CGROUPS[@]:-}"; do
        [ -n "$d" ] && [ -d "$d" ] || continue
        # Any process left in it goes back to the parent first.
        while read -r p; do echo "$p" >"$(dirname "$d")/cgroup.procs" 2>/dev/null || true; done <"$d/cgroup.procs" 2>/dev/null || true
        for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$d" 2>/dev/null && break; sleep 0.2; done
        [ -d "$d" ] && echo "  warning: could not remove cgroup $d" >&2
    done
    [ -n "$V2_ENABLED" ] && { echo -memory >"$V2_ENABLED" 2>/dev/null || true; }
    return 0
}
trap 'cg_cleanup; cleanup' EXIT

[ "$(id -u)" = 0 ] || skip "needs root to create a memory cgroup"
# cg_dir TYPE OWN [OPTION]: the directory of cgroup path OWN (from
# /proc/self/cgroup) on the cgroup (v1, with OPTION among its super options)
# or cgroup2 mount, from /proc/self/mountinfo (the mount's root cut off OWN).
cg_dir() {
    local line mnt root own=$2
    line=$(awk -v t="$1" -v o="${3:-}" '{
        for (i = 7; i <= NF; i++) if ($i == "-") break
        if ($(i + 1) != t) next
        if (o != "" && ("," $(i + 3) ",") !~ ("," o ",")) next
        print $5, $4; exit }' /proc/self/mountinfo)
    [ -n "$line" ] && [ -n "$own" ] || return 1
    mnt=${line% *}; root=${line#* }
    [ "$root" = / ] || own=${own#"$root"}
    own=${own%/}
    echo "$mnt$own"
}
VERSION=0
own1=$(sed -n 's/^[0-9]*:\([^:]*,\)\{0,1\}memory\(,[^:]*\)\{0,1\}:\(.*\)$/\3/p' /proc/self/cgroup | head -n 1)
own2=$(sed -n 's/^0::\(.*\)$/\1/p' /proc/self/cgroup | head -n 1)
if d1=$(cg_dir cgroup "$own1" memory) && [ -f "$d1/memory.limit_in_bytes" ]; then
    PARENT=$d1
    VERSION=1
else
    if d2=$(cg_dir cgroup2 "$own2") && [ -d "$d2" ]; then
        PARENT=$d2
        v2=$(cg_dir cgroup2 /)
        if ! grep -qw memory "$PARENT/cgroup.subtree_control" 2>/dev/null; then
            grep -qw memory "$PARENT/cgroup.controllers" 2>/dev/null ||
                skip "cgroup v2 at $v2: no memory controller in $PARENT"
            echo +memory >"$PARENT/cgroup.subtree_control" 2>/dev/null ||
                skip "cgroup v2 at $v2: cannot enable the memory controller for children of $PARENT"
            V2_ENABLED="$PARENT/cgroup.subtree_control"
        fi
        VERSION=2
    fi
fi
[ "$VERSION" != 0 ] || skip "no cgroup v1 memory hierarchy and no cgroup v2 memory controller"

# make_cg NAME: a child cgroup limited to 256M, its directory in CG (not
# run in a subshell: CGROUPS must remember it for the cleanup).
make_cg() {
    local d="$PARENT/reshim-test-$$-$1"
    CG=""
    mkdir "$d" 2>/dev/null || return 1
    CGROUPS+=("$d")
    if [ "$VERSION" = 1 ]; then
        echo "$LIMIT" >"$d/memory.limit_in_bytes" || return 1
        [ -f "$d/memory.memsw.limit_in_bytes" ] && { echo "$LIMIT" >"$d/memory.memsw.limit_in_bytes" || return 1; }
        [ "$(cat "$d/memory.limit_in_bytes")" = "$LIMIT" ] || return 1
    else
        [ -f "$d/memory.max" ] || return 1
        echo "$LIMIT" >"$d/memory.max" || return 1
        [ -f "$d/memory.swap.max" ] && { echo 0 >"$d/memory.swap.max" || true; }
    fi
    CG=$d
}
oom_kills() {   # oom_kills DIR: OOM kills the cgroup counted
    if [ "$VERSION" = 1 ]; then sed -n 's/^oom_kill \([0-9]*\)$/\1/p' "$1/memory.oom_control"
    else sed -n 's/^oom_kill \([0-9]*\)$/\1/p' "$1/memory.events"; fi
}
# in_cg DIR CMD...: runs CMD inside the cgroup (a shell that moves itself in, then execs).
in_cg() { local d=$1; shift; sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$d" "$@"; }

make_cg noshim || skip "cannot create a memory cgroup under $PARENT (v$VERSION)"
cg0=$CG
make_cg shim || skip "cannot create a second memory cgroup under $PARENT"
cg1=$CG
make_cg pct || skip "cannot create a third memory cgroup under $PARENT"
cg2=$CG
echo "    cgroup v$VERSION, children of $PARENT limited to $LIMIT bytes"

# 1. Without the shim: the OOM killer.
rc=0
in_cg "$cg0" timeout 60 "$PY" "$HOG" small --bound-mb 400 --again-mb 20 >"$TMP/out0" 2>"$TMP/err0" || rc=$?
[ "$rc" = 124 ] && fail "without the shim: still running after 60 s"
[ "$rc" = 137 ] || fail "without the shim: expected an OOM kill (137), got rc $rc: $(cat "$TMP/out0" "$TMP/err0" | head -n 5)"
k0=$(oom_kills "$cg0")
[ "${k0:-0}" -ge 1 ] || fail "rc 137 but the cgroup counted no OOM kill"
pass "without the shim: killed by the kernel's OOM killer in a 256M cgroup (rc 137, oom_kill=$k0)"

# 2. With the shim, policy enforce, budget auto (the default).
push_start
rc=0
in_cg "$cg1" timeout 60 env -u RESHIM_MEM_BUDGET RESHIM_LOG=info RESHIM_MEM_POLICY=enforce "$PUSHED" \
    "$PY" "$HOG" small --bound-mb 400 --again-mb 20 >"$TMP/out1" 2>"$TMP/err1" || rc=$?
sed 's/^/    /' "$TMP/out1"
grep -v "exit summary" "$TMP/err1" | grep -i memory | sed 's/^/    /'
echo "    mem $(stat_field mem "$TMP/err1")"
k1=$(oom_kills "$cg1")
[ "$rc" = 137 ] && fail "with the shim (enforce, auto budget): still OOM-killed (oom_kill=$k1)"
[ "$rc" = 0 ] || { tail -n 20 "$TMP/err1" >&2; fail "with the shim: rc $rc"; }
grep -q "^caught MemoryError at [0-9]* items" "$TMP/out1" || fail "with the shim: no MemoryError"
grep -q "^recovered" "$TMP/out1" || fail "with the shim: no recovery"
grep -q "^allocated 20 MB again" "$TMP/out1" || fail "with the shim: could not allocate again after recovering"
[ "$(stat_field mem.budget_source "$TMP/err1")" = cgroup ] || fail "budget_source is not cgroup"
[ "$(stat_field mem.budget_bytes "$TMP/err1")" = "$LIMIT" ] || fail "budget is not $LIMIT"
en=$(stat_field mem.enomem "$TMP/err1")
[ "${en:-0}" -ge 1 ] || fail "enomem=${en:-?}"
[ "${k1:-0}" = 0 ] || fail "the cgroup counted $k1 OOM kills with the shim"
pass "with the shim (enforce, budget auto): $(head -n 1 "$TMP/out1"), recovered, exit 0; budget=$LIMIT budget_source=cgroup enomem=$en oom_kill=0"

# 3. A share of the container limit.
in_cg "$cg2" env RESHIM_MEM_BUDGET=50% RESHIM_LOG=info "$PUSHED" "$PY" -c 'print("hi")' >"$TMP/out2" 2>"$TMP/err2" ||
    { cat "$TMP/err2" >&2; fail "python3 -c in the cgroup with RESHIM_MEM_BUDGET=50% failed"; }
[ "$(stat_field mem.budget_bytes "$TMP/err2")" = $((LIMIT / 2)) ] && [ "$(stat_field mem.budget_source "$TMP/err2")" = cgroup ] ||
    fail "RESHIM_MEM_BUDGET=50% in a 256M cgroup: mem $(stat_field mem "$TMP/err2")"
pass "RESHIM_MEM_BUDGET=50% in the 256M cgroup: budget=$((LIMIT / 2)) budget_source=cgroup"
