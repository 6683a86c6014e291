"""nb_asyncio_loop.py DEAD_PORT LATE_PORT HEALTHY_PORT: one asyncio event loop
(epoll) that, all at once:
  - runs a 10 ms periodic timer (call_at on a fixed grid) and records how late
    each tick fires (lag = when it ran - when it was due);
  - connects to 127.0.0.1:DEAD_PORT, where nothing ever listens
    (asyncio.open_connection), and records the error it ends with and when;
  - connects to 127.0.0.1:LATE_PORT (a server that starts late) and GETs /;
  - fetches http://127.0.0.1:HEALTHY_PORT/ every 50 ms (open_connection, GET,
    read to EOF) and records each fetch's outcome and time.
Once both connects are settled it runs 200 ms more, then prints one JSON
object on stdout (times in seconds from the start, CPU from getrusage):
  dead_error, dead_errno, dead_s, late_ok, late_error, late_s, late_body,
  ticks, max_lag_ms, worst_lag_at_s, ticks_during (while the dead connect was
  pending), healthy_ok, healthy_fail, healthy_ok_during, healthy_errors,
  cpu_user_s, cpu_sys_s, wall_s."""
import asyncio
import json
import resource
import sys
import time

DEAD, LATE, HEALTHY = (int(a) for a in sys.argv[1:4])
TICK = 0.010
FETCH_EVERY = 0.050


async def get(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError("bad response %r" % head[:40])
    return body.decode()


async def main():
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    lags = []  # (due - t0, lag)
    stop = asyncio.Event()

    def tick(due):
        now = loop.time()
        lags.append((due - t0, now - due))
        if stop.is_set():
            return
        nxt = due + TICK
        while nxt <= now:  # ticks missed while blocked: skip them, the lag shows it
            nxt += TICK
        loop.call_at(nxt, tick, nxt)

    loop.call_at(t0 + TICK, tick, t0 + TICK)

    fetches = []  # (done - t0, ok, error)

    async def fetcher():
        nxt = loop.time()
        while not stop.is_set():
            try:
                body = await asyncio.wait_for(get(HEALTHY), 5)
                fetches.append((loop.time() - t0, body.startswith("healthy"), None))
            except Exception as e:  # noqa: BLE001
                fetches.append((loop.time() - t0, False, "%s: %s" % (type(e).__name__, e)))
            nxt += FETCH_EVERY
            await asyncio.sleep(max(0.0, nxt - loop.time()))

    result = {}

    async def dead():
        try:
            r, w = await asyncio.open_connection("127.0.0.1", DEAD)
            w.close()
            result["dead_error"] = None
            result["dead_errno"] = None
        except OSError as e:
            result["dead_error"] = type(e).__name__
            result["dead_errno"] = e.errno
        result["dead_s"] = loop.time() - t0

    async def late():
        try:
            result["late_body"] = await get(LATE)
            result["late_ok"] = True
            result["late_error"] = None
        except Exception as e:  # noqa: BLE001
            result["late_ok"] = False
            result["late_error"] = "%s: %s" % (type(e).__name__, e)
        result["late_s"] = loop.time() - t0

    f = asyncio.ensure_future(fetcher())
    await asyncio.gather(dead(), late())
    await asyncio.sleep(0.2)
    stop.set()
    await f
    end = result["dead_s"]
    worst = max(lags, key=lambda x: x[1]) if lags else (0, 0)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        ticks=len(lags),
        max_lag_ms=round(worst[1] * 1000, 2),
        worst_lag_at_s=round(worst[0], 3),
        ticks_during=sum(1 for due, _ in lags if due <= end),
        healthy_ok=sum(1 for _, ok, _ in fetches if ok),
        healthy_fail=sum(1 for _, ok, _ in fetches if not ok),
        healthy_ok_during=sum(1 for t, ok, _ in fetches if ok and t <= end),
        healthy_errors=sorted({e for _, _, e in fetches if e})[:3],
        cpu_user_s=round(ru.ru_utime, 3),
        cpu_sys_s=round(ru.ru_stime, 3),
        wall_s=round(loop.time() - t0, 3),
    )
    for k in ("dead_s", "late_s"):
        result[k] = round(result[k], 3)
    print(json.dumps(result, sort_keys=True), flush=True)


asyncio.run(main())
