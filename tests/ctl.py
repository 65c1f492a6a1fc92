# ctl.py SOCKET STEP...: speak the shadowcopy control protocol, one step at
# a time, for shell tests.  A step is a request line ("HOLD timeout=500"),
# "sleep SECONDS", or "block" (sleep forever, keeping the connection open:
# a stuck client).  Each request and its reply lines are printed, flushed,
# as "REQUEST -> LINE | LINE".
import socket
import sys
import time

s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
for step in sys.argv[2:]:
    if step.startswith("sleep "):
        time.sleep(float(step[6:]))
        continue
    if step == "block":
        while True:
            time.sleep(3600)
    f.write(step + "\n")
    f.flush()
    out = []
    while True:
        line = f.readline()
        if not line:
            out.append("EOF")
            break
        out.append(line.rstrip("\n"))
        if line.startswith("OK") or line.startswith("ERR"):
            break
    print("%s -> %s" % (step, " | ".join(out)), flush=True)
