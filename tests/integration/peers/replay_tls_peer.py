#!/usr/bin/python3
"""replay_tls_peer.py N PORT CERT KEY [after]: an HTTPS peer whose first N
connections are reset (SO_LINGER 0) right after it has read the client's
first TLS record (the ClientHello), before answering anything; later ones
get a real TLS handshake with CERT/KEY and "200 ok". One line per connection
on stdout: "hello CONN reset", or "hello CONN served" as its handshake
starts. With "after", the first N connections complete the handshake
instead, and are reset once a request was read ("request CONN" counts it).
Prints "ready"."""
import socket
import ssl
import struct
import sys
import threading

n, port, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
after = sys.argv[5:] == ["after"]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
lock = threading.Lock()
count = [0]


def serve(c, cid):
    try:
        if cid <= n and not after:
            c.settimeout(5)
            head = b""
            while len(head) < 5:
                head += c.recv(5 - len(head))
            want = struct.unpack("!H", head[3:5])[0]
            got = 0
            while got < want:
                got += len(c.recv(want - got))
            print("hello %d reset" % cid, flush=True)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            return
        print("hello %d served" % cid, flush=True)  # a handshake starts
        s = ctx.wrap_socket(c, server_side=True)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return
            data += chunk
        if cid <= n:  # after the handshake: a request the server got
            print("request %d" % cid, flush=True)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            return
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        s.close()
    except (OSError, ssl.SSLError):
        c.close()


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
print("ready", flush=True)
while True:
    c, _ = ls.accept()
    with lock:
        count[0] += 1
        cid = count[0]
    threading.Thread(target=serve, args=(c, cid), daemon=True).start()
