"""client.py URL SECONDS INTERVAL: the demo's client, an ordinary python3
program with no retry logic of its own. Every INTERVAL seconds, for SECONDS
seconds, it GETs URL with urllib.request.urlopen (no timeout: a plain
blocking connect) and prints one line per request on stdout:
  ok SECONDS            the request succeeded, after SECONDS
  fail SECONDS REASON   it failed
and at the end:
  summary requests=N succeeded=N failed=N slowest=SECONDS"""
import sys
import time
import urllib.error
import urllib.request


def reason_of(exc):
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.replace(" ", "_")


def main():
    url, seconds, interval = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    ok = failed = 0
    slowest = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            with urllib.request.urlopen(url) as reply:
                reply.read()
            took = time.monotonic() - t0
            ok += 1
            print("ok %.3f" % took, flush=True)
        except Exception as exc:  # any failure counts; keep going
            took = time.monotonic() - t0
            failed += 1
            print("fail %.3f %s" % (took, reason_of(exc)), flush=True)
        slowest = max(slowest, took)
        time.sleep(interval)
    print("summary requests=%d succeeded=%d failed=%d slowest=%.2f"
          % (ok + failed, ok, failed, slowest), flush=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
