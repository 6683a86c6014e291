"""nb_asyncio_get.py PORT [HOST]: an asyncio HTTP client. Opens a connection
with asyncio.open_connection (a non-blocking connect waited for by the event
loop's epoll), sends "GET / HTTP/1.0", prints the response body to stdout and
exits 0. Any error: prints "error: TYPE: MESSAGE" to stderr and exits 1.
Prints "connecting" to stderr just before the connect."""
import asyncio
import sys


async def main(host, port):
    print("connecting", file=sys.stderr, flush=True)
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.0\r\nHost: %s:%d\r\n\r\n" % (host.encode(), port))
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status:
        raise RuntimeError("bad status: %r" % status)
    return body


try:
    port = int(sys.argv[1])
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    body = asyncio.run(main(host, port))
except Exception as e:  # noqa: BLE001 - report whatever the connect raised
    print("error: %s: %s" % (type(e).__name__, e), file=sys.stderr)
    sys.exit(1)
sys.stdout.write(body.decode())
