"""flap_http.py PORT [UP [DOWN]]: an HTTP server on 127.0.0.1:PORT that flaps:
it binds and listens for UP seconds (default 0.3), answering every request
with 200 and the body "flap\\n", then closes its listening socket for DOWN
seconds (default 0.2) so that connects are refused, over and over
(SO_REUSEADDR lets it bind again at once).

Only connects made while it is down may fail: before closing the listener it
accepts and serves whatever is in the backlog, so a client that got connected
is always served. It is single-threaded on purpose: with serving threads, a
GIL switch between the last accept and the close would widen the window in
which a just-connected client is reset by the close; here it is microseconds.
Clients must send their request right after connecting (each connection gets
2 s). Prints "cycle N up" / "cycle N down" on stdout. Runs until killed."""
import select
import socket
import sys
import time

port = int(sys.argv[1])
up = float(sys.argv[2]) if len(sys.argv) > 2 else 0.3
down = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2
BODY = b"flap\n"
REPLY = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
         b"Connection: close\r\n\r\n" % len(BODY)) + BODY

def serve(c):
    try:
        c.settimeout(2)
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
        c.close()  # the request was read whole: a FIN, not a reset

def accept_all(ls):
    while True:
        try:
            c, _ = ls.accept()
        except (BlockingIOError, InterruptedError):
            return
        serve(c)

cycle = 0
while True:
    cycle += 1
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.setblocking(False)
    for i in range(200):
        try:
            ls.bind(("127.0.0.1", port))
            break
        except OSError:
            time.sleep(0.01)
    else:
        raise SystemExit("flap_http: cannot bind port %d" % port)
    ls.listen(128)
    print("cycle %d up" % cycle, flush=True)
    until = time.monotonic() + up
    while True:
        left = until - time.monotonic()
        if left <= 0:
            break
        if select.select([ls], [], [], left)[0]:
            accept_all(ls)
    accept_all(ls)  # drain the backlog, then truly close: connects are refused
    ls.close()
    print("cycle %d down" % cycle, flush=True)
    time.sleep(down)
