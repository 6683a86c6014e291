"""cli_client.py URL [SECONDS]: a long-running client for test_cli.sh. Every
50 ms it fetches URL with urllib (a new connection each time, timeout 5 s)
and keeps some memory allocated (grows by 256 KB a round up to about 16 MB,
then drops half, over and over), until killed or SECONDS (default 120)
pass. Against a flapping server its connects are refused now and then, so
under the shim it retries and recovers. Prints "ok N failed N" at exit."""
import signal
import sys
import time
import urllib.request

url = sys.argv[1]
seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
ok = failed = 0
keep = []


def done(*_):
    print("ok %d failed %d" % (ok, failed), flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, done)
end = time.monotonic() + seconds
while time.monotonic() < end:
    keep.append(bytearray(256 * 1024))
    if len(keep) > 64:
        del keep[:32]
    try:
        urllib.request.urlopen(url, timeout=5).read()
        ok += 1
    except Exception:
        failed += 1
    time.sleep(0.05)
done()
