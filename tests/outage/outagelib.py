"""Shared pieces of the outage harnesses (matrix.py, longlived.py): paths,
process helpers (every child gets PR_SET_PDEATHSIG and is killed at exit),
one temp dir per run, the cleanup that runs at exit and on SIGINT/SIGTERM/
SIGHUP (installed when this module is imported), the HAProxy sidecar (one
config for every harness) and the binomial tail used by the assertions.

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
