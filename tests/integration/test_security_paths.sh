#!/usr/bin/env bash
# alone: it works in the shared run directories (/tmp/reshim-UID, abstract names) that other tests' processes use
# Where the stats socket is made, and what is never followed (needs root:
# the attacker is uid 65534, played with setpriv). Extends
# test_stats_security.sh (symlink / another uid's / 0755 run dir, planted
# symlink or file at <pid>.sock).
#   - A run dir open to group or others (0770, 0707, 0730, 0703, 0750, 0711)
#     is refused, named, its mode untouched.
#   - A FIFO, a directory, or a symlink to another live socket at <pid>.sock:
#     left alone (the FIFO never opened), abstract socket instead.
#   - A run dir below a directory another user can change (owned by uid
#     65534, or group-writable and not sticky): while that uid swaps the run
#     dir with a symlink to a victim directory (renameat2 RENAME_EXCHANGE, as
#     fast as it can), the victim directory stays empty: each app either
#     binds through the run dir's descriptor (/proc/self/fd/N/<pid>.sock) or
#     sees the symlink and goes abstract. Control: a naive root bind through
#     the same path lands in the victim directory. Moved away and replaced
#     later, the run dir's planted socket is not believed by root's CLI and
#     nothing is removed through the changed path. A parent that is a
#     symlink is refused; a sticky world-writable one (like /tmp) is used at
#     the plain path.
#   - umask 0277 (a run dir made 0500): made 0700, socket 0600.
#   - strace of the app: every file syscall on the run dir and the socket
#     name is a no-follow form (lstat with AT_SYMLINK_NOFOLLOW, an O_PATH |
#     O_NOFOLLOW | O_DIRECTORY open, *at calls on that descriptor), also with
#     a symlink planted at <pid>.sock: nothing follows it, nothing removes it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/security_lib.sh"
security_require_root
security_write_app
SWAP="$BIN/security_swap"
[ -x "$SWAP" ] || fail "$SWAP is missing (make the test programs)"

# warned NAME DIR REASON: the app fell back to the abstract socket with one
# warning naming DIR and REASON.
warned() {
    local name=$1 dir=$2 reason=$3
    wait_abstract 0 "$APP_PID" || { cat "$TMP/$name.err" >&2; fail "$name: no abstract socket"; }
    local w; w=$(grep "stats socket" "$TMP/$name.err" || true)
    [ "$(printf '%s\n' "$w" | grep -c .)" = 1 ] || fail "$name: expected one warning, got: $w"
    case "$w" in
    *"not using the run directory $dir: $reason"*"serving on the abstract socket @reshim-0/$APP_PID instead"*) ;;
    *) fail "$name: the warning does not say '$reason': $w" ;;
    esac
    [ "$(ask "@reshim-0/$APP_PID" version)" = "reshim $VERSION" ] || fail "$name: the abstract socket does not answer"
}

# ---- run directories open to group or others ----
for mode in 0770 0707 0730 0703 0750 0711; do
    d="$TMP/mode$mode"; mkdir "$d"; chmod "$mode" "$d"
    launch_app "mode$mode" env RESHIM_RUN_DIR="$d"
done
for mode in 0770 0707 0730 0703 0750 0711; do
    d="$TMP/mode$mode"
    wait_app "mode$mode"
    warned "mode$mode" "$d" "its mode $mode lets other users in (0700 is required)"
    stop_app "mode$mode"
    [ "$(stat -c %a "$d")" = "${mode#0}" ] || fail "mode $mode changed to $(stat -c %a "$d")"
    [ -z "$(ls -A "$d")" ] || fail "something was made in the $mode dir: $(ls "$d")"
done
pass "run dirs of mode 0770, 0707, 0730, 0703, 0750, 0711: each refused with one warning naming the mode; mode untouched, nothing made in them"

# ---- things planted at <pid>.sock (the pid is known: sh execs the app) ----
RUN="$TMP/run"; mkdir -m 700 "$RUN"
plant() {  # plant NAME SNIPPET (with $D the run dir and $$ the app's pid to be)
    local name=$1 snippet=$2
    rm -f "$TMP/quit.$name"
    D="$RUN" sh -c "$snippet; exec env LD_PRELOAD='$SHIM' RESHIM_RUN_DIR='$RUN' '$PY' '$TMP/app.py' '$TMP/quit.$name'" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    CHILDREN+=($!)
    local i=0
    while ! grep -q '^ready' "$TMP/$name.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 500 ] && { cat "$TMP/$name.err" >&2; fail "$name: the app did not start"; }
        sleep 0.02
    done
    APP_PID=$(sed -n 's/^ready //p' "$TMP/$name.out")
}
plant fifo 'mkfifo "$D/$$.sock"'
warned fifo "$RUN" "$RUN/$APP_PID.sock exists and is not a socket (left alone)"
[ -p "$RUN/$APP_PID.sock" ] || fail "the FIFO was replaced"
# Nobody opened the FIFO: a writer now finds no reader (ENXIO).
"$PY" -c 'import os,sys
try:
    os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK); sys.exit("the FIFO has a reader")
except OSError as e:
    sys.exit(0 if e.errno == 6 else "unexpected %s" % e)' "$RUN/$APP_PID.sock" || fail "FIFO check"
stop_app fifo; [ -p "$RUN/$APP_PID.sock" ] || fail "the FIFO was removed at exit"; rm -f "$RUN/$APP_PID.sock"
plant dir 'mkdir "$D/$$.sock"; echo keep > "$D/$$.sock/f"'
warned dir "$RUN" "$RUN/$APP_PID.sock exists and is not a socket (left alone)"
stop_app dir
[ "$(cat "$RUN/$APP_PID.sock/f")" = keep ] || fail "the directory at <pid>.sock was changed"; rm -rf "${RUN:?}/$APP_PID.sock"
# A live socket of another root program, reached by a symlink at <pid>.sock.
"$PY" -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); print("up", flush=True); time.sleep(60)' \
    "$TMP/other.sock" >"$TMP/other.out" & CHILDREN+=($!); OTHER_LSN=$!
i=0; until grep -q up "$TMP/other.out" 2>/dev/null; do i=$((i + 1)); [ $i -gt 250 ] && fail "no other socket"; sleep 0.02; done
ino=$(stat -c %i "$TMP/other.sock")
plant sockl 'ln -s "'"$TMP"'/other.sock" "$D/$$.sock"'
warned sockl "$RUN" "$RUN/$APP_PID.sock exists and is not a socket (left alone)"
stop_app sockl
[ -L "$RUN/$APP_PID.sock" ] && [ "$(stat -c %i "$TMP/other.sock")" = "$ino" ] || fail "the symlink or the other program's socket changed"
kill "$OTHER_LSN"; rm -f "$RUN/$APP_PID.sock"
pass "a FIFO (never opened), a directory, a symlink to another program's live socket at <pid>.sock: left alone, abstract socket instead"

# ---- parents another user can change ----
mkdir -m 755 "$TMP/att"; chown $NOBODY:$NOBODY "$TMP/att"
mkdir -m 700 "$TMP/att/run" "$TMP/victim"          # root's run dir, under uid 65534's directory
as_uid $NOBODY ln -s "$TMP/victim" "$TMP/att/alt"
# Control: a naive root program binding through the same path while uid
# 65534 swaps run and alt lands some of its sockets in the victim directory.
rm -f "$TMP/stop"
as_uid $NOBODY "$SWAP" "$TMP/att/run" "$TMP/att/alt" "$TMP/stop" >"$TMP/swaps1" &
CHILDREN+=($!); SW=$!
"$PY" -c '
import os, socket, sys
for i in range(400):
    s = socket.socket(socket.AF_UNIX)
    try: s.bind("%s/naive%d.sock" % (sys.argv[1], i))
    except OSError: pass
    s.close()' "$TMP/att/run"
touch "$TMP/stop"; wait "$SW" || true
naive=$(find "$TMP/victim" -name 'naive*' | wc -l)
[ "$naive" -gt 0 ] || fail "control: the swap never diverted a naive bind (swaps: $(cat "$TMP/swaps1"))"
rm -f "$TMP/victim"/* "$TMP/att/run"/* "$TMP/stop"
as_uid $NOBODY "$SWAP" "$TMP/att/run" "$TMP/att/alt" "$TMP/stop" >"$TMP/swaps2" &
CHILDREN+=($!); SW=$!
for k in 1 2 3 4 5 6 7 8; do launch_app "att$k" env RESHIM_RUN_DIR="$TMP/att/run" RESHIM_LOG=info; done
for k in 1 2 3 4 5 6 7 8; do wait_app "att$k"; eval "ATT_PID$k=$APP_PID"; done
sleep 0.3   # every app is past its socket set-up (the control above shows the swaps land)
touch "$TMP/stop"; wait "$SW" || true
[ -d "$TMP/att/run" ] && [ ! -L "$TMP/att/run" ] || fail "the swapper did not leave run as it was"
served=0; refused=0
for k in 1 2 3 4 5 6 7 8; do
    eval "APP_PID=\$ATT_PID$k"
    if [ -S "$TMP/att/run/$APP_PID.sock" ]; then
        [ "$(ask "$TMP/att/run/$APP_PID.sock" version)" = "reshim $VERSION" ] || fail "att$k: its socket does not answer"
        grep -q " /proc/self/fd/[0-9]*/$APP_PID.sock\$" /proc/net/unix || fail "att$k: not bound through its directory's descriptor"
        served=$((served + 1))
    else
        w=$(grep "stats socket" "$TMP/att$k.err" || true)
        case "$w" in *"not using the run directory $TMP/att/run: it is "*"; serving on the abstract socket @reshim-0/$APP_PID instead"*) ;;
        *) fail "att$k: neither a socket in the run dir nor a refusal: $w" ;; esac
        wait_abstract 0 "$APP_PID" || fail "att$k: no abstract socket"
        refused=$((refused + 1))
    fi
done
for k in 1 2 3 4 5 6 7 8; do stop_app "att$k"; done
[ -z "$(ls -A "$TMP/victim")" ] || fail "sockets were made in the victim directory: $(ls "$TMP/victim")"
# Left in the real run dir: only the sockets of apps that saw the path
# change under them at their 5-s check (a loaded machine) and left the file
# alone, as they must.
for f in "$TMP/att/run"/*; do
    [ -e "$f" ] || continue
    [ -S "$f" ] && [ ! -L "$f" ] && [ "$(stat -c %u "$f")" = 0 ] || fail "unexpected in the run dir: $(ls -la "$f")"
    grep -q "stats socket: $TMP/att/run/$(basename "$f") was removed; re-creating it" "$TMP"/att*.err ||
        fail "a socket was left in the run dir at exit: $f"
done
pass "run dir below a dir of uid $NOBODY while that uid made $(cat "$TMP/swaps2") swaps of it and a symlink to a victim dir: the victim dir stays empty; $served apps bound through the run dir's descriptor (/proc/self/fd/N/<pid>.sock) and answer there, $refused saw the symlink and went abstract; all removed at exit; control: a naive root bind through that path landed $naive of 400 sockets in it"

# The same parent, nobody swapping: served there, bound through the descriptor.
start_app att-quiet env RESHIM_RUN_DIR="$TMP/att/run2"
wait_sock "$TMP/att/run2/$APP_PID.sock" || { cat "$TMP/att-quiet.err" >&2; fail "att-quiet: no socket"; }
[ -z "$(grep "stats socket" "$TMP/att-quiet.err" || true)" ] || fail "att-quiet: a warning: $(cat "$TMP/att-quiet.err")"
grep -q " /proc/self/fd/[0-9]*/$APP_PID.sock\$" /proc/net/unix || fail "att-quiet: not bound through the descriptor"
# uid 65534 now moves the run dir away and puts its own in its place with a
# socket of its own at <pid>.sock: root's CLI does not take it for the app.
as_uid $NOBODY mv "$TMP/att/run2" "$TMP/att/run2.moved"
as_uid $NOBODY mkdir -m 700 "$TMP/att/run2"
as_uid $NOBODY "$PY" -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1); print("up", flush=True); time.sleep(30)' \
    "$TMP/att/run2/$APP_PID.sock" >"$TMP/fake2.out" 2>&1 & CHILDREN+=($!); FAKE2=$!
i=0; until grep -q up "$TMP/fake2.out" 2>/dev/null; do i=$((i + 1)); [ $i -gt 250 ] && fail "no fake socket"; sleep 0.02; done
rc=0; out=$(RESHIM_RUN_DIR="$TMP/att/run2" "$ROOT/build/reshim" stats "$APP_PID" 2>"$TMP/cli.err") || rc=$?
[ $rc != 0 ] && [ -z "$out" ] || fail "root's CLI took uid $NOBODY's socket for the app: $out"
stop_app att-quiet; kill "$FAKE2"
# At exit the path no longer leads to the app's directory: nothing is
# removed through it (the app's socket stays in the moved dir, uid 65534's
# is left alone).
[ -S "$TMP/att/run2/$APP_PID.sock" ] || fail "the app removed uid $NOBODY's socket"
[ "$(stat -c %U "$TMP/att/run2/$APP_PID.sock")" = nobody ] || fail "uid $NOBODY's socket was replaced"
pass "below a dir of uid $NOBODY, nobody swapping: served in the run dir, bound through its descriptor, no warning; when that uid moves the run dir away and plants its own socket, root's CLI does not take it ($(sed 's/^reshim: //' "$TMP/cli.err" | head -n 1)); at exit the app removes nothing through the changed path"

mkdir -m 775 "$TMP/grp"; chgrp $NOBODY "$TMP/grp"
mkdir -m 700 "$TMP/realp"; ln -s "$TMP/realp" "$TMP/linkp"
mkdir -m 1777 "$TMP/sticky"
launch_app grp env RESHIM_RUN_DIR="$TMP/grp/run"
launch_app linkp env RESHIM_RUN_DIR="$TMP/linkp/run"
launch_app sticky env RESHIM_RUN_DIR="$TMP/sticky/run"
wait_app grp
wait_sock "$TMP/grp/run/$APP_PID.sock" || { cat "$TMP/grp.err" >&2; fail "group-writable parent: no socket"; }
[ -z "$(grep "stats socket" "$TMP/grp.err" || true)" ] || fail "group-writable parent: a warning: $(cat "$TMP/grp.err")"
grep -q " /proc/self/fd/[0-9]*/$APP_PID.sock\$" /proc/net/unix || fail "group-writable parent: not bound through the descriptor"
stop_app grp
wait_app linkp
warned linkp "$TMP/linkp/run" "its parent $TMP/linkp is a symbolic link"
stop_app linkp; [ -z "$(ls -A "$TMP/realp")" ] || fail "something was made through the parent symlink"
wait_app sticky
wait_sock "$TMP/sticky/run/$APP_PID.sock" || { cat "$TMP/sticky.err" >&2; fail "sticky parent: no socket"; }
grep -q " $TMP/sticky/run/$APP_PID.sock\$" /proc/net/unix || fail "sticky parent: not bound at the plain path"
[ -z "$(grep "stats socket" "$TMP/sticky.err" || true)" ] || fail "sticky parent: a warning: $(cat "$TMP/sticky.err")"
stop_app sticky
pass "parents: group-writable 0775 served through the run dir's descriptor; a symlink refused (nothing made through it); sticky 1777 (like /tmp) served at the plain path"

# ---- a narrow umask ----
start_app umask sh -c 'umask 0277; exec "$@"' sh env RESHIM_RUN_DIR="$TMP/um"
wait_sock "$TMP/um/$APP_PID.sock" || { cat "$TMP/umask.err" >&2; fail "umask 0277: no socket"; }
[ "$(stat -c %a "$TMP/um") $(stat -c %a "$TMP/um/$APP_PID.sock")" = "700 600" ] ||
    fail "umask 0277: dir $(stat -c %a "$TMP/um"), socket $(stat -c %a "$TMP/um/$APP_PID.sock")"
stop_app umask
pass "umask 0277: the run dir made 0700 (through its descriptor), the socket 0600"

# ---- strace: no-follow forms only ----
command -v strace >/dev/null || fail "strace is not installed (scripts/install-deps.sh installs it)"
# traced NAME SNIPPET: runs the app under strace -f (SNIPPET first, in the
# shell that becomes the app), waits for its socket (or abstract), stops it.
traced() {
    local name=$1 snippet=$2
    rm -f "$TMP/quit.$name"
    strace -f -qq -s 256 -e trace=%file,bind,unlinkat -e signal=none -o "$TMP/$name.strace" \
        env D="$SRUN" sh -c "$snippet; exec env LD_PRELOAD='$SHIM' RESHIM_RUN_DIR='$SRUN' '$PY' '$TMP/app.py' '$TMP/quit.$name'" \
        >"$TMP/$name.out" 2>"$TMP/$name.err" &
    CHILDREN+=($!)
    local i=0
    while ! grep -q '^ready' "$TMP/$name.out" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 1000 ] && { cat "$TMP/$name.err" >&2; fail "$name: the app did not start under strace"; }
        sleep 0.02
    done
    APP_PID=$(sed -n 's/^ready //p' "$TMP/$name.out")
    i=0; until [ -S "$SRUN/$APP_PID.sock" ] || grep -q " @reshim-0/$APP_PID\$" /proc/net/unix; do
        i=$((i + 1)); [ $i -gt 500 ] && fail "$name: no socket under strace"; sleep 0.02
    done
    [ "$(ask "$([ -S "$SRUN/$APP_PID.sock" ] && echo "$SRUN/$APP_PID.sock" || echo "@reshim-0/$APP_PID")" version)" = "reshim $VERSION" ] ||
        fail "$name: no answer under strace"
    stop_app "$name"
    i=0; while [ -n "$(jobs -pr)" ] && kill -0 "$APP_PID" 2>/dev/null; do
        i=$((i + 1)); [ $i -gt 500 ] && fail "$name: the app did not exit"; sleep 0.02
    done
}
# check_trace NAME: every syscall line naming the run dir or <pid>.sock is
# one of the no-follow forms; prints the forms seen.
check_trace() {
    "$PY" - "$TMP/$1.strace" "$SRUN" "$APP_PID" <<'PYEOF'
import re, sys
log, d, pid = sys.argv[1], sys.argv[2], sys.argv[3]
name = pid + ".sock"
dq = re.escape(d)
comps = [c for c in d.split("/") if c]
cq = "|".join(re.escape(c) for c in comps)
nofollow_dir = r'(?=[^)]*O_PATH)(?=[^)]*O_NOFOLLOW)(?=[^)]*O_DIRECTORY)[^)]*\)'
allowed = [
    ("open / O_PATH", r'openat\(AT_FDCWD, "/", (?=[^)]*O_PATH)(?=[^)]*O_DIRECTORY)[^)]*\)'),
    ("walk: openat(dirfd, component, O_PATH|O_NOFOLLOW|O_DIRECTORY)", r'openat\(\d+, "(%s)", %s' % (cq, nofollow_dir)),
    ("mkdirat(dirfd, last, 0700)", r'mkdirat\(\d+, "%s", 0700\)' % re.escape(comps[-1])),
    ("fstatat(dirfd, component, NOFOLLOW)", r'newfstatat\(\d+, "(%s)", .*AT_SYMLINK_NOFOLLOW\)' % cq),
    ("reopen: open(dir, O_PATH|O_NOFOLLOW|O_DIRECTORY)", r'openat\(AT_FDCWD, "%s", %s' % (dq, nofollow_dir)),
    ("fstatat(dirfd, <pid>.sock, NOFOLLOW)", r'newfstatat\(\d+, "%s", .*AT_SYMLINK_NOFOLLOW\)' % re.escape(name)),
    ("unlinkat(dirfd, <pid>.sock)", r'unlinkat\(\d+, "%s", 0\)' % re.escape(name)),
    ("fchmodat(dirfd, <pid>.sock, 0600)", r'fchmodat\(\d+, "%s", 0600\)' % re.escape(name)),
    ("bind <dir>/<pid>.sock", r'bind\(\d+, \{sa_family=AF_UNIX, sun_path="%s/%s"\}' % (dq, re.escape(name))),
]
mine = re.compile(r'%s|"%s"|\(\d+, "(%s)"|openat\(AT_FDCWD, "/",' % (dq, re.escape(name), cq))
seen, bad, planted_pid = {}, [], None
# strace -f splits a call that another thread interrupts: "PID  call(args
# <unfinished ...>" and later "PID  <... call resumed>rest" (two spaces
# after the pid): joined again.
lines, pending = [], {}
for l in open(log).read().splitlines():
    p = l.split(" ", 1)[0]
    if l.endswith(" <unfinished ...>"):
        pending[p] = l[: -len(" <unfinished ...>")]
        continue
    m = re.match(r'(\d+)\s+<\.\.\. \w+ resumed>(.*)$', l)
    if m and m.group(1) in pending:
        l = pending.pop(m.group(1)) + m.group(2)
    lines.append(l)
lines += pending.values()
for l in lines:
    if "symlinkat(" in l or "mkfifo" in l or "mknodat(" in l:
        planted_pid = l.split()[0]           # the planting child (ln), not the app
for l in lines:
    if planted_pid and l.split()[0] == planted_pid:
        continue
    if not mine.search(l):
        continue
    if "execve(" in l:                       # the command line of sh/env
        continue
    for label, rx in allowed:
        if re.search(rx, l):
            seen[label] = seen.get(label, 0) + 1
            break
    else:
        bad.append(l)
if bad:
    print("not a no-follow form:\n  " + "\n  ".join(bad[:10]))
    sys.exit(1)
print("; ".join("%s x%d" % kv for kv in seen.items()))
PYEOF
}
SRUN="$TMP/srun"
traced plain ':'
forms=$(check_trace plain) || fail "strace, a fresh run dir: $forms"
case "$forms" in *"walk: openat"*) ;; *) fail "strace saw no walk to the run dir: $forms" ;; esac
case "$forms" in *"mkdirat"*) ;; *) fail "strace saw no mkdirat of the run dir: $forms" ;; esac
case "$forms" in *"bind"*) ;; *) fail "strace saw no bind: $forms" ;; esac
[ ! -e "$SRUN/$APP_PID.sock" ] || fail "the socket was not removed at exit"
echo "    fresh run dir: $forms"
echo precious > "$TMP/victim2"
traced planted 'ln -s "'"$TMP"'/victim2" "$D/$$.sock"'
forms=$(check_trace planted) || fail "strace, planted symlink: $forms"
if grep -v -e symlinkat -e execve "$TMP/planted.strace" | grep -q victim2; then fail "a syscall named the symlink's target: $(grep victim2 "$TMP/planted.strace")"; fi
if grep -E "(unlinkat|bind)\(.*$APP_PID\.sock" "$TMP/planted.strace" | grep -q .; then fail "the planted symlink was unlinked or bound: $(grep "$APP_PID.sock" "$TMP/planted.strace")"; fi
[ -L "$SRUN/$APP_PID.sock" ] && [ "$(cat "$TMP/victim2")" = precious ] || fail "the planted symlink or its target changed"
echo "    planted symlink: $forms"
pass "strace -f of the app: every file syscall on the run dir and <pid>.sock is a no-follow form; with a symlink planted at <pid>.sock only an fstatat(NOFOLLOW) touches it, its target is never named"
