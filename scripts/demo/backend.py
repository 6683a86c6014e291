"""backend.py PORT_FILE: the demo's flapping HTTP backend, on 127.0.0.1 only.

Binds a free port below the ephemeral range, writes its number to PORT_FILE, then serves every GET
with 200 "ok" while it is up. It "restarts" over and over: it closes its
listening socket for 1.0-1.4 s (connects are refused meanwhile), then binds
the same port again (SO_REUSEADDR) and serves for another ~2 s. Before
closing the listener it serves whatever is already queued in the backlog, so
only connects made while it is down fail. Prints "up SECONDS" and
"down SECONDS" (since start) on stdout. Runs until killed."""
import os
import random
import socket
import sys
import threading
import time

# (up, down) seconds, cycled: a fixed pattern, so every run shows the same story.
SCHEDULE = [(2.0, 1.2), (1.8, 1.4), (2.2, 1.0), (1.9, 1.3)]
BODY = b"ok\n"
REPLY = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
         b"Connection: close\r\n\r\n" % len(BODY)) + BODY
START = time.monotonic()


def event(what):
    print("%s %.2f" % (what, time.monotonic() - START), flush=True)


def serve(conn):
    try:
        conn.setblocking(True)
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        conn.sendall(REPLY)
    except OSError:
        pass
    finally:
        conn.close()


def accept_one(listener):
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()


def listen(port):
    for _ in range(50):  # the port may take a moment to be free again
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(64)
            return s
        except OSError:
            s.close()
            time.sleep(0.02)
    sys.exit("backend: cannot bind 127.0.0.1:%d again" % port)


def free_port():
    """A free port below the ephemeral range: a client's own local port can
    then never be the backend's (a connect to a closed port from that same
    port would connect to itself and keep the backend from binding again)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    low = max(low, 2048)
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen(64)
            return s
        except OSError:
            s.close()
    return listen(0)  # no luck: any free port


def main():
    port_file = sys.argv[1]
    listener = free_port()
    port = listener.getsockname()[1]
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, port_file)
    cycle = 0
    while True:
        up, down = SCHEDULE[cycle % len(SCHEDULE)]
        cycle += 1
        event("up")
        deadline = time.monotonic() + up
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            listener.settimeout(left)
            try:
                accept_one(listener)
            except socket.timeout:
                break
            except OSError:
                pass
        # Going down: serve what already queued, then close the listener.
        listener.setblocking(False)
        while True:
            try:
                accept_one(listener)
            except OSError:
                break
        listener.close()
        event("down")
        time.sleep(down)
        listener = listen(port)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
