#!/usr/bin/python3
"""stats_client.py: a small client of reshim's stats socket for the
integration tests (independent of the reshim CLI). A socket is named by its
path, or by "@name" for an abstract socket.

As a module: request(where, line) -> bytes, watch(where, ms, seconds) ->
[lines], connect(where). As a program: stats_client.py WHERE REQUEST...
prints each answer (exit 1 when the connection fails)."""
import socket
import sys
import time


def address(where):
    return "\0" + where[1:] if where.startswith("@") else where


def connect(where, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(address(where))
    return s


def read_all(s, deadline):
    """Reads to EOF (or a reset after the data), until deadline."""
    out = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no EOF within the time limit; got %r" % out[:200])
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except ConnectionResetError:
            return out
        if not d:
            return out
        out += d


def request(where, line, timeout=5.0, newline=True):
    """One-shot: sends the line, half-closes, reads the answer to EOF."""
    s = connect(where, timeout)
    try:
        data = line.encode() if isinstance(line, str) else line
        s.sendall(data + (b"\n" if newline else b""))
        s.shutdown(socket.SHUT_WR)
        return read_all(s, time.monotonic() + timeout)
    finally:
        s.close()


def watch(where, ms, seconds):
    """Lines received within `seconds` after "watch MS"."""
    s = connect(where)
    s.sendall(b"watch %d\n" % ms if ms is not None else b"watch\n")
    buf = b""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s.settimeout(max(0.001, end - time.monotonic()))
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
    s.close()
    return buf.split(b"\n")[:-1] if buf.endswith(b"\n") else buf.split(b"\n")[:-1]


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: stats_client.py SOCKET|@ABSTRACT REQUEST...")
    try:
        for req in sys.argv[2:]:
            sys.stdout.buffer.write(request(sys.argv[1], req))
    except OSError as e:
        print("stats_client: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        sys.exit(1)
