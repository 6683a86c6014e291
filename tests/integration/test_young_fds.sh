#!/usr/bin/env bash
# The shim's descriptors stay out of the app's way.
# 1. A young process sees none of them. CPython's
# test_subprocess.test_pass_fds_redirected runs a child that lists every
# open fd (fstat 0..SC_OPEN_MAX) and expects exactly stdio + pass_fds; with
# the shim the child showed two more, the stats thread's wake pipe, opened as
# soon as the thread started (at the first network call or heap growth),
# although the socket itself waits until the process is 100 ms old.
# Here python3 makes a socket (which starts the thread), waits 10 ms for
# the thread to run, and lists /proc/self/fd; a sample counts only when the
# process is still under 90 ms old then (this machine may be slow: such
# samples are dropped, never judged). Every counted sample with the shim
# must list exactly the fds of the same program without it, and at least 5
# of 40 must count. A process that lives on (1 s) must have the stats
# socket: the shim was active.
# 2. An older process (its stats socket and wake pipe open) gets from
# open/dup/socket/pipe exactly the fd numbers it gets without the shim:
# ours sit at the top of the current fd table, which they never grow (the
# table's size stays that of the plain run: select() treats a closed fd past
# it differently) (CPython's test_os.test_closerange
# needs two consecutive free fds and skipped under the shim when a one-fd
# hole of the app's lay below the shim's pipe). With RLIMIT_NOFILE 64 they
# go below 64, and the app's numbers are still the same.
source "$(dirname "$0")/lib.sh"

[ -f "$SHIM" ] || fail "$SHIM is missing (make all)"

cat > "$TMP/young.py" <<'PYEOF'
import os, socket, sys, time
def age_ms():
    # start time of this process (clock ticks since boot) against CLOCK_BOOTTIME
    with open('/proc/self/stat') as f:
        start = int(f.read().rsplit(')', 1)[1].split()[19])
    return time.clock_gettime(time.CLOCK_BOOTTIME) * 1000 - start * 1000 / os.sysconf('SC_CLK_TCK')
socket.socket().close()  # a network call: the stats thread starts
time.sleep(0.01)
fds = sorted(int(x) for x in os.listdir('/proc/self/fd'))
a = age_ms()
print(('young' if a < 90 else 'old'), ','.join(map(str, fds)))
if len(sys.argv) > 1:
    time.sleep(float(sys.argv[1]))
    print('later', ','.join(sorted(os.listdir('/proc/self/fd'), key=int)))
PYEOF

# The fd list without the shim (listdir's own fd is in both).
plain=$("$PY" -I -S "$TMP/young.py" | awk '{print $2}')
counted=0
for _ in $(seq 40); do
    out=$(RESHIM_LOG=warn with_shim "$PY" -I -S "$TMP/young.py" 2>"$TMP/err")
    [ -s "$TMP/err" ] && fail "the shim wrote to stderr: $(head -n 3 "$TMP/err")"
    read -r age fds <<< "$out"
    [ "$age" = young ] || continue
    counted=$((counted + 1))
    [ "$fds" = "$plain" ] || fail "a young process has fds $fds with the shim, $plain without"
done
[ $counted -ge 5 ] || skip "only $counted of 40 samples were under 90 ms old (machine too loaded)"
pass "$counted young processes with the shim: fds $plain, the same as without"

# Past 100 ms the stats socket is there (so the shim was loaded and active).
out=$(with_shim "$PY" -I -S "$TMP/young.py" 1.0 | sed -n 's/^later //p')
n_plain=$("$PY" -I -S "$TMP/young.py" 1.0 | sed -n 's/^later //p' | tr ',' '\n' | wc -l)
n_shim=$(echo "$out" | tr ',' '\n' | wc -l)
[ "$n_shim" -gt "$n_plain" ] || fail "a 1 s old process has no more fds with the shim ($out): was it active?"
pass "a 1 s old process has its stats socket and wake pipe ($n_shim fds, $n_plain without)"

cat > "$TMP/numbers.py" <<'PYEOF'
import os, socket, time
socket.socket().close()       # the stats thread starts
time.sleep(0.4)               # past 100 ms: its socket and pipe are open
seq = []
a = os.open('/dev/null', os.O_RDONLY); b = os.open('/dev/null', os.O_RDONLY)
c = os.open('/dev/null', os.O_RDONLY)
seq += [a, b, c]
os.close(a)                   # a one-fd hole, then ask for two consecutive
d = os.dup(c); e = os.dup(c)
seq += [d, e]
s = socket.socket(); r, w = os.pipe()
seq += [s.fileno(), r, w]
# The fd table's size: a closed fd past it is ignored by select(), one
# within it is EBADF; the shim's fds must not grow it.
size = [l.split()[1] for l in open('/proc/self/status') if l.startswith('FDSize:')][0]
n = len(os.listdir('/proc/self/fd'))
print(','.join(map(str, seq)) + ';FDSize=' + size, n)
PYEOF
for lim in current 64; do
    want=$(bash -c "ulimit -n $([ $lim = current ] && ulimit -n || echo $lim); exec \"\$@\"" _ "$PY" -I -S "$TMP/numbers.py")
    got=$(bash -c "ulimit -n $([ $lim = current ] && ulimit -n || echo $lim); exec \"\$@\"" _ env LD_PRELOAD="$SHIM" "$PY" -I -S "$TMP/numbers.py")
    [ "${got% *}" = "${want% *}" ] || fail "fd limit $lim: the app's fds and fd table are ${got% *} with the shim, ${want% *} without"
    [ "${got#* }" -gt "${want#* }" ] || fail "fd limit $lim: no fd of the shim's in a 0.4 s old process ($got): was it active?"
    pass "fd limit $([ $lim = current ] && ulimit -n || echo $lim): the app's open/dup/socket/pipe numbers ${got% *}, the same as without the shim (${got#* } fds open, ${want#* } without)"
done
