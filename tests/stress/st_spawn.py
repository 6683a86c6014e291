"""st_spawn: N subprocesses from one python3 process (run under the shim).

    python3 st_spawn.py N

subprocess.run(['true']) N times (CPython uses vfork/posix_spawn underneath),
every 10th with shell=True (sh -c, which forks again), every 25th reading
the child's output through a pipe. Every run must succeed; the descriptors
of this process (/proc/self/fd, with what each points to) must be the same
before and after; with ST_STATS=1 the process's own stats socket must answer
before and after with its pid. Prints "spawned N ok M fds A -> B";
exit 0 only when all that holds."""
import os
import select
import socket
import subprocess
import sys
import time


def fds():
    out = {}
    for name in os.listdir('/proc/self/fd'):
        try:
            out[int(name)] = os.readlink('/proc/self/fd/' + name)
        except OSError:
            pass  # the listing's own descriptor
    return out


def settled_fds():
    # The stats thread closes its end of a finished question a moment
    # later: the set counts once it holds still.
    prev = fds()
    for _ in range(50):
        time.sleep(0.1)
        cur = fds()
        if cur == prev:
            return cur
        prev = cur
    return prev


def ask(req):
    d = os.environ.get('RESHIM_RUN_DIR') or '/tmp/reshim-%d' % os.getuid()
    path = '%s/%d.sock' % (d, os.getpid())
    end = time.monotonic() + 10
    while not os.path.exists(path):
        if time.monotonic() > end:
            return None
        select.select([], [], [], 0.02)  # a wait: where the shim may start its thread
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(path)
        s.sendall(req.encode() + b'\n')
        buf = b''
        while not buf.endswith(b'\n'):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return buf.decode()


def main():
    n = int(sys.argv[1])
    stats = os.environ.get('ST_STATS') == '1'
    if stats:
        first = ask('stats')
        if not first or '"pid":%d' % os.getpid() not in first:
            print('st_spawn: no stats answer before the runs: %r' % first, file=sys.stderr)
            return 1
    before = settled_fds()
    ok = 0
    for i in range(n):
        if i % 25 == 0:
            r = subprocess.run(['echo', 'x%d' % i], stdout=subprocess.PIPE)
            good = r.returncode == 0 and r.stdout == b'x%d\n' % i
        elif i % 10 == 0:
            r = subprocess.run('true && true', shell=True)
            good = r.returncode == 0
        else:
            r = subprocess.run(['true'])
            good = r.returncode == 0
        if good:
            ok += 1
        else:
            print('st_spawn: run %d failed: %r' % (i, r), file=sys.stderr)
    after = settled_fds()
    rc = 0 if ok == n else 1
    if before != after:
        print('st_spawn: descriptors before %r, after %r' % (before, after), file=sys.stderr)
        rc = 1
    if stats:
        last = ask('stats')
        if not last or '"pid":%d' % os.getpid() not in last:
            print('st_spawn: no stats answer after the runs: %r' % last, file=sys.stderr)
            rc = 1
    print('spawned %d ok %d fds %d -> %d' % (n, ok, len(before), len(after)))
    return rc


sys.exit(main())
