"""Shared pieces of the outage harnesses (matrix.py, longlived.py): paths,
process helpers (every child gets PR_SET_PDEATHSIG and is killed at exit),
one temp dir per run, the cleanup that runs at exit and on SIGINT/SIGTERM/
SIGHUP (installed when this module is imported), the HAProxy sidecar (one
config for every harness), the nginx backend (one config and one way to
start, stop and count what it served) and the binomial tail used by the
assertions.

OUTAGE_HAPROXY_CONNECT (default 1s) sets HAProxy's timeout connect;
OUTAGE_RESHIM_ENV adds settings to the reshim cells; OUTAGE_KEEP=1 keeps the
peers' logs (the temp dir)."""
import atexit
import ctypes
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHIM = os.path.join(ROOT, "build", "libreshim.so")
PEERS = os.path.join(HERE, "peers")
IPEERS = os.path.join(ROOT, "tests", "integration", "peers")
PY = "/usr/bin/python3"
NGINX = "/usr/sbin/nginx"
# HAProxy waits min(timeout connect, 1 s) before a retry after a failed connect.
HAPROXY_CONNECT = os.environ.get("OUTAGE_HAPROXY_CONNECT", "1s")
# Settings for the reshim cells (default: none, the shim's defaults), e.g.
# OUTAGE_RESHIM_ENV="RESHIM_RETRIES=5 RESHIM_BACKOFF_BASE=200ms".
RESHIM_ENV = [x for x in os.environ.get("OUTAGE_RESHIM_ENV", "").split() if "=" in x]
TMP = tempfile.mkdtemp(prefix="reshim-outage.%d." % os.getpid())
CLEAN = []          # callables, run in reverse order at exit
PROCS = []          # long-lived peers we started


def cleanup():
    while CLEAN:
        f = CLEAN.pop()
        try:
            f()
        except Exception as e:  # keep cleaning
            print("outage: cleanup: %s" % e, file=sys.stderr)
    for p in PROCS:
        kill(p)
    if os.environ.get("OUTAGE_KEEP"):
        print("outage: logs kept in %s" % TMP, file=sys.stderr)
    else:
        shutil.rmtree(TMP, ignore_errors=True)


atexit.register(cleanup)
for _s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_s, lambda s, f: sys.exit(128 + s))


def kill(p):
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            pass


def run(cmd, check=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: rc %d: %s" % (" ".join(cmd), r.returncode, r.stdout.strip()))
    return r.stdout


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not re.match(r"(?i)^(https?|all|no)_proxy$|^LD_PRELOAD$|^RESHIM_", k)}
    return env


_GIVEN = set()                 # ports handed out: never twice in one run
_LOCK = threading.Lock()        # longlived.py calls these from threads
_SEQ = itertools.count()        # unique numbers for file names


def free_port():
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        with _LOCK:
            if p not in _GIVEN:
                _GIVEN.add(p)
                return p
    raise RuntimeError("no free port that was not handed out already")


_PRCTL = ctypes.CDLL(None).prctl    # resolved here, not in a child forked by a thread


def die_with_us():
    """In the child before exec: SIGTERM when the driver dies, even by SIGKILL.
    Linux sends it when the *thread* that forked the child ends: spawn from a
    thread that outlives the child (longlived.py's cyclers and cells do)."""
    _PRCTL(1, signal.SIGTERM)   # PR_SET_PDEATHSIG


def spawn(cmd, ns=None, env=None, **kw):
    full = (["ip", "netns", "exec", ns] if ns else []) + cmd
    p = subprocess.Popen(full, env=base_env() if env is None else env, stdin=subprocess.DEVNULL,
                         preexec_fn=die_with_us, **kw)
    PROCS.append(p)
    return p


def wait_line(p, word, secs=20):
    """Waits until the peer's log (p.log) has a line equal to word."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        with open(p.log, "rb") as f:
            if word.encode() in f.read().split(b"\n"):
                return
        if p.poll() is not None:
            break
        time.sleep(0.02)
    raise RuntimeError("peer %s did not say %r: %r" % (p.args, word, open(p.log).read()[-300:]))


def spawn_peer(cmd, ns=None, name="peer"):
    """A peer whose stdout and stderr go to TMP/NAME-N.log."""
    log = os.path.join(TMP, "%s-%d.log" % (name, next(_SEQ)))
    with open(log, "wb") as f:
        p = spawn(cmd, ns=ns, stdout=f, stderr=subprocess.STDOUT)
    p.log = log
    return p


def wait_ports(ports, ns=None, secs=20):
    code = ("import socket,sys,time\n"
            "end=time.monotonic()+%d\n"
            "for p in sys.argv[1:]:\n"
            "  while socket.socket().connect_ex(('127.0.0.1',int(p))):\n"
            "    if time.monotonic()>end: sys.exit('port %%s never listened'%%p)\n"
            "    time.sleep(0.02)\n" % secs)
    run((["ip", "netns", "exec", ns] if ns else []) + [PY, "-c", code] + [str(p) for p in ports])


# ---------------------------------------------------------------- haproxy

HAPROXY_CFG = """global
    maxconn 4096
defaults
    mode http
    timeout connect {connect}
    timeout client 10s
    timeout server 5s
    timeout queue 5s
    retries 3
    option redispatch
    retry-on all-retryable-errors
"""
HAPROXY_PAIR = """frontend fe_{k}
    bind 127.0.0.1:{fe}
    default_backend be_{k}
backend be_{k}
    server s1 {server}
"""


def haproxy(servers, ns=None):
    """One HAProxy, a frontend and backend per client kind: {kind: server} -> {kind: port}."""
    fes = {k: (free_port() if not ns else 18100 + i) for i, k in enumerate(sorted(servers))}
    cfg = os.path.join(TMP, "haproxy-%d.cfg" % next(_SEQ))
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(connect=HAPROXY_CONNECT) +
                "".join(HAPROXY_PAIR.format(k=k, fe=fes[k], server=servers[k])
                        for k in sorted(servers)))
    p = spawn_peer(["haproxy", "-db", "-f", cfg], ns=ns, name="haproxy")
    try:
        wait_ports(fes.values(), ns)
    except RuntimeError:
        raise RuntimeError("haproxy did not start: " + open(p.log).read())
    return p, fes


# ---------------------------------------------------------------- nginx

FILE = "f.txt"
BODY = b"reshim long-lived outage test file\n" * 16    # 560 bytes
NGINX_CONF = """user nobody nogroup;
worker_processes {workers};
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type text/plain;
    keepalive_timeout {keepalive};
    server {{
        listen 127.0.0.1:{port};
        root {d}/www;
    }}
}}
"""


def listening(port):
    """Does 127.0.0.1:port accept a connection? A probe that sends nothing: nginx
    logs no request for it. (/proc/net/tcp would make no connection, but one
    read of it costs milliseconds of kernel time with many TIME_WAIT sockets.)"""
    s = socket.socket()
    try:
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


def wait_state(port, up, secs):
    end = time.monotonic() + secs
    while listening(port) != up:
        if time.monotonic() > end:
            raise RuntimeError("port %d did not %s within %d s" % (
                port, "listen" if up else "close", secs))
        time.sleep(0.003)
    return time.monotonic()


def queued(port):
    """Connections waiting in the accept queue of 127.0.0.1:port (ss's Recv-Q
    of a listening socket), or -1 when nothing listens there."""
    out = run(["ss", "-Hltn", "sport = :%d" % port], check=False).split()
    return int(out[1]) if len(out) > 1 and out[0] == "LISTEN" else -1


class Nginx:
    """One nginx (Debian nginx-light, master + WORKERS, `user nobody nogroup;`,
    its own prefix, conf, pid and logs under TMP/NAME, a loopback port, one
    small static file FILE; keepalive_timeout KEEPALIVE). Every start is a new
    session, so that the whole group can be stopped or killed (freeze, crash).
    Needs root (the workers run as nobody)."""

    def __init__(self, name, port, workers=1, keepalive="75s"):
        self.d = os.path.join(TMP, name)
        self.port = port
        os.chmod(TMP, 0o711)       # the workers (nobody) reach their www below it
        os.makedirs(os.path.join(self.d, "www"))
        os.makedirs(os.path.join(self.d, "tmp"))
        for x in (self.d, os.path.join(self.d, "www")):
            os.chmod(x, 0o755)
        with open(os.path.join(self.d, "www", FILE), "wb") as f:
            f.write(BODY)
        os.chmod(os.path.join(self.d, "www", FILE), 0o644)
        self.conf = os.path.join(self.d, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(workers=workers, d=self.d, port=port, keepalive=keepalive))
        self.p = None
        self.events = []          # (t, "up"|"down") by the port's state
        self.starts, self.stops = [], []     # seconds to listen / to refuse

    def start(self):
        t = time.monotonic()
        with open(os.path.join(self.d, "stderr"), "ab") as f:
            self.p = spawn([NGINX, "-p", self.d + "/", "-c", self.conf, "-e",
                            os.path.join(self.d, "error.log")], stdout=f, stderr=subprocess.STDOUT,
                           start_new_session=True)
        try:
            now = wait_state(self.port, True, 20)
        except RuntimeError:
            raise RuntimeError("nginx did not start: %s" % open(os.path.join(self.d, "stderr"))
                               .read()[-400:])
        self.starts.append(now - t)
        self.events.append((now, "up"))

    def _gone(self, t, rc, ok):
        if self.p in PROCS:
            PROCS.remove(self.p)
        self.p = None
        now = wait_state(self.port, False, 10)
        self.stops.append(now - t)
        self.events.append((now, "down"))
        if rc not in ok:
            raise RuntimeError("nginx exited with %s" % rc)

    def halt(self):
        """SIGTERM (fast shutdown), until the master exited and the port refuses."""
        if self.p is None:
            return
        t = time.monotonic()
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        self._gone(t, rc, (0, -signal.SIGTERM))

    def freeze(self):
        """SIGSTOP to master and workers: the kernel still completes connections
        into the accept queue, nobody accepts them."""
        os.killpg(self.p.pid, signal.SIGSTOP)

    def crash(self):
        """SIGKILL to master and workers: the listening socket closes and the
        kernel resets every connection still in its accept queue."""
        if self.p is None:
            return
        t = time.monotonic()
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._gone(t, self.p.wait(), (-signal.SIGKILL,))

    def stop(self):
        """For cleanups: a frozen nginx does not act on SIGTERM."""
        if self.p is not None and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait()
        if self.p in PROCS:
            PROCS.remove(self.p)
        self.p = None

    @staticmethod
    def _mean(xs):
        return sum(xs) / len(xs) if xs else 0.0

    def served(self):
        """Requests for the file nginx logged with status 200."""
        n = 0
        try:
            with open(os.path.join(self.d, "access.log"), "rb") as f:
                for line in f:
                    if (b'"GET /%s ' % FILE.encode()) in line and b'" 200 ' in line:
                        n += 1
        except FileNotFoundError:
            pass
        return n


def parse_args(argv, opts, usage):
    """--NAME VALUE for each key of opts (its default), and --assert: returns
    (opts, check). Anything else exits with the usage text."""
    opts, check = dict(opts), False
    argv = list(argv)
    while argv:
        a = argv.pop(0)
        if a == "--assert":
            check = True
        elif a.startswith("--") and a[2:] in opts and argv:
            opts[a[2:]] = argv.pop(0)
        else:
            sys.exit(usage)
    return opts, check


def binom_tail(n, k, p):
    """P(X >= k) for X ~ Binomial(n, p)."""
    from math import comb
    return sum(comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))


def reshim_env(env):
    """env with the shim preloaded and OUTAGE_RESHIM_ENV applied."""
    env = dict(env)
    env["LD_PRELOAD"] = SHIM
    env.update(x.split("=", 1) for x in RESHIM_ENV)
    return env
