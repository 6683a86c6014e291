"""cli_pty.py OUT SECONDS KEY|TERM CMD...: runs CMD on a pseudo-terminal
(80 columns, 24 rows; the environment as given, so TERM, LANG and NO_COLOR
reach CMD) for SECONDS, then types q (KEY) or sends it SIGTERM (TERM),
waits up to 5 s for it to end, and writes every byte it drew to OUT.
Prints "exit N" (the exit status, or -SIG) and "termios restored yes|no"
(canonical mode and echo back on the terminal after CMD ended)."""
import fcntl
import os
import select
import signal
import struct
import sys
import termios
import time

out, seconds, action, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]

master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
attrs = termios.tcgetattr(slave)
attrs[3] |= termios.ICANON | termios.ECHO
termios.tcsetattr(slave, termios.TCSANOW, attrs)

pid = os.fork()
if pid == 0:
    os.close(master)
    os.login_tty(slave)
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)

data = bytearray()


def pump(timeout):
    r, _, _ = select.select([master], [], [], timeout)
    if r:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            return
        data.extend(chunk)


deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    pump(deadline - time.monotonic())
if action == "KEY":
    os.write(master, b"q")
else:
    os.kill(pid, signal.SIGTERM)
status = None
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        break
    pump(0.05)
if status is None:
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
for _ in range(20):  # what is still buffered
    r, _, _ = select.select([master], [], [], 0.05)
    if not r:
        break
    try:
        data.extend(os.read(master, 65536))
    except OSError:
        break
with open(out, "wb") as f:
    f.write(data)
lflag = termios.tcgetattr(slave)[3]
restored = (lflag & termios.ICANON) and (lflag & termios.ECHO)
code = os.waitstatus_to_exitcode(status)
print("exit %d" % code)
print("termios restored %s" % ("yes" if restored else "no"))
