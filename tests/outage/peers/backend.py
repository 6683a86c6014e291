#!/usr/bin/python3
"""backend.py [options] ADDR PORT: the HTTP backend of the outage matrix.

Answers every request with 200 and the body "ok\\n" (HTTP/1.0, Connection:
close), one thread per connection. Prints "ready" on stdout once it is bound
(and, unless --listen-on-signal, listening).

  --listen-on-signal  bind at once but listen only at SIGUSR1: until then a
                      connect is refused (ECONNREFUSED), as for a backend
                      whose port is known but which is not serving yet.
  --reset-every K     close every K-th accepted connection (the 1st, the
                      K+1-th, ...) at once with SO_LINGER 0, i.e. with a RST,
                      without reading the request; serve the others.
  --reset-first N     the first N accepted connections are reset, then serve.
  --verbose           one line per accepted connection: "accept N reset|serve".
Runs until killed (SIGTERM).
"""
import signal
import socket
import struct
import sys
import threading

args = sys.argv[1:]
listen_on_signal = reset_every = reset_first = verbose = 0
while args and args[0].startswith("--"):
    opt = args.pop(0)
    if opt == "--listen-on-signal":
        listen_on_signal = 1
    elif opt == "--verbose":
        verbose = 1
    elif opt == "--reset-every":
        reset_every = int(args.pop(0))
    elif opt == "--reset-first":
        reset_first = int(args.pop(0))
    else:
        sys.exit("backend.py: unknown option %s" % opt)
if len(args) != 2:
    sys.exit(__doc__)
addr, port = args[0], int(args[1])

BODY = b"ok\n"
REPLY = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
         b"Connection: close\r\n\r\n" % len(BODY)) + BODY


def serve(c):
    try:
        c.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                return
            data += chunk
        c.sendall(REPLY)
    except OSError:
        pass
    finally:
        c.close()


def reset(c):
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
if listen_on_signal:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
print("ready", flush=True)
if listen_on_signal:
    signal.sigwait({signal.SIGUSR1})
ls.listen(512)
print("listening", flush=True)
n = 0
while True:
    try:
        c, _ = ls.accept()
    except InterruptedError:
        continue
    n += 1
    if (reset_every and (n - 1) % reset_every == 0) or n <= reset_first:
        reset(c)
        if verbose:
            print("accept %d reset" % n, flush=True)
        continue
    if verbose:
        print("accept %d serve" % n, flush=True)
    threading.Thread(target=serve, args=(c,), daemon=True).start()
