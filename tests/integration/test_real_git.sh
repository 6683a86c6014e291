#!/usr/bin/env bash
# git over smart HTTP (peers/real/git_http.py runs `git http-backend` as a CGI;
# git-remote-http is libcurl, connecting non-blocking). A bare repository of
# 5 commits (text, binaries up to 1 MB) is served twice: by a plain server to
# plain git, and by a server under the shim to git under the shim (git, its
# git-remote-http, index-pack ... all preloaded):
#   - `git clone` both ways: fsck --full clean, HEAD and the whole tree
#     (ls-tree -r) equal to the bare repository's, the two checkouts
#     identical;
#   - 2 more commits pushed to the bare repository, `git fetch` both ways:
#     origin/main is the new head in each, fsck clean;
#   - no reshim warning (RESHIM_LOG=warn) or crash in git's or the servers'
#     stderr, every git command exits 0.
# Then the server starts listening 1.5 s after the clone begins: without the
# shim `git clone` fails at once ("Failed to connect", rc 128); under the
# shim (RESHIM_RETRIES=5: room for a slow start on a busy machine) the
# connect is retried and the clone is complete and identical.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/real_lib.sh"

command -v git >/dev/null || skip "git is not installed"
[ -f "$SHIM" ] && [ -x "$CLI" ] || fail "build first (make all)"
GIT_SERVER="$PEERS/real/git_http.py"
export GIT_CONFIG_NOSYSTEM=1 HOME="$TMP/home" GIT_TERMINAL_PROMPT=0
mkdir -p "$HOME"
git config --global user.name reshim; git config --global user.email reshim@test.invalid
git config --global init.defaultBranch main; git config --global advice.detachedHead false

# ---- the repository ----
commit() {   # commit N: one more commit in $TMP/work
    local i=$1
    echo "line $i" >>"$TMP/work/text.txt"
    head -c $((i * 200000)) /dev/urandom >"$TMP/work/blob$i.bin"
    mkdir -p "$TMP/work/dir$((i % 2))"; seq 1 $((i * 1000)) >"$TMP/work/dir$((i % 2))/seq$i.txt"
    git -C "$TMP/work" add -A && git -C "$TMP/work" commit -qm "commit $i"
}
git init -q "$TMP/work"
for i in 1 2 3 4 5; do commit $i; done
mkdir -p "$TMP/srv"
git clone -q --bare "$TMP/work" "$TMP/srv/repo.git"
head=$(git -C "$TMP/srv/repo.git" rev-parse HEAD)
tree=$(git -C "$TMP/srv/repo.git" ls-tree -r HEAD | sha256sum)

server() {   # server NAME PORT DELAY [env...]: git_http.py, listening DELAY s after now
    local name=$1 port=$2 delay=$3; shift 3
    env "$@" "$PY" "$GIT_SERVER" "$TMP/srv" "$port" "$delay" "$(date +%s.%N)" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    CHILDREN+=($!)
}
# check_clone DIR WHAT HEAD: fsck clean, HEAD and tree as the bare repository's
check_clone() {
    git -C "$1" fsck --full --no-progress 2>"$TMP/fsck.err" || fail "$2: git fsck: $(head -n 3 "$TMP/fsck.err")"
    [ "$(git -C "$1" rev-parse "${4:-HEAD}")" = "$3" ] || fail "$2: ${4:-HEAD} is $(git -C "$1" rev-parse "${4:-HEAD}"), expected $3"
}
# g NAME [env...] -- GIT ARGS: a git command; its stderr in NAME.err; must exit 0
g() {
    local name=$1; shift
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
    local rc=0
    env "${envs[@]}" timeout 60 git "$@" 2>"$TMP/$name.err" || rc=$?
    [ $rc -eq 0 ] || { cat "$TMP/$name.err" >&2; fail "$name: git $1 rc $rc"; }
}

p0=$(free_port); p1=$(free_port)
server srv0 "$p0" 0
server srv1 "$p1" 0 LD_PRELOAD="$SHIM" RESHIM_LOG=warn
wait_port "$p0" 20 || fail "the plain git server did not listen: $(cat "$TMP/srv0.err")"
wait_port "$p1" 20 || fail "the shimmed git server did not listen: $(cat "$TMP/srv1.err")"
SH=(LD_PRELOAD="$SHIM" RESHIM_LOG=warn)

g clone0 -- clone -q "http://127.0.0.1:$p0/repo.git" "$TMP/c0"
check_clone "$TMP/c0" "clone without the shim" "$head"
g clone1 "${SH[@]}" -- clone -q "http://127.0.0.1:$p1/repo.git" "$TMP/c1"
check_clone "$TMP/c1" "clone with the shim" "$head"
[ "$(git -C "$TMP/c1" ls-tree -r HEAD | sha256sum)" = "$tree" ] || fail "clone with the shim: the tree differs"
diff -r -x .git "$TMP/c0" "$TMP/c1" >&2 || fail "the checkouts differ without and with the shim"
clean_stderr "git clone" "$TMP/clone1.err"
pass "git clone without and with the shim: fsck clean, HEAD ${head:0:12}, same tree, identical checkouts ($(du -s -k "$TMP/c1" --exclude=.git | cut -f1) KB)"

for i in 6 7; do commit $i; done
git -C "$TMP/work" push -q "$TMP/srv/repo.git" main 2>"$TMP/push.err" || fail "push to the bare repository: $(cat "$TMP/push.err")"
head2=$(git -C "$TMP/srv/repo.git" rev-parse HEAD)
g fetch0 -- -C "$TMP/c0" fetch -q origin
check_clone "$TMP/c0" "fetch without the shim" "$head2" origin/main
g fetch1 "${SH[@]}" -- -C "$TMP/c1" fetch -q origin
check_clone "$TMP/c1" "fetch with the shim" "$head2" origin/main
[ "$(git -C "$TMP/c1" rev-list --count origin/main)" = 7 ] || fail "fetch with the shim: $(git -C "$TMP/c1" rev-list --count origin/main) commits, expected 7"
clean_stderr "git fetch" "$TMP/fetch1.err"
clean_stderr "shimmed git server" "$TMP/srv1.err"
pass "git fetch of 2 new commits without and with the shim: origin/main ${head2:0:12} in both, fsck clean"

# ---- the server starts 1.5 s late ----
p=$(free_port)
server late0 "$p" 1.5
rc=0; git clone -q "http://127.0.0.1:$p/repo.git" "$TMP/l0" 2>"$TMP/l0.err" || rc=$?
[ $rc -ne 0 ] || fail "late server, without the shim: the clone succeeded (server up already?)"
grep -qiE "Failed to connect|Couldn't connect" "$TMP/l0.err" || fail "late server, without the shim: $(cat "$TMP/l0.err")"
[ ! -e "$TMP/l0" ] || fail "a failed clone left $TMP/l0 behind"
wait_port "$p" 10 || fail "the late server never listened"
pass "late server, without the shim: git clone rc $rc ($(grep -o "Failed to connect.*" "$TMP/l0.err" | cut -c1-60))"
p=$(free_port)
server late1 "$p" 1.5
push_mark
g l1 RESHIM_LOG=info RESHIM_RETRIES=5 "$PUSHED" -- clone -q "http://127.0.0.1:$p/repo.git" "$TMP/l1"
check_clone "$TMP/l1" "late server, with the shim" "$head2"
diff -r -x .git "$TMP/work" "$TMP/l1" >&2 || fail "late server, with the shim: the checkout differs from the work tree"
clean_stderr "git clone (late)" "$TMP/l1.err"
rec=$(stat_sum net.connect.recovered)   # over git's processes, each pushing its own
ret=$(stat_sum net.connect.retries)
[ "$rec" -ge 1 ] && [ "$ret" -ge 1 ] || { cat "$TMP/l1.err" >&2; fail "late server, with the shim: connect retries=$ret recovered=$rec over git's processes"; }
pass "late server, with the shim: git clone complete (7 commits, fsck clean, checkout = work tree), connect retries=$ret recovered=$rec"
