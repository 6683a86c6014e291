#!/usr/bin/env bash
# alone: it works in the shared run directories (/tmp/reshim-UID, abstract names) that other tests' processes use
# No request can make the shim read or write a file (needs root: strace
# attaches to a running app). A real python3 app runs under the shim with
# strace -f -p attached to all its threads while 60 hostile requests arrive
# on its stats socket (paths, "../", "heap /etc/passwd", "watch -1",
# "trim ../../x", configuration changes, format strings, NUL bytes, bytes
# that are not UTF-8, shell syntax, a line over the 4 KiB limit, ...):
#   - each gets one line: {"error":...} or a normal answer (the few valid
#     requests among them), valid JSON;
#   - strace sees no file syscall in response: no open for writing, no
#     create, unlink, rename, truncate, mkdir, chmod, no write(); the only
#     opens are the shim's reads of /proc/self/{comm,statm} (and cgroup
#     files). Control: the same strace sees the app's own write of its result
#     line, so the trace is live;
#   - no file named in a request is created or changed; the app runs on and
#     its result is exact.
#   - RESHIM_PUSH naming a regular file, a symlink to one, a FIFO, a
#     directory or a missing path: nothing is written, created or opened.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/security_lib.sh"
security_require_root
command -v strace >/dev/null || fail "strace is not installed (scripts/install-deps.sh installs it)"
security_write_app
echo precious > "$TMP/canary"; chmod 600 "$TMP/canary"
canary_sum=$(sha256sum < "$TMP/canary")
passwd_sum=$(sha256sum < /etc/passwd)

RUN="$TMP/run"
start_app app env RESHIM_RUN_DIR="$RUN" RESHIM_HEAP_SAMPLE=4096
S="$RUN/$APP_PID.sock"
wait_sock "$S" || { cat "$TMP/app.err" >&2; fail "no socket $S"; }
[ "$(ask "$S" version)" = "reshim $VERSION" ] || fail "the app does not answer"
# First requests of each kind before tracing: the one-time reads (comm,
# the unwinder's first load) are not what is looked for.
ask "$S" stats >/dev/null; ask "$S" "heap 3" >/dev/null

strace -f -ff -qq -s 200 -e trace=%file,write,writev,pwrite64,ftruncate,truncate,rename,renameat,renameat2,creat -e signal=none \
    -o "$TMP/app.strace" -p "$APP_PID" 2>"$TMP/strace.err" &
ST=$!; CHILDREN+=("$ST")
# All threads traced (TracerPid set in each task)?
i=0; while :; do
    untraced=0
    for t in /proc/"$APP_PID"/task/*; do
        [ "$(awk '/^TracerPid/ {print $2}' "$t/status" 2>/dev/null)" = "$ST" ] || untraced=1
    done
    [ $untraced = 0 ] && break
    i=$((i + 1)); [ $i -gt 500 ] && fail "strace did not attach to every thread: $(cat "$TMP/strace.err")"
    sleep 0.02
done

long=$(printf 'A%.0s' $(seq 5000))
near=$(printf 'B%.0s' $(seq 4090))
requests=(
    "heap /etc/passwd" "heap ../../etc/passwd" "heap $TMP/canary" "heap 5 $TMP/canary" "heap -5" "heap 0"
    "heap 1001" "heap 99999999999999999999" "heap 0x10" "heap 5e2"
    "trim ../../x" "trim $TMP/new1" "trim /etc/passwd" "trim now"
    "watch -1" "watch 0" "watch 9" "watch 3600001" "watch 99999999999999" "watch 1e3" "watch 10 $TMP/new2" "watch ../x"
    "stats $TMP/canary" "stats ../../../etc/shadow" "metrics $TMP/new3" "version $TMP/new4" "help $TMP/new5"
    "config RESHIM_LOG_FILE=$TMP/new6" "config set RESHIM_RUN_DIR $TMP/new7" "RESHIM_LOG_FILE=$TMP/new8"
    "config RESHIM_PUSH=$TMP/new9" "set log debug" "log $TMP/new10" "push $TMP/new11" "dump $TMP/new12"
    "load $TMP/canary" "exec /bin/sh" "open $TMP/canary" "write $TMP/canary x"
    '%n%n%n%n' '%s%s%s%s%s%s' '%x%p%ld%99999d' "stats %n" "heap %n"
    '\x00stats' "stats\\x00$TMP/new13" 'heap 5\x00/etc/passwd' '\xff\xfe\xfd' '\x1b[2J\x1b]0;x\x07'
    "\$(touch $TMP/new14)" "\`touch $TMP/new15\`" "metrics; touch $TMP/new16" "../../../../etc/passwd"
    "/etc/passwd" "$TMP/canary" "STATS" "Stats" "$near" "$long" 'stats\r'
)
# One client process, one connection per request (each body is a python
# bytes-literal body: \x00 is a NUL byte).
printf '%s\n' "${requests[@]}" > "$TMP/requests"
n=${#requests[@]}
"$PY" - "$CLIENT_DIR" "$S" "$TMP/requests" > "$TMP/kinds" <<'PYEOF' || fail "a request got a bad answer (above)"
import ast, json, sys
sys.path.insert(0, sys.argv[1])
import stats_client as sc
for k, body in enumerate(open(sys.argv[3]).read().split("\n")[:-1], 1):
    req = ast.literal_eval('b"' + body + '"')
    a = sc.request(sys.argv[2], req).decode(errors="replace")
    why = None
    if a.count("\n") != 1 or not a.endswith("\n"):
        why = "not one line"
    else:
        try:
            o = json.loads(a)
            if not isinstance(o, dict) or ("error" not in o and "pid" not in o and "trimmed_bytes" not in o):
                why = "neither an error nor a normal answer"
        except ValueError:
            why = "not JSON"
    if why:
        sys.stderr.write("request %d (%r): %s: %r\n" % (k, req[:60], why, a[:200]))
        sys.exit(1)
    print("error" if "error" in o else "normal: %r" % req[:40])
PYEOF
# The valid requests (stats with \r, trim) are normal; all the others errors.
normal=$(grep -c '^normal' "$TMP/kinds" || true); errors=$(grep -c '^error' "$TMP/kinds" || true)
[ "$normal" -le 2 ] || fail "more normal answers than expected: $(grep '^normal' "$TMP/kinds")"
[ $((normal + errors)) = ${#requests[@]} ] || fail "answers: $normal normal + $errors errors != ${#requests[@]}"
ans=$(ask "$S" stats)
case "$ans" in "{\"pid\":$APP_PID,"*) ;; *) fail "the app stopped answering: ${ans:0:100}" ;; esac
stop_app app
i=0; while kill -0 "$APP_PID" 2>/dev/null; do i=$((i + 1)); [ $i -gt 500 ] && fail "the app did not exit"; sleep 0.02; done
wait "$ST" 2>/dev/null || true
# One file per thread (-ff: no interleaved "unfinished" lines): "TID syscall".
for f in "$TMP"/app.strace.*; do sed "s/^/${f##*.} /" "$f"; done > "$TMP/app.strace"
[ "$(sed -n 's/^done //p' "$TMP/app.out")" = 2000 ] || fail "the app's output: $(cat "$TMP/app.out")"
for k in $(seq 16); do [ ! -e "$TMP/new$k" ] || fail "$TMP/new$k was created"; done
[ "$(sha256sum < "$TMP/canary")" = "$canary_sum" ] && [ "$(sha256sum < /etc/passwd)" = "$passwd_sum" ] || fail "a file changed"

# The trace: the control first (the app's own result line), then nothing else.
grep -q "^$APP_PID "' *write(1, "done' "$TMP/app.strace" || fail "control: strace did not see the app's own write: $(tail -n 5 "$TMP/app.strace")"
"$PY" - "$TMP/app.strace" "$APP_PID" <<'PYEOF' || fail "file syscalls in response to requests (above)"
import re, sys
log, pid = sys.argv[1], sys.argv[2]
ok_open = re.compile(r'openat\(AT_FDCWD, "/(proc/self/(comm|statm|status|smaps_rollup)|sys/fs/cgroup/[^"]*)", O_RDONLY\|O_CLOEXEC\)')
fd_stat = re.compile(r'newfstatat\(\d+, "", .*AT_EMPTY_PATH\)|^fstat\(')  # identity checks of its own fds
app_own = re.compile(r'newfstatat\(AT_FDCWD, "[^"]*/quit\.app", |^write\(1, ')  # the app: its quit file, its output
exit_forms = [  # at exit: the socket's removal through the run directory, the wake-up of the thread
    re.compile(r'^write\(\d+, "\\1", 1\)'),
    re.compile(r'openat\(AT_FDCWD, "[^"]*", (?=[^)]*O_PATH)(?=[^)]*O_NOFOLLOW)[^)]*\)'),
    re.compile(r'newfstatat\(\d+, "%s\.sock", .*AT_SYMLINK_NOFOLLOW\)' % pid),
    re.compile(r'unlinkat\(\d+, "%s\.sock", 0\)' % pid),
]
bad, seen = [], {}
for l in open(log).read().splitlines():
    body = l.split(None, 1)[1] if " " in l else l
    if body.startswith("+++") or body.startswith("---") or "resumed>" in body and "= " not in body:
        continue
    tid = l.split()[0]
    if tid == pid and app_own.search(body):
        seen["the app's own (main thread)"] = seen.get("the app's own (main thread)", 0) + 1
        continue
    if fd_stat.search(body):
        seen["fstat of its descriptors"] = seen.get("fstat of its descriptors", 0) + 1
        continue
    if ok_open.search(body):
        seen["read " + ok_open.search(body).group(1)] = seen.get("read " + ok_open.search(body).group(1), 0) + 1
        continue
    if any(rx.search(body) for rx in exit_forms):
        seen["exit: socket removal"] = seen.get("exit: socket removal", 0) + 1
        continue
    bad.append(l)
if bad:
    print("\n".join(bad[:20]))
    sys.exit(1)
print("    traced file syscalls: " + "; ".join("%s x%d" % kv for kv in sorted(seen.items())))
PYEOF
pass "$n hostile requests (paths, ../, heap /etc/passwd, watch -1, trim ../../x, config changes, format strings, NUL, non-UTF-8, shell syntax, ${#long}-byte line): $errors errors, $normal normal answers, each one JSON line; strace saw no file syscall but the shim's /proc reads (control: it saw the app's own write); nothing created or changed; the app answered and finished exactly"

# ---- RESHIM_PUSH at things that are not sockets ----
echo file > "$TMP/p.file"; ln -s "$TMP/p.file" "$TMP/p.link"; mkfifo "$TMP/p.fifo"; mkdir "$TMP/p.dir"
ln -s "$TMP/p.made" "$TMP/p.dangling"
for tgt in p.file p.link p.fifo p.dir p.missing p.dangling; do
    rm -f "$TMP/quit.push-$tgt"
    env LD_PRELOAD="$SHIM" RESHIM_PUSH="$TMP/$tgt" RESHIM_INTERVAL=10ms RESHIM_RUN_DIR="$RUN" \
        "$PY" -c 'import socket, time; time.sleep(0.15); socket.socket().close(); time.sleep(0.3); print("ok")' \
        >"$TMP/push-$tgt.out" 2>"$TMP/push-$tgt.err" || fail "push to $tgt: the app failed: $(cat "$TMP/push-$tgt.err")"
    [ "$(cat "$TMP/push-$tgt.out")" = ok ] || fail "push to $tgt: output $(cat "$TMP/push-$tgt.out")"
done
[ "$(cat "$TMP/p.file")" = file ] && [ -L "$TMP/p.link" ] && [ -p "$TMP/p.fifo" ] && [ -z "$(ls -A "$TMP/p.dir")" ] ||
    fail "a push target changed"
[ ! -e "$TMP/p.missing" ] && [ ! -e "$TMP/p.made" ] || fail "a push created a file"
"$PY" -c 'import os,sys
try:
    os.open(sys.argv[1], os.O_WRONLY | os.O_NONBLOCK); sys.exit("the FIFO has a reader")
except OSError as e:
    sys.exit(0 if e.errno == 6 else "unexpected %s" % e)' "$TMP/p.fifo" || fail "FIFO check"
pass "RESHIM_PUSH (every 10 ms) at a regular file, a symlink to it, a FIFO, a directory, a missing path, a dangling symlink: nothing written, created or opened; the apps ran normally"
