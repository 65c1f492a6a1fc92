# hold-trickle.py CTL URI MODE: hold writes with a 1 s deadline, then keep
# the holding connection busy with a line that never ends, one byte at a
# time (MODE "short"), or after an over-long line (MODE "long").  A live
# write issued meanwhile must complete soon after the deadline: the
# server's deadline is absolute, trickled bytes do not extend it.
import socket
import sys
import threading
import time

import nbd

ctl, uri, mode = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_UNIX)
s.connect(ctl)
s.sendall(b"HOLD timeout=1000\n")
reply = b""
while not reply.endswith(b"OK\n"):
    chunk = s.recv(4096)
    if not chunk:
        sys.exit("HOLD: connection closed: %r" % reply)
    reply += chunk
if mode == "long":
    s.sendall(b"X" * 5000)      # over-long: the server skips to the LF
done = []


def write():
    h = nbd.NBD()
    h.connect_uri(uri)
    h.pwrite(b"z" * 4096, 0)
    done.append(time.monotonic())


t0 = time.monotonic()
threading.Thread(target=write, daemon=True).start()
while time.monotonic() - t0 < 15 and not done:
    try:
        s.sendall(b"Y")
    except OSError:
        break
    time.sleep(0.2)
if not done:
    sys.exit("%s: a live write was held for 15 s past a 1 s hold" % mode)
if done[0] - t0 > 5:
    sys.exit("%s: a live write took %.1f s under a 1 s hold"
             % (mode, done[0] - t0))
print("%s: live write completed after %.1f s" % (mode, done[0] - t0))
