#!/usr/bin/python3
"""delay_link.py DELAY_MS LISTEN:UPSTREAM ...: a loopback link with a one-way
delay, for the outage matrix's keep-alive race (the kernel here has no
netem). For each LISTEN port (127.0.0.1) a connection is accepted and one made
to 127.0.0.1:UPSTREAM; everything each side does reaches the other side
DELAY_MS later, in order: its bytes, its end of file (shutdown for writing)
and its reset (ECONNRESET or EPIPE: the other side is closed with SO_LINGER 0,
i.e. a RST). An upstream that refuses resets the client at once.

On loopback a server's close reaches the client within microseconds, so an
idle keep-alive connection almost never races the client's next request; over
a real link the request can be on its way while the server's FIN is on its
way back: DELAY_MS gives the race that window (2 x DELAY_MS).

Prints "ready" once every port listens. Runs until killed (SIGTERM).
"""
import asyncio
import socket
import struct
import sys


def reset(s):
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    s.close()


def shut(s):
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass


async def pump(loop, src, dst, delay, done):
    """src's bytes, end of file or reset, delay seconds later on dst."""
    def later(f, *a):
        loop.call_later(delay, f, *a)

    def send(data):
        if dst.fileno() < 0:
            return
        try:
            dst.sendall(data)     # small replies: the socket buffer takes them
        except OSError:
            reset(src)
    while True:
        try:
            data = await loop.sock_recv(src, 65536)
        except OSError:
            later(reset, dst)
            break
        if not data:
            later(shut, dst)
            break
        later(send, data)
    done.append(src)


async def link(loop, client, upstream, delay):
    up = socket.socket()
    up.setblocking(False)
    up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await loop.sock_connect(up, ("127.0.0.1", upstream))
    except OSError:
        reset(client)
        up.close()
        return
    done = []
    await asyncio.gather(pump(loop, client, up, delay, done), pump(loop, up, client, delay, done))
    await asyncio.sleep(delay * 2)       # the last delayed events
    for s in (client, up):
        if s.fileno() >= 0:
            s.close()


async def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    delay = float(sys.argv[1]) / 1000.0
    loop = asyncio.get_running_loop()
    tasks = set()

    async def serve(ls, upstream):
        while True:
            c, _ = await loop.sock_accept(ls)
            c.setblocking(False)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t = asyncio.ensure_future(link(loop, c, upstream, delay))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    for pair in sys.argv[2:]:
        listen, upstream = (int(x) for x in pair.split(":"))
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", listen))
        ls.listen(512)
        ls.setblocking(False)
        tasks.add(asyncio.ensure_future(serve(ls, upstream)))
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
