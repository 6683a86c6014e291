"""mem_hog.py: a python3 program that runs out of memory the ordinary way,
for the memory integration tests (test_mem_enforce.sh, test_mem_cgroup.sh).

    python3 mem_hog.py small [--bound-mb N] [--again-mb M]
    python3 mem_hog.py big [--size BYTES] [--again-mb M]

small: appends small objects (a 40-char str and, every 8th item, a short
list) to a list until MemoryError; prints "caught MemoryError at N items
(rss X MB)", drops the list, prints "recovered (rss Y MB)". As a safety net it
stops by itself when its RSS passes --bound-mb (default 400) and prints
"bound reached at N items (rss X MB)" instead: nothing stopped it.
big: one bytearray(--size, default 300_000_000): "caught MemoryError for
one allocation of N bytes" or "allocated N bytes".
Then, with --again-mb, allocates that many MB again and prints "allocated M
MB again" (the program is healthy after the error), and last "peak rss Z
MB" (VmHWM from /proc/self/status, read by the program itself). Exit 0.
"""
import os
import sys

MB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss():
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * PAGE


def vmhwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main():
    args = sys.argv[1:]
    mode = args[0] if args else "small"
    bound = 400 * MB
    again = 0
    size = 300_000_000
    i = 1
    while i < len(args):
        if args[i] == "--bound-mb":
            bound = int(args[i + 1]) * MB
        elif args[i] == "--again-mb":
            again = int(args[i + 1])
        elif args[i] == "--size":
            size = int(args[i + 1])
        i += 2

    if mode == "small":
        items = []
        n = 0
        try:
            while True:
                items.append("%040d" % n)
                if n % 8 == 0:
                    items.append([n, n + 1])
                n += 1
                if n % 4096 == 0 and rss() > bound:
                    print("bound reached at %d items (rss %d MB)" % (n, rss() // MB), flush=True)
                    break
        except MemoryError:
            caught_at = n
            try:
                now = rss() // MB
            except MemoryError:
                now = -1
            items = None
            print("caught MemoryError at %d items (rss %d MB)" % (caught_at, now), flush=True)
            print("recovered (rss %d MB)" % (rss() // MB), flush=True)
        items = None
    else:
        try:
            block = bytearray(size)
            print("allocated %d bytes (rss %d MB)" % (size, rss() // MB), flush=True)
            block = None
        except MemoryError:
            print("caught MemoryError for one allocation of %d bytes" % size, flush=True)
            print("recovered (rss %d MB)" % (rss() // MB), flush=True)

    if again:
        chunks = [bytes(4000) + b"%d" % k for k in range(again * MB // 4096)]
        print("allocated %d MB again (%d chunks)" % (again, len(chunks)), flush=True)
        chunks = None
    print("peak rss %d MB" % (vmhwm() // MB), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
