#!/usr/bin/python3
"""replay_peer.py MODE N PORT: an HTTP/1.1 peer that breaks connections in
chosen ways, and counts what it received (one line per request on stdout:
"req CONN METHOD PATH", so a test can tell how often a request arrived).
Prints "ready" once listening. Modes (N: how many connections misbehave,
counted from the first; the rest are served):

  reset-accept   the connection is reset (SO_LINGER 0) as soon as accepted,
                 nothing read (a server that accepts and dies)
  reset-request  the whole request (and any request pipelined behind it) is
                 read and counted, then the connection is reset
  eof-request    as reset-request, but closed with a FIN (end of file)
  close-accept   closed in order (FIN) as soon as accepted, nothing read; each
                 such connection logged as "req CONN ACCEPTED -" (a server
                 that accepts and closes: its answer, never a break)
  half           the request is read and counted, half a response is sent,
                 then the connection is reset
  keepalive-drop HTTP/1.1 keep-alive: the first request of a connection is
                 served, the second one read, counted, and the connection
                 closed without an answer (the idle-close race, made certain)
A negative N: connections 1, 1-N, 1-2N, ... misbehave (every -N-th).
Served requests get "200 ok" with the request count in the body.
"""
import socket
import struct
import sys
import threading
import time

mode, n, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lock = threading.Lock()
state = {"conns": 0, "reqs": 0}


def log(line):
    with lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def reset(c):
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


def requests_in(buf):
    """Complete requests at the start of buf: [(method, path)], rest."""
    out = []
    while True:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return out, buf
        head = buf[:end].decode("latin-1").split("\r\n")
        method, path = head[0].split(" ")[:2]
        length = 0
        for h in head[1:]:
            k, _, v = h.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        if len(buf) < end + 4 + length:
            return out, buf
        out.append((method, path))
        buf = buf[end + 4 + length:]


def read_requests(c, cid, buf=b"", idle=None):
    """Reads until at least one complete request; counts every complete one
    (a pipelined second one too, after a short wait for it)."""
    c.settimeout(idle if idle else 5)
    got = []
    while not got:
        chunk = c.recv(65536)
        if not chunk:
            return None, buf
        buf += chunk
        got, buf = requests_in(buf)
    c.settimeout(0.1)
    try:
        while True:
            chunk = c.recv(65536)
            if not chunk:
                break
            buf += chunk
            more, buf = requests_in(buf)
            got += more
    except (socket.timeout, BlockingIOError):
        pass
    with lock:
        state["reqs"] += len(got)
        count = state["reqs"]
    for m, p in got:
        log("req %d %s %s" % (cid, m, p))
    return got, buf, count


def reply(count, keep):
    body = b"ok %d\n" % count
    return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: %s\r\n\r\n"
            % (len(body), b"keep-alive" if keep else b"close")) + body


def serve(c, cid):
    try:
        bad = cid <= n if n >= 0 else (cid - 1) % -n == 0
        if mode == "keepalive-drop":
            buf, served = b"", 0
            while True:
                r = read_requests(c, cid, buf)
                if r[0] is None:
                    c.close()
                    return
                got, buf, count = r
                if bad and served:
                    c.close()  # a reused connection closed under the request
                    return
                c.sendall(b"".join(reply(count, True) for _ in got))
                served += len(got)
        if bad and mode == "reset-accept":
            reset(c)
            return
        if bad and mode == "close-accept":
            log("req %d ACCEPTED -" % cid)
            c.close()
            return
        r = read_requests(c, cid)
        if r[0] is None:
            c.close()
            return
        got, buf, count = r
        if bad and mode == "reset-request":
            reset(c)
        elif bad and mode == "eof-request":
            c.shutdown(socket.SHUT_RDWR)
            c.close()
        elif bad and mode == "half":
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
            time.sleep(0.05)
            reset(c)
        else:
            c.sendall(reply(count, False))
            c.close()
    except OSError:
        c.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(128)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    with lock:
        state["conns"] += 1
        cid = state["conns"]
    threading.Thread(target=serve, args=(c, cid), daemon=True).start()
