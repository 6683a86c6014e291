#!/usr/bin/python3
"""A tiny authoritative DNS server for tests, UDP only.

usage: dns_server.py ADDR PORT NAME SILENT_FLAG_FILE LOG_FILE

Answers A queries for NAME with 127.0.0.1 and AAAA queries for NAME with an
empty NOERROR answer; other names get NXDOMAIN. While SILENT_FLAG_FILE exists
(or after SIGUSR1, until SIGUSR2) it drops every query without answering, as
a DNS server that went away does. Writes "ready" to LOG_FILE once bound, then
one line per query: "answered|dropped QTYPE NAME".
"""
import os
import signal
import socket
import struct
import sys

addr, port, name, flag, logpath = sys.argv[1], int(sys.argv[2]), sys.argv[3].lower(), sys.argv[4], sys.argv[5]
silent_by_signal = False


def on_signal(signum, frame):
    global silent_by_signal
    silent_by_signal = signum == signal.SIGUSR1


signal.signal(signal.SIGUSR1, on_signal)
signal.signal(signal.SIGUSR2, on_signal)

log = open(logpath, "a", buffering=1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind((addr, port))
log.write("ready\n")

TYPES = {1: "A", 28: "AAAA"}


def parse_question(msg):
    """(qname, qtype, end offset of the question) or None."""
    if len(msg) < 12 or struct.unpack("!H", msg[4:6])[0] != 1:
        return None
    labels, i = [], 12
    while True:
        if i >= len(msg):
            return None
        n = msg[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(msg):
            return None
        labels.append(msg[i:i + n].decode("ascii", "replace"))
        i += n
    if i + 4 > len(msg):
        return None
    qtype, _qclass = struct.unpack("!HH", msg[i:i + 4])
    return ".".join(labels).lower(), qtype, i + 4


while True:
    try:
        msg, peer = sock.recvfrom(4096)
    except InterruptedError:
        continue
    q = parse_question(msg)
    if q is None:
        continue
    qname, qtype, qend = q
    tname = TYPES.get(qtype, str(qtype))
    if silent_by_signal or os.path.exists(flag):
        log.write("dropped %s %s\n" % (tname, qname))
        continue
    qid, qflags = struct.unpack("!HH", msg[:4])
    rcode, answers = 0, b""
    ancount = 0
    if qname != name:
        rcode = 3  # NXDOMAIN
    elif qtype == 1:
        answers = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
        ancount = 1
    # AAAA (and anything else) for the name: NOERROR, no answer (NODATA).
    flags = 0x8000 | (qflags & 0x7800) | 0x0400 | (qflags & 0x0100) | 0x0080 | rcode
    header = struct.pack("!HHHHHH", qid, flags, 1, ancount, 0, 0)
    sock.sendto(header + msg[12:qend] + answers, peer)
    log.write("answered %s %s\n" % (tname, qname))
