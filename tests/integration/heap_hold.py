# heap_hold.py: holds about 60, 30 and 10 MB from three functions of this
# module, for test_heap_python.sh: a list of large bytes objects (malloc), a
# dict of large strings (malloc), a list of small strings (pymalloc: they
# never reach malloc). Prints "ready PID" and, as JSON, what each function
# holds (sys.getsizeof of what it made: the sizes its allocations asked for)
# and the line of its return statement; then sleeps until killed. On
# SIGUSR1 it drops what hold_small made and prints "freed".
#   python3 heap_hold.py [pool]   pool: each function in a thread-pool worker
import json, os, signal, sys, time


def hold_bytes():
    return [bytes(100_000) for _ in range(600)]


def hold_dict():
    return {i: "x" * 50_000 + str(i) for i in range(600)}


def hold_small():
    return ["s%07d" % i for i in range(150_000)]


def held(name, obj):
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(sys.getsizeof(v) for v in obj.values())
        size += sum(sys.getsizeof(k) for k in obj if k > 256)  # small ints are shared
    else:
        size += sum(sys.getsizeof(v) for v in obj)
    return size


fns = [hold_bytes, hold_dict, hold_small]
if len(sys.argv) > 1 and sys.argv[1] == "pool":
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=3) as pool:
        keep = list(pool.map(lambda f: f(), fns))
else:
    keep = [f() for f in fns]
truth = {f.__name__: {"bytes": held(f.__name__, k), "line": f.__code__.co_firstlineno + 1}
         for f, k in zip(fns, keep)}


def drop(sig, frame):
    keep[2] = None
    print("freed", flush=True)


signal.signal(signal.SIGUSR1, drop)
print("ready", os.getpid(), json.dumps(truth), flush=True)
for _ in range(1200):
    time.sleep(0.1)
