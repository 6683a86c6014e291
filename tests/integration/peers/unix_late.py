"""unix_late.py PATH DELAY [START]: a unix-socket stream server whose socket
file PATH appears DELAY seconds after START (a time.time() value, default:
now). For every line received on a connection it answers "echo: LINE\\n".
Prints "listening PATH" once the socket exists. Runs until killed."""
import os
import socket
import sys
import threading
import time

path = sys.argv[1]
delay = float(sys.argv[2])
start = float(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] else time.time()

def serve(c):
    with c, c.makefile("rb") as r:
        for line in r:
            c.sendall(b"echo: " + line.rstrip(b"\n") + b"\n")

left = start + delay - time.time()
if left > 0:
    time.sleep(left)
try:
    os.unlink(path)
except FileNotFoundError:
    pass
ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
ls.bind(path)
ls.listen(64)
print("listening %s" % path, flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
