#!/usr/bin/python3
"""The outage matrix: real clients against local peers that fail in chosen ways,
without reshim, with reshim (defaults) and behind an HAProxy sidecar tuned for
retries. Prints a markdown table (and writes it with --out).

usage: matrix.py [--reps N] [--reps-of SCENARIO=N,...] [--batch N]
                 [--scenarios a,b,...] [--clients curl,python,node]
                 [--clients-of SCENARIO=KIND+KIND,...]
                 [--out FILE] [--json FILE] [--assert]

Every scenario puts one outage of OUTAGE seconds (1.5) in front of each batch
of clients: all clients of a batch (BATCH per cell) are started, wait until
every one of them is ready (interpreter loaded; curl waits for its URL on
stdin, -K -), then all are released at the same instant T0; the peer
recovers at T0 + OUTAGE. Steady faults (flapping, reset) release the clients
one after the other instead (STAGGER). Each cell (client kind x
configuration: no shim, reshim, haproxy) has its own backend port, so
counting peers (reset) stay exact per cell. Time is from the release to the
client's exit, success or failure.

--clients-of gives a scenario its own clients (keepalive takes python and
node only: by default those of --clients).

--assert checks outcomes only, never times: in every scenario and client,
reshim succeeds at least as often as no shim; refused and late are rescued
>= 95 %, flapping too, reset on accept, queue and keepalive >= 99 % (replayed;
binomial tests, see below); without the shim, refused, late, down and queue
fail at least half the time, and reset and keepalive fail at least once
(the outage was real); in the nginx scenarios (queue, keepalive) nginx's
access log counts exactly the requests the clients got answered, without
the shim and with reshim (a replay never makes nginx serve a request
twice); HAProxy's count is reported.
OUTAGE_HAPROXY_CONNECT (default 1s) sets HAProxy's timeout connect;
OUTAGE_KEEP=1 keeps the peers' logs.

Scenarios:
  refused   port bound, not listening until T0+1.5 s, then serves (ECONNREFUSED first)
  down      nothing ever listens (ECONNREFUSED forever): the cost of retrying
  late      the server process itself is started at T0+1.5 s
  flapping  listens 300 ms, closed 200 ms, over and over (peers/flap_http.py)
  reset     every 2nd accepted connection is closed at once with a RST (SO_LINGER 0)
  reset-connect  the same with RESHIM_REPLAY=connect in the reshim cells
            (today's behaviour before replay): it must fail as without
            replay, and the clients' replay counters (their stats pushed at
            exit to `reshim collect`) must be 0
  queue     a restarting backend with its accept queue full: nginx (one per
            cell) is stopped (SIGSTOP) before T0, so the clients' connects
            complete into its accept queue and their requests wait there;
            once every cell's queue holds its clients (ss), nginx is killed
            (SIGKILL: the kernel resets the queued connections) and started
            again at T0+1.5 s
  keepalive the keep-alive race: python3-requests Session and node
            http.Agent({keepAlive: true}) make a GET, wait, make a second GET
            on the same connection; nginx closes idle connections after
            keepalive_timeout 1s; the pauses are spread over 0.8-1.2 s,
            around the moment nginx closes. The clients reach nginx (and
            HAProxy its nginx) through peers/delay_link.py, a link with a
            50 ms one-way delay: on bare loopback a FIN reaches the client
            within microseconds and the race almost never happens; with the
            delay a request sent up to 100 ms before the client sees the FIN
            meets a closed connection, as over a network (where that window
            sits moves by tens of ms with the machine's load, hence the wide
            spread of pauses). curl is left out
            (it makes one request per process here; it retries these itself)
  blackhole in a network namespace, SYNs to the backend are dropped (iptables)
            until T0+1.5 s; clients and haproxy run in the namespace
  dns       in a network namespace whose resolv.conf (timeout:1 attempts:1) points
            to peers/dns_server.py, which drops every query until T0+1.5 s;
            the clients resolve the backend's name. HAProxy, a long-running
            sidecar, resolved the name when it started (before the outage).

Cleanup (processes, namespaces, /etc/netns entries) runs at exit and on
SIGINT/SIGTERM/SIGHUP; namespaces left by a killed run (named
reshim-outage-PID-*, PID dead) are removed at the next start.
"""
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from outagelib import (CLEAN, FILE, HAPROXY_CONNECT, IPEERS, NGINX, PEERS, PROCS, PY, RESHIM_ENV,
                       SHIM, TMP, Nginx, base_env, binom_tail, die_with_us, free_port, haproxy,
                       kill, parse_args, queued, reshim_env, run, spawn, spawn_peer, wait_line,
                       wait_ports)

OUTAGE = 1.5
CLIENT_TIMEOUT = 5          # curl --max-time, urllib timeout=, node
HARD_LIMIT = 15             # a client still running T0+this is killed (counted failed)
NS_PREFIX = "reshim-outage-"
DNS_NAME = "backend.outage.test"
CONFIGS = ("none", "reshim", "haproxy")
ALL_SCENARIOS = ("refused", "down", "late", "flapping", "reset", "reset-connect", "queue",
                 "keepalive", "blackhole", "dns")
# Settings of a scenario's reshim cells. reset-connect is today's (pre-replay)
# behaviour: the reset on accept with RESHIM_REPLAY=connect. Its reshim
# clients push their stats at exit (RESHIM_PUSH) to `reshim collect`, which
# gives their replay counters.
RESHIM_OF = {"reset-connect": {"RESHIM_REPLAY": "connect"}}
RESHIM_CLI = os.path.join(os.path.dirname(SHIM), "reshim")
# Client kinds a scenario has (default: all); keepalive needs a client that
# keeps a connection between two requests.
KINDS_OF = {"keepalive": ("python", "node")}
# The keep-alive race: nginx's keepalive_timeout, the link's one-way delay
# (peers/delay_link.py) and the client's pauses between its two requests,
# spread evenly over the cell's runs.
KA_TIMEOUT = 1.0
KA_DELAY_MS = 50
KA_GAPS = (0.8, 1.2)
LABEL = {
    "refused": "refused, then up (not listening for 1.5 s)",
    "down": "down (refused, never up)",
    "late": "late (server process starts after 1.5 s)",
    "flapping": "flapping (up 300 ms, down 200 ms)",
    "reset": "reset on accept (1 in 2 accepts RST)",
    "reset-connect": "reset on accept, reshim with RESHIM_REPLAY=connect",
    "queue": "restarting backend, full accept queue (nginx killed with the requests queued, "
             "up again at 1.5 s)",
    "keepalive": "keep-alive race (nginx keepalive_timeout %gs, %d ms link, 2nd GET %g-%g s "
                 "after the 1st)" % ((KA_TIMEOUT, KA_DELAY_MS) + KA_GAPS),
    "blackhole": "black hole (SYNs dropped for 1.5 s)",
    "dns": "DNS silent for 1.5 s (resolver timeout:1 attempts:1)",
}

# ---------------------------------------------------------------- namespaces

def ns_create(tag):
    name = "%s%d-%s" % (NS_PREFIX, os.getpid(), tag)
    run(["ip", "netns", "add", name])
    CLEAN.append(lambda: ns_delete(name))
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    return name


def ns_delete(name):
    run(["ip", "netns", "del", name], check=False)
    d = "/etc/netns/" + name
    if os.path.isdir(d):
        shutil.rmtree(d, ignore_errors=True)
    try:
        os.rmdir("/etc/netns")   # only when empty: others may use it
    except OSError:
        pass


def ns_remove_stale():
    out = run(["ip", "netns", "list"], check=False)
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(re.escape(NS_PREFIX) + r"(\d+)-", name)
        if m and not os.path.exists("/proc/" + m.group(1)):
            print("outage: removing stale namespace %s" % name, file=sys.stderr)
            ns_delete(name)
    tmpdir = tempfile.gettempdir()          # temp dirs of runs killed by SIGKILL
    for name in os.listdir(tmpdir):
        m = re.match(r"reshim-outage\.(\d+)\.", name)
        if m and not os.path.exists("/proc/" + m.group(1)):
            shutil.rmtree(os.path.join(tmpdir, name), ignore_errors=True)
    if os.path.isdir("/etc/netns"):
        for name in os.listdir("/etc/netns"):
            m = re.match(re.escape(NS_PREFIX) + r"(\d+)-", name)
            if m and not os.path.exists("/proc/" + m.group(1)):
                ns_delete(name)


# ---------------------------------------------------------------- scenarios
# Each (client kind, configuration) pair has its own backend port, so that
# counting peers (reset) and timing stay exact per cell.
# setup(kinds) -> (urls: {(kind, config): url}, ns, events, stop); events: None, a
# callable run at T0+OUTAGE, or [(seconds after T0, callable)...] run in order.

def backend(args, ns=None, word="ready"):
    p = spawn_peer([PY, os.path.join(PEERS, "backend.py"), "--verbose"] + args, ns=ns,
                   name="backend")
    wait_line(p, word)
    return p


def keys_of(kinds):
    return [(k, c) for k in kinds for c in CONFIGS]


def host_ports(kinds):
    return {key: free_port() for key in keys_of(kinds)}


def ns_ports(kinds):
    return {key: 18081 + i for i, key in enumerate(keys_of(kinds))}


def urls_for(ports, fes, host="127.0.0.1"):
    urls = {}
    for (k, c), port in ports.items():
        urls[(k, c)] = ("http://127.0.0.1:%d/" % fes[k] if c == "haproxy"
                        else "http://%s:%d/" % (host, port))
    return urls


def hp_servers(ports, host="127.0.0.1"):
    return {k: "%s:%d" % (host, port) for (k, c), port in ports.items() if c == "haproxy"}


def setup_refused(kinds):
    ports = host_ports(kinds)
    procs = [backend(["--listen-on-signal", "127.0.0.1", str(p)]) for p in ports.values()]
    hp, fes = haproxy(hp_servers(ports))

    def recover():
        for p in procs:
            p.send_signal(signal.SIGUSR1)
    return urls_for(ports, fes), None, recover, lambda: [kill(p) for p in procs + [hp]]


def setup_down(kinds):
    ports = host_ports(kinds)
    hp, fes = haproxy(hp_servers(ports))
    return urls_for(ports, fes), None, None, lambda: kill(hp)


def setup_late(kinds):
    ports = host_ports(kinds)
    hp, fes = haproxy(hp_servers(ports))
    procs = []

    def recover():
        for p in ports.values():
            procs.append(spawn_peer([PY, os.path.join(PEERS, "backend.py"), "--verbose",
                                     "127.0.0.1", str(p)], name="late"))
    return urls_for(ports, fes), None, recover, lambda: [kill(p) for p in procs + [hp]]


def setup_flapping(kinds):
    ports = host_ports(kinds)
    procs = []
    for port in ports.values():
        p = spawn_peer([PY, os.path.join(IPEERS, "flap_http.py"), str(port), "0.3", "0.2"],
                       name="flap")
        procs.append(p)
    for p in procs:
        wait_line(p, "cycle 1 up")
    hp, fes = haproxy(hp_servers(ports))
    return urls_for(ports, fes), None, None, lambda: [kill(p) for p in procs + [hp]]


def setup_reset(kinds):
    ports = host_ports(kinds)
    procs = [backend(["--reset-every", "2", "127.0.0.1", str(p)]) for p in ports.values()]
    hp, fes = haproxy(hp_servers(ports))
    return urls_for(ports, fes), None, None, lambda: [kill(p) for p in procs + [hp]]


def setup_blackhole(kinds):
    ns = NS["blackhole"]
    ports = ns_ports(kinds)
    procs = [backend(["127.0.0.1", str(p)], ns=ns) for p in ports.values()]
    wait_ports(ports.values(), ns)
    hp, fes = haproxy(hp_servers(ports), ns=ns)
    rule = ["-p", "tcp", "--dport", "%d:%d" % (min(ports.values()), max(ports.values())),
            "--tcp-flags", "SYN,ACK,FIN,RST", "SYN", "-j", "DROP"]
    run(["ip", "netns", "exec", ns, "iptables", "-I", "INPUT"] + rule)
    state = {"rule": True}

    def recover():
        if state["rule"]:
            run(["ip", "netns", "exec", ns, "iptables", "-D", "INPUT"] + rule)
            state["rule"] = False

    def stop():
        recover()
        for p in procs + [hp]:
            kill(p)
    return urls_for(ports, fes), ns, recover, stop


def setup_dns(kinds):
    ns = NS["dns"]
    ports = ns_ports(kinds)
    procs = [backend(["127.0.0.1", str(p)], ns=ns) for p in ports.values()]
    flag = os.path.join(TMP, "dns-silent")
    log = os.path.join(TMP, "dns.log")
    open(log, "w").close()
    dns = spawn([PY, os.path.join(IPEERS, "dns_server.py"), "127.0.0.53", "53", DNS_NAME, flag,
                 log], ns=ns)
    procs.append(dns)
    end = time.monotonic() + 20
    while "ready" not in open(log).read():
        if time.monotonic() > end or dns.poll() is not None:
            raise RuntimeError("dns_server.py did not start")
        time.sleep(0.02)
    # HAProxy resolves the name through libc at its start, while DNS answers.
    hp, fes = haproxy(hp_servers(ports, DNS_NAME), ns=ns)
    procs.append(hp)
    # A lookup that works proves the resolv.conf of the namespace is in use.
    got = run(["ip", "netns", "exec", ns, PY, "-c", "import socket; print(socket.getaddrinfo("
               "'%s', 80, socket.AF_INET, socket.SOCK_STREAM))" % DNS_NAME])
    if "127.0.0.1" not in got:
        raise RuntimeError("the namespace does not resolve %s: %r" % (DNS_NAME, got))
    open(flag, "w").close()     # silent from now on, until recover()

    def recover():
        if os.path.exists(flag):
            os.unlink(flag)

    def stop():
        recover()
        for p in procs:
            kill(p)
    return urls_for(ports, fes, DNS_NAME), ns, recover, stop


def nginx_cells(kinds, **kw):
    """One nginx per cell, started: {(kind, config): Nginx}; their access logs
    are the counts SERVED reads."""
    ngs = {key: Nginx("%s-%s-%d" % (key + (next(NGINX_SEQ),)), free_port(), **kw)
           for key in keys_of(kinds)}
    for ng in ngs.values():
        ng.start()
    SERVED.update({key: ng.served for key, ng in ngs.items()})
    return ngs


def setup_queue(kinds):
    ngs = nginx_cells(kinds)
    ports = {key: ng.port for key, ng in ngs.items()}
    hp, fes = haproxy(hp_servers(ports))
    for ng in ngs.values():
        ng.freeze()
    n = BATCH_N[0]

    def crash():
        # Every cell's n clients (HAProxy's n connections) wait in the queue.
        end = time.monotonic() + 10
        for ng in ngs.values():
            while queued(ng.port) < n and time.monotonic() < end:
                time.sleep(0.02)
        for ng in ngs.values():
            ng.crash()

    def recover():
        for ng in ngs.values():
            ng.start()
    urls = {key: u + FILE for key, u in urls_for(ports, fes).items()}
    return urls, None, [(0.2, crash), (OUTAGE, recover)], \
        lambda: [x.stop() for x in ngs.values()] + [kill(hp)]


def setup_keepalive(kinds):
    ngs = nginx_cells(kinds, keepalive="%gs" % KA_TIMEOUT)
    links = {key: free_port() for key in ngs}
    link = spawn_peer([PY, os.path.join(PEERS, "delay_link.py"), str(KA_DELAY_MS)] +
                      ["%d:%d" % (links[key], ng.port) for key, ng in ngs.items()], name="link")
    wait_line(link, "ready")
    hp, fes = haproxy(hp_servers(links))
    urls = {key: u + FILE for key, u in urls_for(links, fes).items()}
    return urls, None, None, lambda: [x.stop() for x in ngs.values()] + [kill(link), kill(hp)]


SETUP = {"refused": setup_refused, "reset-connect": setup_reset, "queue": setup_queue, "keepalive": setup_keepalive, "down": setup_down, "late": setup_late,
         "flapping": setup_flapping, "reset": setup_reset, "blackhole": setup_blackhole,
         "dns": setup_dns}
# Clients of these scenarios are released one after the other over this many
# seconds (same offsets in every cell), not all at once: a steady fault has no
# start, and released together they would all meet the same phase.
STAGGER = {"flapping": 1.0, "reset": 0.5, "reset-connect": 0.5, "keepalive": 1.0}
NS = {}
SERVED = {}                 # {(kind, config): callable}: the server's count of 200s
NGINX_SEQ = iter(range(1, 1 << 30))
BATCH_N = [0]               # clients per cell of the batch being set up


def make_namespaces(scenarios):
    if "blackhole" in scenarios:
        NS["blackhole"] = ns_create("bh")
    if "dns" in scenarios:
        name = ns_create("dns")
        d = "/etc/netns/" + name
        os.makedirs(d)
        with open(d + "/resolv.conf", "w") as f:
            f.write("nameserver 127.0.0.53\noptions timeout:1 attempts:1\n")
        with open(d + "/hosts", "w") as f:   # the name must come from DNS
            f.write("127.0.0.1 localhost\n::1 localhost\n")
        NS["dns"] = name


# ---------------------------------------------------------------- clients
# Each client prints "r" once loaded, waits for a line on stdin (the release at
# T0), fetches the URL once and prints one result line; exit 0 on a 200 with a body.

PY_CLIENT = r"""
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
print("r", flush=True)
sys.stdin.readline()
try:
    with opener.open(sys.argv[1], timeout=%d) as r:
        body = r.read()
    ok = r.status == 200 and len(body) > 0
    print("ok" if ok else "bad status %%d" %% r.status)
    sys.exit(0 if ok else 1)
except Exception as e:
    why = getattr(e, "reason", e)
    print("fail %%s: %%s" %% (type(why).__name__, why))
    sys.exit(1)
""" % CLIENT_TIMEOUT

NODE_CLIENT = r"""
const http = require('http');
const url = process.argv[1];
function done(ok, why) { console.log(ok ? 'ok' : 'fail ' + why); process.exit(ok ? 0 : 1); }
process.stdout.write('r\n');
process.stdin.once('data', () => {
  setTimeout(() => done(false, 'timeout'), %d).unref();
  const req = http.get(url, {agent: false}, (res) => {
    let n = 0;
    res.on('data', (d) => { n += d.length; });
    res.on('end', () => done(res.statusCode === 200 && n > 0, 'status ' + res.statusCode));
  });
  req.on('error', (e) => done(false, e.code || e.message));
});
""" % (CLIENT_TIMEOUT * 1000)


# The keep-alive race: a GET, the pause (argv), a second GET on the same
# connection; prints "got N" (requests answered 200 with a body), then one
# result line as above.
PY_KA_CLIENT = r"""
import sys, time, requests
s = requests.Session()
s.trust_env = False
print("r", flush=True)
sys.stdin.readline()
got = 0
try:
    for i in range(2):
        if i:
            time.sleep(float(sys.argv[2]))
        r = s.get(sys.argv[1], timeout=%d)
        if r.status_code != 200 or not r.content:
            raise RuntimeError("status %%d" %% r.status_code)
        got += 1
    print("got %%d\nok" %% got)
except Exception as e:
    print("got %%d\nfail %%s" %% (got, type(e).__name__))
    sys.exit(1)
""" % CLIENT_TIMEOUT

NODE_KA_CLIENT = r"""
const http = require('http');
const [url, gap] = process.argv.slice(1);
const agent = new http.Agent({keepAlive: true});
let got = 0;
function done(ok, why) {
  console.log('got ' + got + '\n' + (ok ? 'ok' : 'fail ' + why)); process.exit(ok ? 0 : 1);
}
const get = () => new Promise((resolve, reject) => {
  const req = http.get(url, {agent}, (res) => {
    let n = 0;
    res.on('data', (d) => { n += d.length; });
    res.on('end', () => res.statusCode === 200 && n > 0 ? resolve()
                        : reject(new Error('status ' + res.statusCode)));
  });
  req.on('error', reject);
});
process.stdout.write('r\n');
process.stdin.once('data', async () => {
  setTimeout(() => done(false, 'timeout'), %d).unref();
  try {
    await get(); got++;
    await new Promise((r) => setTimeout(r, +gap * 1000));
    await get(); got++;
    done(true);
  } catch (e) { done(false, e.code || e.message); }
});
""" % (CLIENT_TIMEOUT * 1000 * 2)


def client_cmd(kind, url, scenario="", arg=""):
    if scenario == "keepalive":
        return ([PY, "-c", PY_KA_CLIENT, url, arg] if kind == "python"
                else ["node", "-e", NODE_KA_CLIENT, url, arg])
    if kind == "curl":
        # curl loads, then reads its URL from stdin (-K -): the release.
        return ["sh", "-c", 'echo r; exec curl -sS -o /dev/null --noproxy "*" '
                '--max-time %d -w "%%{http_code}\\n" -K -' % CLIENT_TIMEOUT]
    if kind == "python":
        return [PY, "-c", PY_CLIENT, url]
    if kind == "node":
        return ["node", "-e", NODE_CLIENT, url]
    raise ValueError(kind)


def outcome(kind, rc, out):
    lines = [l for l in out.decode(errors="replace").splitlines() if l.strip() and l != "r"]
    last = lines[-1] if lines else ""
    if kind == "curl":
        if rc == 0 and last == "200":
            return True, "ok"
        err = [l for l in lines if l.startswith("curl:")]
        why = re.sub(r" after \d+ ms| with \d+ out of \d+ bytes received|\d+ milliseconds| port \d+",
                     "", err[0]) if err else "http %s" % last
        return False, "rc %d %s" % (rc, why[:70])
    if rc == 0 and last == "ok":
        return True, "ok"
    return False, re.sub(r"\d+(\.\d+)?", "N", last)[:70] or "rc %d" % rc


class Trial:
    def __init__(self, kind, config, url, ns, scenario="", arg="", push=None):
        env = reshim_env(base_env()) if config == "reshim" else base_env()
        if config == "reshim":
            env.update(RESHIM_OF.get(scenario, {}))
            if push:
                env["RESHIM_PUSH"] = push
        cmd = client_cmd(kind, url, scenario, arg)
        if ns:
            cmd = ["ip", "netns", "exec", ns] + cmd
            if config == "reshim":     # preload the client, not `ip`
                del env["LD_PRELOAD"]
                cmd = cmd[:4] + ["env", "LD_PRELOAD=" + SHIM] + RESHIM_ENV + cmd[4:]
        self.kind, self.config = kind, config
        self.release = ('url = "%s"\n' % url if kind == "curl" else "g\n").encode()
        self.p = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, preexec_fn=die_with_us)
        PROCS.append(self.p)      # killed at exit if a run is interrupted
        self.out = b""
        self.t = None
        self.ok = False
        self.why = "not run"

    def collect(self):
        """Thread body: the client's output up to its exit, and when it exited."""
        while True:
            chunk = os.read(self.p.stdout.fileno(), 4096)
            if not chunk:
                break
            self.out += chunk
        rc = self.p.wait()
        self.t = time.monotonic() - self.t0
        self.ok, self.why = outcome(self.kind, rc, self.out)
        m = re.search(rb"^got (\d+)$", self.out, re.M)
        self.got = int(m.group(1)) if m else int(self.ok)


def replay_counts(collector, trials):
    """t.replays for each trial: the replays its stats pushed at exit count
    (None when none came; waits for them, bounded)."""
    pids = {t.p.pid for t in trials}
    last = {}
    end = time.monotonic() + 10
    while True:
        with open(collector.log, errors="replace") as f:
            for line in f:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                if isinstance(d, dict) and d.get("pid") in pids:
                    last[d["pid"]] = d
        if len(last) == len(pids) or time.monotonic() > end:
            break
        time.sleep(0.1)
    kill(collector)
    for t in trials:
        d = last.get(t.p.pid)
        t.replays = sum(d["net"]["replay"][x] for x in ("nothing_sent", "tls_hello",
                                                         "http_request")) if d else None


def run_batch(scenario, kinds, n):
    """One batch: n clients per cell. Returns (trials, {(kind, config): the
    requests the server counted as served}, for the scenarios that count)."""
    tb = time.monotonic()
    BATCH_N[0] = n
    SERVED.clear()
    urls, ns, events, stop = SETUP[scenario](kinds)
    if callable(events):
        events = [(OUTAGE, events)]
    push = collector = None
    if scenario in RESHIM_OF:
        push = os.path.join(TMP, "collect-%d.sock" % next(NGINX_SEQ))
        collector = spawn_peer([RESHIM_CLI, "collect", "--listen", push, "--json"],
                               name="collect")
        end = time.monotonic() + 20
        while not os.path.exists(push) and collector.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        if not os.path.exists(push):
            raise RuntimeError("reshim collect did not listen: " + open(collector.log).read())
    phases = [("setup", time.monotonic() - tb)]
    try:
        trials = []
        for k in kinds:
            for c in CONFIGS:
                for j in range(n):
                    lo, hi = KA_GAPS
                    t = Trial(k, c, urls[(k, c)], ns, scenario,
                              "%.4f" % (lo + (hi - lo) * j / max(1, n - 1)), push)
                    t.offset = STAGGER.get(scenario, 0) * j / n
                    trials.append(t)
        # Wait until every client is loaded ("r" on stdout).
        pending = {t.p.stdout.fileno(): t for t in trials}
        sel = selectors.DefaultSelector()
        for fd in pending:
            sel.register(fd, selectors.EVENT_READ)
        end = time.monotonic() + 60
        while pending and time.monotonic() < end:
            for key, _ in sel.select(1):
                t = pending[key.fd]
                chunk = os.read(key.fd, 64)
                t.out += chunk
                if b"r\n" in t.out or not chunk:
                    sel.unregister(key.fd)
                    del pending[key.fd]
        sel.close()
        if pending:
            raise RuntimeError("%d clients never got ready" % len(pending))
        phases.append(("ready", time.monotonic() - tb))
        time.sleep(0.3)      # curl (-K -) finishes loading before it reads stdin
        t0 = [0.0]
        threads = [threading.Thread(target=t.collect, daemon=True) for t in trials]
        for th in threads:
            th.start()
        t0[0] = time.monotonic()
        for t in sorted(trials, key=lambda x: x.offset):       # the release: T0 (+offset)
            wait = t0[0] + t.offset - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            t.t0 = time.monotonic()
            try:
                t.p.stdin.write(t.release)
                t.p.stdin.close()
            except BrokenPipeError:
                pass
        for at, event in events or []:
            delay = t0[0] + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            event()
        for th in threads:
            th.join(max(0.1, t0[0] + HARD_LIMIT - time.monotonic()))
        for t in trials:
            if t.p.poll() is None:
                t.p.kill()
        for th in threads:
            th.join()
        phases.append(("run", time.monotonic() - tb))
        if os.environ.get("OUTAGE_DEBUG"):
            print("outage: batch %s: %s" % (scenario, ", ".join(
                "%s %.1f s" % x for x in phases)), file=sys.stderr)
        for t in trials:
            t.out = t.out.replace(b"r\n", b"", 1)
            if t.t is None:
                t.ok, t.why, t.got = False, "killed", 0
        if collector:
            replay_counts(collector, [t for t in trials if t.config == "reshim"])
        return trials, {key: f() for key, f in SERVED.items()}
    finally:
        stop()
        done = {id(t.p) for t in trials}
        PROCS[:] = [p for p in PROCS if id(p) not in done or p.poll() is None]


# ---------------------------------------------------------------- report

def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = max(0, min(len(xs) - 1, int(-(-q * len(xs) // 1)) - 1))   # nearest rank
    return xs[k]


def fmt_t(x):
    return "%.2f s" % x


def table(results, scenarios):
    lines = ["| scenario | client | no shim ok | p50 | p95 | reshim ok | p50 | p95 |"
             " haproxy ok | p50 | p95 |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in scenarios:
        for k in results[s]:
            row = ["%s" % LABEL[s], k]
            for c in CONFIGS:
                r = results[s][k][c]
                row += ["%d%%" % round(100.0 * r["ok"] / r["n"]), fmt_t(r["p50"]), fmt_t(r["p95"])]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def reasons(results, scenarios):
    out = []
    for s in scenarios:
        for k in results[s]:
            for c in CONFIGS:
                fails = results[s][k][c]["why"]
                if fails:
                    out.append("- %s, %s, %s: %s" % (s, k, c, "; ".join(
                        "%d× %s" % (v, w) for w, v in sorted(fails.items(), key=lambda x: -x[1]))))
    return "\n".join(out)


def served_text(results, scenarios):
    """The server's count beside the clients' (scenarios whose server counts)."""
    out = []
    for s in scenarios:
        for k in results[s]:
            cells = results[s][k]
            if cells["none"].get("served") is None:
                continue
            out.append("- %s, %s: " % (s, k) + ", ".join(
                "%s: clients got %d answers, nginx served %d" % (
                    c, cells[c]["got"], cells[c]["served"]) for c in CONFIGS))
    return "\n".join(out)


def main():
    opts, check = parse_args(sys.argv[1:], {
        "reps": 20, "batch": 20, "reps-of": "", "scenarios": ",".join(ALL_SCENARIOS),
        "clients": "curl,python", "clients-of": "", "out": None, "json": None}, __doc__)
    reps, batch = int(opts["reps"]), int(opts["batch"])
    reps_of = {}
    for item in [x for x in opts["reps-of"].split(",") if x]:
        name, _, val = item.partition("=")
        reps_of[name] = int(val)
    scenarios = [s for s in opts["scenarios"].split(",") if s]
    kinds = [k for k in opts["clients"].split(",") if k]
    for s in scenarios:
        if s not in ALL_SCENARIOS:
            sys.exit("outage: unknown scenario %s" % s)
    # --clients-of keepalive=python+node,...: a scenario's own clients.
    kinds_of = {s: [k for k in kinds if k in KINDS_OF.get(s, kinds)] for s in scenarios}
    for item in [x for x in opts["clients-of"].split(",") if x]:
        name, _, val = item.partition("=")
        kinds_of[name] = [k for k in val.split("+") if k]
    for s in scenarios:
        if not kinds_of[s] or any(k not in KINDS_OF.get(s, (k,)) for k in kinds_of[s]):
            sys.exit("outage: scenario %s: clients %s (it has %s)" % (
                s, ",".join(kinds_of[s]) or "none", ",".join(KINDS_OF.get(s, ["any"]))))
    all_kinds = sorted({k for s in scenarios for k in kinds_of[s]})
    if os.geteuid() != 0 and ("blackhole" in scenarios or "dns" in scenarios):
        sys.exit("outage: the blackhole and dns scenarios need root (network namespaces)")
    nginx = [s for s in scenarios if s in ("queue", "keepalive")]
    if nginx and os.geteuid() != 0:
        sys.exit("outage: the queue and keepalive scenarios need root (nginx runs its workers "
                 "as nobody)")
    if "keepalive" in scenarios and "python" in kinds_of["keepalive"] and run(
            [PY, "-c", "import requests"], check=False).strip():
        sys.exit("outage: python3-requests is not installed (scripts/install-deps.sh)")
    for tool in (["haproxy", "ip", "iptables", "ss"] + ([NGINX] if nginx else []) +
                 [k for k in all_kinds if k in ("curl", "node")]):
        if not shutil.which(tool):
            sys.exit("outage: %s is not installed" % tool)
    if not os.path.exists(SHIM) or not os.path.exists(RESHIM_CLI):
        sys.exit("outage: %s or %s missing (make all)" % (SHIM, RESHIM_CLI))

    ns_remove_stale()
    make_namespaces(scenarios)
    started = time.monotonic()
    results = {}
    for s in scenarios:
        t_s = time.monotonic()
        trials, served = [], {}
        left = reps_of.get(s, reps)
        while left > 0:
            n = min(batch, left)
            ts, sv = run_batch(s, kinds_of[s], n)
            trials += ts
            for key, v in sv.items():
                served[key] = served.get(key, 0) + v
            left -= n
        results[s] = {}
        for k in kinds_of[s]:
            results[s][k] = {}
            for c in CONFIGS:
                ts = [t for t in trials if t.kind == k and t.config == c]
                why = {}
                for t in ts:
                    if not t.ok:
                        why[t.why] = why.get(t.why, 0) + 1
                results[s][k][c] = {"n": len(ts), "ok": sum(t.ok for t in ts),
                                    "p50": pct([t.t for t in ts], 0.5),
                                    "p95": pct([t.t for t in ts], 0.95), "why": why,
                                    "got": sum(t.got for t in ts), "served": served.get((k, c))}
                if hasattr(ts[0], "replays"):
                    results[s][k][c]["replays"] = sum(t.replays or 0 for t in ts)
                    results[s][k][c]["pushed"] = sum(t.replays is not None for t in ts)
            r = results[s][k]
            print("outage: %-9s %-6s ok none %d/%d, reshim %d/%d, haproxy %d/%d" % (
                s, k, r["none"]["ok"], r["none"]["n"], r["reshim"]["ok"], r["reshim"]["n"],
                r["haproxy"]["ok"], r["haproxy"]["n"]), file=sys.stderr, flush=True)
        print("outage: %s done in %.1f s" % (s, time.monotonic() - t_s), file=sys.stderr)

    md = table(results, scenarios)
    rc = results.get("reset-connect", {})
    if rc:
        print("outage: reset-connect, replays counted by the reshim clients' stats: %s" % ", ".join(
            "%s %d (%d of %d pushed)" % (k, rc[k]["reshim"]["replays"], rc[k]["reshim"]["pushed"],
                                         rc[k]["reshim"]["n"]) for k in rc), file=sys.stderr)
    ver = run(["haproxy", "-v"]).splitlines()[0].split(" - ")[0]
    counts = sorted({results[x][k]["none"]["n"] for x in scenarios for k in results[x]})
    header = ("%s runs per cell; client timeout %d s (curl --max-time, urllib timeout=, node "
              "timer); time from the release to the client's exit, success or failure; "
              "reshim with %s; %s with retries 3, option redispatch, retry-on "
              "all-retryable-errors, timeout connect %s (mode http). Matrix took %.0f s."
              % ("/".join(map(str, counts)), CLIENT_TIMEOUT,
                 " ".join(RESHIM_ENV) if RESHIM_ENV else "its defaults", ver, HAPROXY_CONNECT,
                 time.monotonic() - started))
    why = reasons(results, scenarios)
    text = md + "\n\n" + header + "\n"
    sv = served_text(results, scenarios)
    if sv:
        text += "\nThe server's count (nginx's access log, 200s):\n\n" + sv + "\n"
    print(text)
    if why:
        print("Failures by reason:\n" + why)
    if opts["out"]:
        with open(opts["out"], "w") as f:
            f.write(text + ("\nFailures by reason:\n\n" + why + "\n" if why else ""))
    if opts["json"]:
        with open(opts["json"], "w") as f:
            json.dump(results, f, indent=1)

    if check:
        bad = []
        for s in scenarios:
            for k in results[s]:
                r = results[s][k]
                for c in ("none", "reshim"):
                    if r[c]["served"] is not None and r[c]["served"] != r[c]["got"]:
                        bad.append("%s/%s/%s: the clients got %d answers, nginx served %d" % (
                            s, k, c, r[c]["got"], r[c]["served"]))
                if r["reshim"]["ok"] < r["none"]["ok"]:
                    bad.append("%s/%s: reshim %d ok < no shim %d ok" % (
                        s, k, r["reshim"]["ok"], r["none"]["ok"]))
                n, f = r["reshim"]["n"], r["reshim"]["n"] - r["reshim"]["ok"]
                if s in ("refused", "late") and r["reshim"]["ok"] < 0.95 * n:
                    bad.append("%s/%s: reshim rescued only %d/%d" % (s, k, n - f, n))
                if (s in ("refused", "late", "down", "queue") and
                        r["none"]["ok"] > r["none"]["n"] // 2):
                    bad.append("%s/%s: without the shim %d/%d succeeded: no real outage" % (
                        s, k, r["none"]["ok"], r["none"]["n"]))
        # Flapping is a coin toss per attempt (each retry lands in the 200 ms
        # down phase with p ~ 0.4): a rescue rate of ~97 %, so a few failures
        # in a small sample are noise. Pooled over the clients, fail only when
        # the sample rules out a rate >= 95 % (one-sided binomial, p < 0.001).
        if "flapping" in scenarios:
            n = sum(results["flapping"][k]["reshim"]["n"] for k in results["flapping"])
            f = n - sum(results["flapping"][k]["reshim"]["ok"] for k in results["flapping"])
            if binom_tail(n, f, 0.05) < 0.001:
                bad.append("flapping: reshim rescued only %d/%d (all clients): a rescue rate "
                           "of 95 %% gives that few with p = %.5f" % (
                               n - f, n, binom_tail(n, f, 0.05)))
        # Reset on accept: the connection broke before the peer could act on
        # the request, so reshim replays it (RESHIM_REPLAY=safe): rescued
        # >= 99 % (pooled; fail when the sample rules that out, p < 0.001),
        # and without the shim the resets are real.
        # The same for the other replay cases: a restarting backend's accept
        # queue and the keep-alive race.
        for s in [x for x in scenarios if x in ("reset", "queue", "keepalive")]:
            n = sum(results[s][k]["reshim"]["n"] for k in results[s])
            f = n - sum(results[s][k]["reshim"]["ok"] for k in results[s])
            if binom_tail(n, f, 0.01) < 0.001:
                bad.append("%s: reshim rescued only %d/%d (all clients): a rescue rate of "
                           "99 %% gives that few with p = %.5f" % (s, n - f, n,
                                                                  binom_tail(n, f, 0.01)))
            for k in results[s]:
                if results[s][k]["none"]["ok"] == results[s][k]["none"]["n"]:
                    bad.append("%s/%s: without the shim every run succeeded: no fault" % (s, k))
        # RESHIM_REPLAY=connect is today's behaviour: the reset on accept
        # fails as without replay (the sample rules out the replay's 99 %,
        # pooled, p < 0.001), and every reshim client pushed its stats with
        # no replay counted.
        if "reset-connect" in scenarios:
            rs = results["reset-connect"]
            n = sum(rs[k]["reshim"]["n"] for k in rs)
            f = n - sum(rs[k]["reshim"]["ok"] for k in rs)
            if binom_tail(n, f, 0.01) >= 0.001:
                bad.append("reset-connect: RESHIM_REPLAY=connect rescued %d/%d: not told from "
                           "replaying (p = %.4f at 99 %%)" % (n - f, n, binom_tail(n, f, 0.01)))
            for k in rs:
                r = rs[k]["reshim"]
                if r["pushed"] != r["n"] or r["replays"]:
                    bad.append("reset-connect/%s: %d of %d clients pushed stats, %d replays "
                               "(want all, 0)" % (k, r["pushed"], r["n"], r["replays"]))
        if bad:
            print("outage: FAIL\n  " + "\n  ".join(bad), file=sys.stderr)
            sys.exit(1)
        print("outage: all assertions hold (reshim >= no shim everywhere; refused, late, "
              "flapping rescued >= 95%, reset, queue, keepalive >= 99%; nginx served what the "
              "clients got; RESHIM_REPLAY=connect fails as before replay, 0 replays)", file=sys.stderr)


if __name__ == "__main__":
    main()
