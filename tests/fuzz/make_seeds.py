#!/usr/bin/python3
"""Writes the hand-made seeds of tests/fuzz/corpus/NAME/seed-*.

The seeds are meaningful inputs for each harness: libreshim(7)'s configuration
values and their edges, real requests, snapshots with hostile strings in the
byte layout fuzz_encode.c reads, JSON edge cases. Answers captured from a
real shimmed process (python3 under build/libreshim.so: stats, config,
heap 10, trim, errors) are kept beside them as real-*; this script does not
touch those. Run it again after changing a harness's input layout:
    tests/fuzz/make_seeds.py
"""
import math
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(name, seed, data):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + seed), "wb") as f:
        f.write(data)


# ---- config: NUL-separated NAME=value environments ----
def env(*pairs):
    return b"\0".join(p.encode() if isinstance(p, str) else p for p in pairs)


defaults = [
    "RESHIM_DISABLE=0", "RESHIM_LOG=warn", "RESHIM_RETRIES=3", "RESHIM_BACKOFF_BASE=500ms",
    "RESHIM_BACKOFF_MAX=5s", "RESHIM_JITTER=equal", "RESHIM_RETRY_DEADLINE=10s",
    "RESHIM_RETRY_BUDGET=20%", "RESHIM_BREAKER=5", "RESHIM_NONBLOCK=on", "RESHIM_DEST=all",
    "RESHIM_DNS_STALE=1h", "RESHIM_MEM_BUDGET=auto", "RESHIM_MEM_WARN=80%",
    "RESHIM_MEM_TRIM=90%", "RESHIM_MEM_POLICY=trim", "RESHIM_HEAP_SAMPLE=512K",
    "RESHIM_INTERVAL=1s", "XDG_RUNTIME_DIR=/run/user/1000",
]
put("config", "defaults", env(*defaults))
put("config", "everything", env(
    "RESHIM_DISABLE=1", "RESHIM_LOG=debug", "RESHIM_LOG_FILE=/var/log/app/reshim.log",
    "RESHIM_RETRIES=100", "RESHIM_BACKOFF_BASE=250ms", "RESHIM_BACKOFF_MAX=2min",
    "RESHIM_JITTER=decorrelated", "RESHIM_RETRY_DEADLINE=1.5s", "RESHIM_RETRY_BUDGET=100%",
    "RESHIM_BREAKER=0", "RESHIM_NONBLOCK=off",
    "RESHIM_DEST=db.internal:5432,10.0.0.0/8,[::1]:6379,unix:/run/app-*.sock,!10.0.0.5:22",
    "RESHIM_DNS_STALE=30min", "RESHIM_MEM_BUDGET=300M", "RESHIM_MEM_WARN=70%",
    "RESHIM_MEM_TRIM=85%", "RESHIM_MEM_POLICY=enforce", "RESHIM_HEAP_SAMPLE=0",
    "RESHIM_RUN_DIR=/run/user/1000/reshim", "RESHIM_INTERVAL=10ms",
    "RESHIM_PUSH=/run/reshim-collector.sock"))
put("config", "units", env(
    "RESHIM_MEM_BUDGET=90%", "RESHIM_HEAP_SAMPLE=1MiB", "RESHIM_BACKOFF_BASE= 2 s ",
    "RESHIM_BACKOFF_MAX=1h", "RESHIM_DNS_STALE=0", "RESHIM_RETRY_DEADLINE=500us",
    "RESHIM_INTERVAL=1h", "RESHIM_MEM_WARN=0.5%", "RESHIM_MEM_TRIM=100%"))
put("config", "sizes", env(
    "RESHIM_MEM_BUDGET=1G", "RESHIM_HEAP_SAMPLE=4096", "RESHIM_MEM_BUDGET=2gib",
    "RESHIM_HEAP_SAMPLE=100B", "RESHIM_MEM_BUDGET=1.5TB"))
put("config", "bad", env(
    "RESHIM_RETRIES=101", "RESHIM_LOG=verbose", "RESHIM_BACKOFF_BASE=1s",
    "RESHIM_BACKOFF_MAX=100ms", "RESHIM_MEM_WARN=95%", "RESHIM_MEM_TRIM=90%",
    "RESHIM_RUN_DIR=relative/dir", "RESHIM_MEM_BUDGET=512K", "RESHIM_INTERVAL=5ms",
    "RESHIM_RETRY_BUDGET=120%", "RESHIM_DEST=300.1.1.1:99999", "RESHIM_DISABLE=maybe",
    "RESHIM_LOG_FILE=" + "/x" * 200, "RESHIM_BREAKER=-1", "RESHIM_DNS_STALE=5",
    "RESHIM_HEAP_SAMPLE=2G", "RESHIM_PUSH=", "XDG_RUNTIME_DIR=not-absolute"))
put("config", "huge-numbers", env(
    "RESHIM_MEM_BUDGET=" + "9" * 400 + "T", "RESHIM_BACKOFF_BASE=" + "1" * 30 + "h",
    "RESHIM_RETRIES=" + "0" * 50 + "7", "RESHIM_MEM_WARN=" + "0." + "0" * 300 + "1%",
    "RESHIM_HEAP_SAMPLE=18446744073709551615", "RESHIM_DNS_STALE=2562047h"))
put("config", "dest-edges", env(
    "RESHIM_DEST=" + ",".join("10.%d.0.0/16" % i for i in range(33)),
    "RESHIM_DEST=[fe80::1%eth0]:80"))

# ---- dest: RULES \0 PATTERN \0 SUBJECT \0 family len nbuf namehit body ----
def addr(fam, length, body, nbuf=128, hit=1):
    return bytes([fam, length, nbuf, hit]) + body


v4 = struct.pack(">H", 8080) + bytes([127, 0, 0, 1])
v6 = struct.pack(">H", 6379) + b"\0" * 4 + b"\0" * 15 + b"\1" + b"\0" * 4
mapped = struct.pack(">H", 443) + b"\0" * 4 + b"\0" * 10 + b"\xff\xff" + bytes([10, 0, 0, 5]) + b"\0" * 4
put("dest", "v4", b"127.0.0.1:8080,!10.0.0.5:22\0/run/*.sock\0/run/app.sock\0" + addr(0, 16, v4))
put("dest", "v6", b"[::1]:6379,fe80::/10\0a?c*\0abcdef\0" + addr(1, 28, v6))
put("dest", "mapped", b"10.0.0.0/8:443\0*\0\0" + addr(1, 28, mapped))
put("dest", "unix", b"unix:/run/app-*.sock,!unix:/run/app-admin.sock\0/run/app-*.sock\0/run/app-1.sock\0"
    + addr(2, 2 + 20, b"/run/app-1.sock\0"))
put("dest", "abstract", b"unix:@reshim-*\0@*\0@reshim-0/1\0" + addr(2, 2 + 13, b"\0reshim-0/123"))
put("dest", "names", b"db.internal:5432, cache ,!db.internal:22\0**?*\0x\0" + addr(0, 16, v4, 40, 0))
put("dest", "all", b"all\0*\0anything\0" + addr(7, 40, b"\1" * 30))
put("dest", "short", b" * \0\0\0" + addr(0, 8, v4, 5))
put("dest", "many", (",".join("!192.168.%d.1" % i for i in range(32))).encode() + b"\0\0\0")

# ---- request: what clients send ----
for i, r in enumerate(["stats\n", "metrics\n", "config\nversion\nhelp\n", "trim\n",
                       "watch\n", "watch 100\n", "watch 10\nwatch 3600000\n", "watch 5\n",
                       "watch 3600001\n", "heap 10\n", "heap 1\nheap 1000\n", "heap 0\n",
                       "heap 1001\n", "heap\n", "heap ten\n", "  stats \t\r\n", "\r\n\n \n",
                       "stats extra\n", 'bogus "x"\n', "STATS\n", "watch 0100\n",
                       "heap 000000000010\n", "heap 0000000000010\n"]):
    put("request", "%02d" % i, r)
put("request", "long", "stats " + "x" * 4090 + "\n")
put("request", "utf8", "h\u00e9llo \u2603 \U0001f600\n".encode())
put("request", "bytes", b"\xff\xfe\x80 \xc3\x28 \xed\xa0\x80 \xf4\x90\x80\x80\x00\x1b[31m\n")
put("request", "no-newline", "stats")

# ---- encode: the layout fuzz_encode.c reads ----
def field(s, size):
    if isinstance(s, str):
        s = s.encode()
    s = s[:size]
    return bytes([len(s)]) + s


def u64(v):
    return struct.pack(">Q", v & (2**64 - 1))


def dbl(v):
    return struct.pack(">d", v)


def snapshot(pid, comm, version, doubles, dests, words=("env", "ok", "trim"), big=0):
    b = u64(pid) + field(comm, 64) + field(version, 16)
    b += b"".join(dbl(d) for d in doubles)
    for c in range(4):
        b += u64(c * 7 + big) + u64(c + big) + u64(big)
    b += u64(big)                             # dns_stale
    b += u64(-5 if big else 123456789)        # heap_live_bytes (signed)
    b += u64(34 << 20) + u64(300 << 20)       # rss, budget
    for w in words:
        b += field(w, 16)
    b += u64(big)                             # enomem
    for d in dests:
        b += field(d[0], 128) + field(d[1], 4) + field(d[2], 16) + field(d[3], 16)
        b += u64(5 + big) + u64(1024 + big) + u64(big)
    return b


def head(nsnap, ndest):
    return bytes([(ndest << 2) | (nsnap - 1)])


real = [("127.0.0.1:2", "out", "ECONNREFUSED", "closed"), ("[::1]:443", "in", "", "open"),
        ("unix:/run/app.sock", "out", "ETIMEDOUT", "half-open")]
put("encode", "real", head(1, 3) + snapshot(18483, "python3", "0.1.0",
                                            [8.574, 1796171478.654, 1796171487.229], real))
hostile = [
    ("\"quoted\" \\back\\ \nnew\rline\ttab", "o\"t", "\x1b[31mred", "\x7f\x00x"),
    (b"\xff\xfe\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80\xf8" + "\u00e9\u2603\U0001f600".encode(),
     b"\xe2\x82", b"\xc3", b"\xf0\x9f\x98"),
    ("x" * 128, "in!!", "E" * 16, "B" * 16),
    (b"\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x1f" * 4, "", "", ""),
]
put("encode", "hostile", head(2, 4)
    + snapshot(-1, b"\"a\\b\nc\x00d\x1b\xff" + b"\xf0\x9f\x98\x80" * 12, "\\\\\"\"\n\n",
               [float("nan"), float("inf"), -0.0], hostile, ("", "over", "enf\"orce"), 2**64 - 1)
    + snapshot(2**31 - 1, "\u00e9" * 32, "v" * 16, [1e308, 5e-324, -1e15], hostile[:2],
               (b"\xff" * 16, "critical", "warn")))
put("encode", "doubles", head(1, 0) + snapshot(1, "t", "0.1.0", [0.0005, 2.5e-3, 1.0005], [])
    + snapshot(2, "t", "0.1.0", [-0.0004, 9007199254740993.0, 123456789.1234], []))
put("encode", "ties", head(1, 0) + snapshot(0, "ties", "", [0.125, 2.0625, 1e22], []))
put("encode", "empty", b"")

# ---- json: the CLI's JSON reader ----
for i, j in enumerate([
        '{"error":"unknown request \\"bogus\\"; try help"}',
        '{"trimmed_bytes":0,"rss_before_bytes":21340160,"rss_after_bytes":21344256,"ms":0}',
        '[' * 64 + ']' * 64, '[' * 65 + ']' * 65, '[' * 66 + ']' * 66,
        '{"a":' * 64 + '1' + '}' * 64,
        '"\\u0000\\ud83d\\ude00\\ud800\\udc00\\udbff\\ud800x\\u00e9\\/\\b\\f\\n\\r\\t"',
        '[-0,1e400,-1e400,1.5e-400,18446744073709551615,18446744073709551616,0.1,1E+2,-12.5e-3]',
        '{"dup":1,"dup":2,"":null,"t":true,"f":false}',
        ' \t\r\n[ ] ', '"\xff\xfe raw bytes"', '01', '1.', '-', '.5', '[1,]', '{"a"}',
        '"unterminated', '"\\x"', '"\\u12"', 'tru', 'nul', '[1 2]', '{"a":1,}']):
    put("json", "%02d" % i, j.encode("latin-1") if "\xff" in j else j)

# ---- snapjson: stats objects ----
dest_obj = ('{"dest":"10.0.%d.%d:80","dir":"out","calls":1,"failures":1,"retries":0,'
            '"recovered":0,"gave_up":0,"sends":0,"recvs":0,"bytes_out":0,"bytes_in":0,'
            '"io_failures":0,"skipped_breaker":0,"skipped_budget":0,"skipped_filter":0,'
            '"last_error":"ECONNREFUSED","breaker":"closed"}')
dests = ",".join(dest_obj % (i // 250, i % 250) for i in range(520))
put("snapjson", "520-dests", '{"pid":1,"comm":"many","net":{"destinations":[' + dests + ']}}')
put("snapjson", "keys-anywhere",
    ' { "mem" : { "state" : "warn" , "heap_live_bytes" : -9223372036854775808 } ,'
    ' "unknown" : [ { "x" : [ 1 , 2 , { } ] } , null , true , "s" ] ,'
    ' "pid" : -2147483648 , "comm" : "a\\u0000b\\ud800" , "uptime_s" : 1e-400 ,'
    ' "time_s" : 1.7976931348623157e308 , "start_time_s" : -0.0 } ')
put("snapjson", "cut-strings",
    '{"comm":"' + "\\u00e9" * 40 + '","version":"' + "\U0001f600" * 5 + '",'
    '"mem":{"policy":"' + "x" * 20 + '"},"net":{"destinations":[{"dir":"outward"}]}}')
put("snapjson", "bad-numbers",
    '{"pid":2147483648,"net":{"dns_stale":18446744073709551616}}')
put("snapjson", "deep", '{"x":' + '[' * 70 + ']' * 70 + '}')
