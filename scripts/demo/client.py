"""client.py URL SECONDS INTERVAL [GROW_MB_PER_S]: the demo's client, an
ordinary python3 program with no retry logic and no memory limit of its own.
Every INTERVAL seconds, for SECONDS seconds, it GETs URL with
urllib.request.urlopen (no timeout: a plain blocking connect) and prints one
line per request on stdout:
  ok SECONDS            the request succeeded, after SECONDS
  fail SECONDS REASON   it failed
With GROW_MB_PER_S it also keeps every answer in a cache that creeps up by
that many MB a second (64 KiB objects), as a leaky cache does. A MemoryError
(which reshim's enforce policy raises instead of letting the kernel kill the
program) is handled the way a careful app would: the cache is dropped, and
the program carries on:
  memerr ITEMS RSS_MB   a MemoryError after ITEMS cached objects; cache dropped
and at the end:
  summary requests=N succeeded=N failed=N slowest=SECONDS memerrors=N peak_rss_mb=N"""
import resource
import sys
import time
import urllib.error
import urllib.request

# 64 KiB objects: requests this large are refused at the budget less its
# 2 % reserve, which the small allocations of the request path may still use.
CHUNK = 64 * 1024


def reason_of(exc):
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.replace(" ", "_")


def rss_mb():
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // (1 << 20)


def main():
    url, seconds, interval = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    grow = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    owed = 0.0           # chunks the cache is behind its growth rate
    last = time.monotonic()
    ok = failed = memerrors = 0
    slowest = 0.0
    cache = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(url) as reply:
                reply.read()
            took = time.monotonic() - t0
            ok += 1
            print("ok %.3f" % took, flush=True)
        except MemoryError:  # the request itself ran out: drop the cache too
            took = time.monotonic() - t0
            failed += 1
            print("fail %.3f MemoryError" % took, flush=True)
            cache = []
        except Exception as exc:  # any failure counts; keep going
            took = time.monotonic() - t0
            failed += 1
            print("fail %.3f %s" % (took, reason_of(exc)), flush=True)
        slowest = max(slowest, took)
        now = time.monotonic()
        owed += grow * (1 << 20) * (now - last) / CHUNK  # by the clock, not per request
        last = now
        try:
            while owed >= 1:
                cache.append(bytes(CHUNK - 64) + b"%d" % len(cache))
                owed -= 1
        except MemoryError:
            items = len(cache)
            cache = []
            memerrors += 1
            print("memerr %d %d" % (items, rss_mb()), flush=True)
        time.sleep(interval)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print("summary requests=%d succeeded=%d failed=%d slowest=%.2f memerrors=%d peak_rss_mb=%d"
          % (ok + failed, ok, failed, slowest, memerrors, peak), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
