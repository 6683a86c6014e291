#!/usr/bin/python3
"""replay_cases.py SHIM [PART]: the replay cases of RESHIM_REPLAY (libreshim(7)) with real
clients against tests/integration/peers/replay_peer.py, each run without the
shim and with it. Figures come from the stats JSON the shim pushes at exit
(RESHIM_PUSH), request counts from the peer's own log. Exit 0 when every
case holds; prints one line per case."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

SHIM = sys.argv[1]
HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peers", "replay_peer.py")
PY = "/usr/bin/python3"
TMP = tempfile.mkdtemp(prefix="reshim-replay.")
FAILED = []
# Requests per rescue case: 10 under make check, 20 under make check-full.
REPS = 20 if os.environ.get("RESHIM_CHECK_FULL") == "1" else 10
# PART (the second argument): "loops", only the event-loop cases (their lag
# is judged, so test_replay_loops.sh runs alone); "others", every other case
# (test_replay.sh, beside other tests); both without it.
PART = sys.argv[2] if len(sys.argv) > 2 else "all"
if PART not in ("all", "loops", "others"):
    sys.exit("replay_cases.py: unknown part %r (loops, others)" % PART)
LOOPS, OTHERS = PART != "others", PART != "loops"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Peer:
    def __init__(self, mode, n):
        self.port = free_port()
        self.log = os.path.join(TMP, "peer-%s-%d.log" % (mode, self.port))
        self.p = subprocess.Popen([PY, PEER, mode, str(n), str(self.port)],
                                  stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        for _ in range(200):
            if "ready" in open(self.log).read():
                return
            time.sleep(0.02)
        raise SystemExit("peer %s did not start" % mode)

    def requests(self, method=None):
        rows = [l.split() for l in open(self.log) if l.startswith("req ")]
        return [r for r in rows if method is None or r[2] == method]

    def stop(self):
        self.p.kill()
        self.p.wait()


class Push:
    """Receives the stats datagrams the shim pushes (RESHIM_PUSH)."""
    def __init__(self):
        self.path = os.path.join(TMP, "push-%d.sock" % len(os.listdir(TMP)))
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(self.path)
        self.s.settimeout(0.2)
        self.rows = []
        self.stop_ = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_:
            try:
                self.rows.append(json.loads(self.s.recv(1 << 20)))
            except socket.timeout:
                pass

    def final(self, pid):
        """The last datagram of pid (its exit one)."""
        for _ in range(100):
            mine = [r for r in self.rows if r["pid"] == pid]
            if mine:
                time.sleep(0.1)
                return [r for r in self.rows if r["pid"] == pid][-1]
            time.sleep(0.05)
        raise SystemExit("no stats datagram from pid %d" % pid)

    def close(self):
        self.stop_ = True
        self.t.join()
        self.s.close()


def run_client(code, shim, push=None, env=None, timeout=60):
    """Runs python3 -c code (or the argv list code); returns (pid, returncode,
    stdout and stderr)."""
    e = dict(os.environ)
    e.pop("LD_PRELOAD", None)
    if shim:
        e["LD_PRELOAD"] = SHIM
        e["RESHIM_PUSH"] = push.path
        e["RESHIM_BACKOFF_BASE"] = "20ms"
        e["RESHIM_BACKOFF_MAX"] = "100ms"
    e.update(env or {})
    argv = code if isinstance(code, list) else [PY, "-c", code]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    out, err = p.communicate(timeout=timeout)
    return p.pid, p.returncode, out.decode() + err.decode()


def check(cond, what):
    if cond:
        print("  ok: " + what)
    else:
        print("  FAIL: " + what)
        FAILED.append(what)


def replays(stats):
    r = stats["net"]["replay"]
    return r["nothing_sent"] + r["tls_hello"] + r["http_request"]


URLLIB_GET = """
import urllib.request, sys
ok = 0
for i in range(%(reps)d):
    try:
        b = urllib.request.urlopen("http://127.0.0.1:%(port)d/get%%d" %% i).read()
        ok += b.startswith(b"ok")
    except Exception as e:
        print("error", type(e).__name__, e)
print("done", ok)
"""

SESSION_GET = """
import requests
s = requests.Session()
ok = 0
for i in range(%(reps)d):
    try:
        r = s.get("http://127.0.0.1:%(port)d/s%%d" %% i)
        ok += r.text.startswith("ok")
    except Exception as e:
        print("error", type(e).__name__, e)
print("done", ok)
"""

SEND_ONE = """
import socket, sys
c = socket.create_connection(("127.0.0.1", %(port)d))
c.sendall(%(data)r)
try:
    d = b""
    while True:
        x = c.recv(4096)
        if not x:
            break
        d += x
    print("result eof", len(d))
except OSError as e:
    print("result", type(e).__name__)
"""


LATE_SEND = """
import socket, time
ok = 0
for i in range(%(reps)d):
    c = socket.create_connection(("127.0.0.1", %(port)d))
    time.sleep(0.05)  # the reset arrives before anything is sent
    try:
        c.sendall(b"GET /late HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n")
        ok += c.recv(100).startswith(b"HTTP/1.1 200")
    except OSError as e:
        print("error", type(e).__name__)
    c.close()
print("done", ok)
"""


NODE_GET = """
const http = require('http');
const port = %(port)d, N = %(reps)d;
let ok = 0, n = 0;
function next() {
  if (n++ >= N) { console.log('done', ok); return; }
  http.get({host: '127.0.0.1', port, path: '/n' + n, agent: false}, (res) => {
    res.resume(); res.on('end', () => { ok += res.statusCode === 200; next(); });
  }).on('error', (e) => { console.log('error', e.code); next(); });
}
next();
"""


class Curl(str):
    """curl fetching the URL reps times in one process (a new connection
    each: the peer closes them); prints done N like the other clients."""
    def __mod__(self, args):
        urls = ["http://127.0.0.1:%d/c%d" % (args["port"], i) for i in range(args["reps"])]
        return ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}\n"] + urls


class Node(str):
    """node running NODE_GET (or the program given)."""
    def __new__(cls, prog=None):
        o = str.__new__(cls, "node")
        o.prog = prog or NODE_GET
        return o

    def __mod__(self, args):
        path = os.path.join(TMP, "get-%d.js" % args["port"])
        open(path, "w").write(self.prog % args)
        return ["node", path]


def done(out):
    codes = [l for l in out.splitlines() if l.strip().isdigit() and len(l.strip()) == 3]
    if codes:  # curl's -w lines
        return sum(1 for c in codes if c == "200")
    for l in out.splitlines():
        if l.startswith("done "):
            return int(l.split()[1])
    return -1


def rescue_case(label, mode, n, code, reps, want_case):
    """Without the shim the clients fail; with it every request succeeds."""
    peer = Peer(mode, n)
    _, _, out = run_client(code % {"port": peer.port, "reps": reps}, False)
    bare = done(out)
    peer.stop()
    peer = Peer(mode, n)
    push = Push()
    pid, rc, out = run_client(code % {"port": peer.port, "reps": reps}, True, push)
    st = push.final(pid)
    push.close()
    peer.stop()
    ok = done(out)
    r = st["net"]["replay"]
    check(bare < reps, "%s: without the shim %d of %d succeed" % (label, bare, reps))
    check(ok == reps, "%s: with reshim %d of %d succeed (%s)" % (label, ok, reps,
          ", ".join("%s=%d" % (k, v) for k, v in r.items() if v)))
    # "a|b": replays counted as a or b; "a!": a among them at least once.
    must = [c.rstrip("!") for c in want_case.split("|") if c.endswith("!")]
    cases = [c.rstrip("!") for c in want_case.split("|")]
    check(sum(r[c] for c in cases) == replays(st) > 0 and all(r[c] > 0 for c in must) and
          r["gave_up"] == 0,
          "%s: replays counted as %s, none gave up" % (label, " or ".join(cases)))
    dests = [d for d in st["net"]["destinations"] if d["dest"] == "127.0.0.1:%d" % peer.port]
    check(dests and sum(dests[0]["replay"][k] for k in ("nothing_sent", "tls_hello", "http_request"))
          == replays(st), "%s: the destination's row counts the same replays" % label)


def never_case(label, mode, n, data, method):
    """Never replayed: the same outcome, the request seen as often, both ways."""
    seen, results = [], []
    for shim in (False, True):
        peer = Peer(mode, n)
        push = Push() if shim else None
        pid, rc, out = run_client(SEND_ONE % {"port": peer.port, "data": data}, shim, push)
        res = [l for l in out.splitlines() if l.startswith("result")]
        results.append(res[0] if res else out.strip()[-200:])
        if shim:
            st = push.final(pid)
            push.close()
            check(replays(st) == 0, "%s: no replay counted" % label)
        time.sleep(0.2)
        seen.append(len(peer.requests(method)))
        peer.stop()
    check(results[0] == results[1], "%s: the app sees the same outcome (%s / %s)"
          % (label, results[0], results[1]))
    check(seen[0] == seen[1] and seen[0] > 0,
          "%s: the server saw the request %d times without the shim, %d with" % (label, *seen))


GET = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
if OTHERS:
    print("replay: rescued")
    rescue_case("urllib GET, reset on accept (every 2nd connection)", "reset-accept", -2, URLLIB_GET,
                REPS, "nothing_sent|http_request")
    URLLIB_TIMEOUT = URLLIB_GET.replace('/get%%d" %% i)', '/get%%d" %% i, timeout=10)')
    rescue_case("urllib GET with a timeout (non-blocking socket), reset on accept", "reset-accept",
                -2, URLLIB_TIMEOUT, REPS, "nothing_sent|http_request")
    rescue_case("curl (non-blocking, poll), reset on accept", "reset-accept", -2, Curl(), REPS,
                "nothing_sent|http_request")
    rescue_case("curl, reset after the request was read", "reset-request", -2, Curl(), REPS,
                "http_request")
    if shutil.which("node"):
        # 20 always: node sees many of these resets as its connect completes
        # (rescued by the connect retry, no replay), and the case wants a replay.
        rescue_case("node http.get (non-blocking, epoll), reset on accept", "reset-accept", -2,
                    Node(), 20, "nothing_sent|http_request")
        rescue_case("node http.get, end of file after the request was read", "eof-request", -2,
                    Node(), REPS, "http_request")
    rescue_case("a GET sent once the reset had arrived (send fails)", "reset-accept", -2, LATE_SEND,
                10, "nothing_sent!|http_request")
    rescue_case("urllib GET, reset after the request was read", "reset-request", -2, URLLIB_GET, REPS,
                "http_request")
    rescue_case("urllib GET, closed (EOF) after the request was read", "eof-request", -2, URLLIB_GET,
                REPS, "http_request")
    try:
        import requests  # noqa: F401
        rescue_case("requests Session, reused keep-alive connection closed under a GET",
                    "keepalive-drop", 1000, SESSION_GET, REPS, "http_request")
    except ImportError:
        print("  skip: python3-requests is not installed")
    for mode in ("connect", "off"):
        peer = Peer("reset-accept", -2)
        push = Push()
        pid, rc, out = run_client(URLLIB_GET % {"port": peer.port, "reps": 10}, True, push,
                                  {"RESHIM_REPLAY": mode})
        st = push.final(pid)
        push.close()
        peer.stop()
        check(done(out) == 5 and replays(st) == 0,
              "RESHIM_REPLAY=%s: 5 of 10 succeed (every 2nd reset), %d replays" % (mode, replays(st)))
    pid, rc, out = run_client("print('done', 1)", True, Push(), {"RESHIM_REPLAY": "always"})
    check(out.count("RESHIM_REPLAY") == 1 and done(out) == 1,
          "RESHIM_REPLAY=always: one warning, the app runs on")
ASYNCIO_LOOP = """
import asyncio, time
async def main():
    loop = asyncio.get_running_loop()
    lags, last, ok, stop = [], time.monotonic(), 0, False
    async def tick():
        nonlocal last
        while not stop:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            lags.append((now - last - 0.01) * 1000)
            last = now
    t = asyncio.ensure_future(tick())
    for i in range(%(reps)d):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", %(port)d)
            w.write(b"GET /a%%d HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n" %% i)
            await w.drain()
            ok += (await r.read()).startswith(b"HTTP/1.1 200")
            w.close()
        except OSError as e:
            print("error", type(e).__name__)
    stop = True
    await t
    print("lag %%.1f" %% max(lags))
    print("done", ok)
asyncio.run(main())
"""

NODE_LOOP = NODE_GET.replace("let ok = 0, n = 0;", """let ok = 0, n = 0, worst = 0, last = Date.now();
const timer = setInterval(() => { const now = Date.now(); worst = Math.max(worst, now - last - 10); last = now; }, 10);""").replace(
    "console.log('done', ok); return;", "clearInterval(timer); console.log('lag', worst); console.log('done', ok); return;")


def loop_case(label, code, reps):
    """An event loop with a 10 ms timer keeps running while replays wait out
    their backoff (the default one: 250 ms and up): worst lag < 50 ms. The
    same loop without the shim against a peer that never resets measures
    what the machine itself adds (a busy 2-core machine delays timers too):
    the bound is 50 ms or that lag + 40 ms, whichever is larger; a run over
    it is made once more (a stall of the machine, not of the loop, passes
    then). A run where every reset came as the connect completed (the
    connect retry rescued them all, no replay to wait on) is made again
    too: up to three runs."""
    peer = Peer("reset-accept", 0)
    _, _, out = run_client(code % {"port": peer.port, "reps": reps}, False)
    peer.stop()
    base = [float(l.split()[1]) for l in out.splitlines() if l.startswith("lag ")]
    bound = max(50.0, (base[0] if base else 0) + 40)
    for attempt in (1, 2, 3):  # again when the machine stalled, or no replay happened
        peer = Peer("reset-accept", -2)
        push = Push()
        pid, rc, out = run_client(code % {"port": peer.port, "reps": reps}, True, push,
                                  {"RESHIM_BACKOFF_BASE": "250ms", "RESHIM_BACKOFF_MAX": "1s"})
        st = push.final(pid)
        push.close()
        peer.stop()
        lag = [float(l.split()[1]) for l in out.splitlines() if l.startswith("lag ")]
        if lag and lag[0] < bound and replays(st) > 0:
            break
    rescued = replays(st) + st["net"]["connect"]["retries"]
    check(done(out) == reps and replays(st) > 0 and rescued >= reps // 2 and lag and
          lag[0] < bound,
          "%s: %d of %d GETs succeed through %d replays (and %d connect retries: a reset "
          "seen as the connect completes); worst timer lag %s ms (< %.0f; without the shim "
          "and without resets %s ms)"
          % (label, done(out), reps, replays(st), st["net"]["connect"]["retries"],
             lag[0] if lag else "?", bound, base[0] if base else "?"))


def make_ca():
    """A test CA and a server certificate for 127.0.0.1 signed by it, and a
    second CA that signed nothing (for the verification check)."""
    d = os.path.join(TMP, "pki")
    os.mkdir(d)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other"):
        subprocess.run(["openssl", "req", "-x509"] + ec + ["-keyout", "%s/%s.key" % (d, ca),
                        "-out", "%s/%s.pem" % (d, ca), "-days", "2", "-subj",
                        "/CN=reshim test %s" % ca], check=True, capture_output=True)
    subprocess.run(["openssl", "req"] + ec + ["-keyout", d + "/srv.key", "-out", d + "/srv.csr",
                    "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    open(d + "/ext", "w").write("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(["openssl", "x509", "-req", "-in", d + "/srv.csr", "-CA", d + "/ca.pem",
                    "-CAkey", d + "/ca.key", "-CAcreateserial", "-out", d + "/srv.pem",
                    "-days", "2", "-extfile", d + "/ext"], check=True, capture_output=True)
    return d


class TlsPeer(Peer):
    def __init__(self, n, pki, *extra):
        self.port = free_port()
        self.log = os.path.join(TMP, "tls-%d.log" % self.port)
        self.p = subprocess.Popen([PY, os.path.join(HERE, "peers", "replay_tls_peer.py"), str(n),
                                   str(self.port), pki + "/srv.pem", pki + "/srv.key"] +
                                  list(extra),
                                  stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        for _ in range(200):
            if "ready" in open(self.log).read():
                return
            time.sleep(0.02)
        raise SystemExit("TLS peer did not start")

    def requests(self, method=None):
        return [l for l in open(self.log) if l.startswith("request ")]

    def hellos(self, what):
        return sum(1 for l in open(self.log) if l.startswith("hello") and l.split()[2] == what)


PY_TLS = """
import ssl, urllib.request
ctx = ssl.create_default_context(cafile=%(ca)r)
try:
    print("done", int(urllib.request.urlopen("https://127.0.0.1:%(port)d/t", context=ctx).read() == b"ok\\n"))
except Exception as e:
    print("error", type(e).__name__, e)
    print("done 0")
"""


def tls_case(label, client, pki):
    """The first 2 handshakes are reset after the ClientHello was read."""
    results = []
    for shim in (False, True):
        peer = TlsPeer(2, pki)
        push = Push() if shim else None
        pid, rc, out = run_client(client(peer.port, pki + "/ca.pem"), shim, push)
        results.append(done(out))
        if shim:
            st = push.final(pid)
            push.close()
            r = st["net"]["replay"]
            check(done(out) == 1 and r["tls_hello"] >= 2 and r["tls_hello"] == replays(st),
                  "%s: with reshim the request succeeds after %d ClientHello replays"
                  % (label, r["tls_hello"]))
        peer.stop()
    check(results[0] == 0, "%s: without the shim it fails" % label)
    # The certificate is still checked, against the real server: a CA that
    # did not sign it is refused after the replays too.
    peer = TlsPeer(2, pki)
    pid, rc, out = run_client(client(peer.port, pki + "/other.pem"), True, Push())
    check(done(out) == 0 and peer.hellos("served") >= 1 and "certificate" in out.lower(),
          "%s: with a CA that did not sign the server's certificate it still fails (%d "
          "handshakes reached the server)" % (label, peer.hellos("served")))
    peer.stop()


if OTHERS and shutil.which("openssl"):
    print("replay: TLS, only a ClientHello sent")
    pki = make_ca()
    tls_case("python3 ssl (urllib, verification on)",
             lambda port, ca: PY_TLS % {"port": port, "ca": ca}, pki)
    tls_case("curl https:// (--cacert)",
             lambda port, ca: ["curl", "-s", "-S", "--cacert", ca, "-o", "/dev/null", "-w",
                               "%{http_code}\n", "https://127.0.0.1:%d/t" % port], pki)
    # Never replayed: a GET sent after the handshake, the connection reset
    # once the server read it.
    seen, outs = [], []
    for shim in (False, True):
        peer = TlsPeer(1000, pki, "after")
        pid, rc, out = run_client(PY_TLS % {"port": peer.port, "ca": pki + "/ca.pem"}, shim,
                                  Push() if shim else None)
        outs.append([l for l in out.splitlines() if l.startswith("error")][:1])
        time.sleep(0.2)
        seen.append(len(peer.requests()))
        peer.stop()
    check(outs[0] == outs[1] and outs[0] and seen[0] == seen[1] == 1,
          "GET after the TLS handshake, reset: the same error both ways (%s), the server got "
          "it %d time(s) without the shim and %d with" % (outs[0], seen[0], seen[1]))
if LOOPS:
    print("replay: event loops keep running")
    loop_case("asyncio (epoll), 10 ms timer", ASYNCIO_LOOP, 8)
    if shutil.which("node"):
        loop_case("node (libuv, epoll), 10 ms timer", Node(NODE_LOOP), 8)
if OTHERS:
    print("replay: never replayed")
    never_case("POST with a body, reset after reading", "reset-request", 1000,
               b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", "POST")
    never_case("PUT with a body, reset after reading", "reset-request", 1000,
               b"PUT /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc", "PUT")
    never_case("GET whose response began, then reset", "half", 1000, GET, "GET")
    never_case("nothing sent, the server accepts and closes (end of file)", "close-accept", 1000,
               b"", "ACCEPTED")
    never_case("two pipelined GETs, reset after reading", "reset-request", 1000, GET + GET, "GET")
    never_case("GET with a body, reset after reading", "reset-request", 1000,
               b"GET /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nab", "GET")
    # A fork child shares the parent's connections: what the parent sends is
    # not seen there, so it never replays one it inherited.
    FORK_SEND = """
import os, socket, sys
c = socket.create_connection(("127.0.0.1", %(port)d))
pid = os.fork()
if pid == 0:
    c.sendall(%(data)r)
    try:
        c.recv(100)
        print("result data")
    except OSError as e:
        print("result", type(e).__name__)
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
"""
    seen, results = [], []
    for shim in (False, True):
        peer = Peer("reset-request", 1000)
        pid, rc, out = run_client(FORK_SEND % {"port": peer.port, "data": GET}, shim, Push() if shim else None)
        results.append([l for l in out.splitlines() if l.startswith("result")])
        time.sleep(0.2)
        seen.append(len(peer.requests("GET")))
        peer.stop()
    check(results[0] == results[1] and seen == [1, 1],
          "a GET sent by a fork child on an inherited connection, reset: not replayed (%s both ways, "
          "the server got it %d and %d times)" % (results[0], seen[0], seen[1]))
if FAILED:
    sys.exit("replay: %d check(s) failed" % len(FAILED))
