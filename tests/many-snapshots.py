# tests/many-snapshots.py: drive a running server through N snapshots over
# one control connection, with a small random write before each, and keep
# the expected image of a sample of them.  Used by
# tests/test-many-snapshots.sh.
#
#   python3 many-snapshots.py NBD_SOCK CONTROL_SOCK N SAMPLE_DIR
#
# Writes SAMPLE_DIR/NAME for each sampled snapshot (the model's image at
# its creation) and prints the sampled names, one per line.
import os, random, socket, sys
import nbd

nbd_sock, ctl_sock, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(4096)

h = nbd.NBD()
h.set_export_name("live")
h.connect_unix(nbd_sock)
size = h.get_size()
model = bytearray(h.pread(size, 0))

c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(ctl_sock)
f = c.makefile("rwb", buffering=0)

def request(line):
    f.write(line.encode() + b"\n")
    data = []
    while True:
        r = f.readline().decode().rstrip("\n")
        if r == "OK":
            return data
        if r.startswith("ERR"):
            raise RuntimeError("%s: %s" % (line, r))
        data.append(r)

sample = set(range(0, n, max(1, n // 16))) | {n - 1, n - 2}
for i in range(n):
    # A 4K write somewhere: most snapshots differ from the next.
    off = rng.randrange(0, size // 4096) * 4096
    buf = rng.randbytes(4096)
    h.pwrite(buf, off)
    model[off:off + 4096] = buf
    request("CREATE s%d" % i)
    if i in sample:
        open(os.path.join(out, "s%d" % i), "wb").write(model)
        print("s%d" % i)
# The model's live image, for the final check.
open(os.path.join(out, "live"), "wb").write(model)
h.shutdown()
