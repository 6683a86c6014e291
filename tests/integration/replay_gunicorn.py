#!/usr/bin/python3
"""replay_gunicorn.py SIGNAL RESTARTS SHIM|none: gunicorn (Debian's
python3-gunicorn, one sync worker) restarted RESTARTS times with SIGNAL (TERM:
its graceful shutdown, which closes the listener and resets what waits in its
accept queue; KILL: the whole process group at once) while one client
process with 6 threads sends GETs (urllib, a new connection each, timeout
10 s), under the shim or not. Prints "result OK FAILED" and the failures by
reason; with the shim, the pushed stats' replay and connect figures."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sig, restarts, shim = sys.argv[1], int(sys.argv[2]), sys.argv[3]
PY = "/usr/bin/python3"
tmp = tempfile.mkdtemp(prefix="reshim-gunicorn.")
open(os.path.join(tmp, "app.py"), "w").write(
    "def app(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [b'ok\\n']\n")
s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()


def listening():
    c = socket.socket()
    try:
        return c.connect_ex(("127.0.0.1", port)) == 0
    finally:
        c.close()


def start():
    p = subprocess.Popen([PY, "-m", "gunicorn", "-w", "1", "-k", "sync", "-b",
                          "127.0.0.1:%d" % port, "--chdir", tmp, "--graceful-timeout", "5",
                          "app:app"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    for _ in range(400):
        if listening():
            return p
        time.sleep(0.01)
    raise SystemExit("gunicorn did not listen")


CLIENT = """
import sys, threading, time, urllib.request
stop = time.monotonic() + %(secs)f
ok, failed, why = [0], [0], {}
lock = threading.Lock()
def loop():
    while time.monotonic() < stop:
        try:
            good = urllib.request.urlopen("http://127.0.0.1:%(port)d/", timeout=10).read() == b"ok\\n"
            err = None if good else "bad body"
        except Exception as e:
            err = type(e).__name__ + ": " + str(e)[:60]
        with lock:
            if err:
                failed[0] += 1
                why[err] = why.get(err, 0) + 1
            else:
                ok[0] += 1
        time.sleep(0.02)
ts = [threading.Thread(target=loop) for _ in range(6)]
[t.start() for t in ts]
[t.join() for t in ts]
print("result", ok[0], failed[0])
for k, v in sorted(why.items(), key=lambda kv: -kv[1]):
    print("why %%d %%s" %% (v, k))
"""

random.seed(13)
g = start()
cycle = []
for _ in range(restarts):
    cycle.append((random.uniform(0.4, 0.8), random.uniform(0.1, 0.3)))
secs = sum(u + d + 0.6 for u, d in cycle)  # up, down, and gunicorn's own start-up
env = dict(os.environ)
env.pop("LD_PRELOAD", None)
push = None
if shim != "none":
    push = os.path.join(tmp, "push.sock")
    ps = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ps.bind(push)
    ps.settimeout(0.5)
    env.update(LD_PRELOAD=shim, RESHIM_PUSH=push)
    rows, draining = [], [True]

    def drain():  # at once: a unix datagram queue holds only a few
        while draining[0]:
            try:
                rows.append(json.loads(ps.recv(1 << 20)))
            except socket.timeout:
                pass
    drainer = threading.Thread(target=drain)
    drainer.start()
client = subprocess.Popen([PY, "-c", CLIENT % {"port": port, "secs": secs}], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
downs = []
for up, down in cycle:
    time.sleep(up)
    t_kill = time.monotonic()
    os.killpg(g.pid, signal.SIGTERM if sig == "TERM" else signal.SIGKILL)
    g.wait()
    for _ in range(500):  # until every process of it is gone and the port refuses
        if not listening():
            break
        time.sleep(0.01)
    time.sleep(down)
    g = start()
    downs.append(time.monotonic() - t_kill)
out = client.communicate(timeout=secs + 60)[0].decode()
os.killpg(g.pid, signal.SIGKILL)
g.wait()
print(out.strip())
print("down mean %.2f s, max %.2f s (signal to listening again)" % (sum(downs) / len(downs),
                                                                    max(downs)))
if push:
    time.sleep(0.6)
    draining[0] = False
    drainer.join()
    last = [r for r in rows if r["pid"] == client.pid][-1]
    r, c = last["net"]["replay"], last["net"]["connect"]
    print("stats replays %d (nothing_sent %d, http_request %d) recovered %d gave_up %d; "
          "connect retries %d recovered %d gave_up %d" % (
              r["nothing_sent"] + r["tls_hello"] + r["http_request"], r["nothing_sent"],
              r["http_request"], r["recovered"], r["gave_up"], c["retries"], c["recovered"],
              c["gave_up"]))
