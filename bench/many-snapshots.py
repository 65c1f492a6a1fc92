# bench/many-snapshots.py: the measuring half of bench/many-snapshots.sh.
#
#   python3 many-snapshots.py create NBD_SOCK CTL_SOCK N
#       N snapshots, each after one 4K write at a random offset; prints
#       the mean creation time (us) over the control socket.
#   python3 many-snapshots.py first-write NBD_SOCK CTL_SOCK COUNT SEED
#       COUNT 4K writes, each to a chunk not written since the last
#       snapshot (so each copies), then the same writes again (no copy):
#       prints "copy p50 p99 mean / nocopy p50 p99 mean" in microseconds.
#   python3 many-snapshots.py read NBD_SOCK EXPORT
#       reads the whole export in 1 MiB requests: prints MiB/s.
import os, random, socket, sys, time
import nbd

def pct(v, p):
    v = sorted(v)
    return v[max(0, (len(v) * p + 99) // 100 - 1)]

def connect(sock, name):
    h = nbd.NBD()
    h.set_export_name(name)
    h.connect_unix(sock)
    return h

def control(path):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(path)
    f = c.makefile("rwb", buffering=0)
    def request(line):
        f.write(line.encode() + b"\n")
        while True:
            r = f.readline().decode().rstrip("\n")
            if r == "OK":
                return
            if r.startswith("ERR"):
                raise RuntimeError("%s: %s" % (line, r))
    return request

cmd = sys.argv[1]
if cmd == "create":
    h = connect(sys.argv[2], "live")
    req = control(sys.argv[3])
    n = int(sys.argv[4])
    rng = random.Random(1)
    size = h.get_size()
    t = []
    for i in range(n):
        h.pwrite(rng.randbytes(4096), rng.randrange(size // 4096) * 4096)
        t0 = time.perf_counter()
        req("CREATE m%d" % i)
        t.append(time.perf_counter() - t0)
    print("%.0f %.0f" % (sum(t) / len(t) * 1e6, pct(t, 99) * 1e6))
elif cmd == "first-write":
    h = connect(sys.argv[2], "live")
    count, seed = int(sys.argv[4]), int(sys.argv[5])
    size = h.get_size()
    cs = 65536
    chunks = random.Random(seed).sample(range(size // cs), count)
    buf = os.urandom(4096)
    res = []
    for _ in range(2):
        t = []
        for c in chunks:
            t0 = time.perf_counter()
            h.pwrite(buf, c * cs)
            t.append(time.perf_counter() - t0)
        res.append(t)
    print("%.0f %.0f %.0f %.0f %.0f %.0f" % (
        pct(res[0], 50) * 1e6, pct(res[0], 99) * 1e6,
        sum(res[0]) / len(res[0]) * 1e6,
        pct(res[1], 50) * 1e6, pct(res[1], 99) * 1e6,
        sum(res[1]) / len(res[1]) * 1e6))
elif cmd == "read":
    h = connect(sys.argv[2], sys.argv[3])
    size = h.get_size()
    t0 = time.perf_counter()
    for off in range(0, size, 1 << 20):
        h.pread(min(1 << 20, size - off), off)
    print("%.0f" % (size / (1 << 20) / (time.perf_counter() - t0)))
