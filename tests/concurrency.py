# Concurrency test of shadowcopy: writers on several connections, snapshots taken by the CLI meanwhile, snapshot exports read concurrently; every snapshot checked for point-in-time consistency (driven by test-concurrency.sh).
"""
Usage: concurrency.py --sock NBD_SOCK --ctl CONTROL_SOCK --cli SHADOWCOPY
                      --initial FILE --seed N [--seconds S] [--out JSON]

The disk is cut into 4 KiB blocks, grouped in stripes of 3 blocks; stripe
i belongs to writer i % W.  Writer w writes, one request at a time on its
own connection, 1-3 blocks inside one of its stripes; request number s
fills each block b with a pattern encoding (w, b, s).  It logs for each
request the time it was issued and the time it was acknowledged.

Meanwhile the main thread creates snapshots with the CLI, noting the time
before it started the CLI (t0) and after the CLI returned (t1), and reads
each new snapshot in full at once, while the writers go on.  A snapshot is
a point in time, so for each writer it must show exactly the effect of
requests 1..k for some k with:
  - every request acknowledged before t0 included (k >= lo), and
  - no request issued after t1 included (k <= hi).
Two reader threads keep re-reading random ranges of live snapshots; at the
end every snapshot still alive is read in full again.  Both must give the
same content as the first read.  Old snapshots are deleted while readers
may be reading them: a read may then fail, but never return wrong data.
"""

import argparse
import hashlib
import json
import random
import struct
import subprocess
import sys
import threading
import time

import nbd

B = 4096            # block size
S = 3               # blocks per stripe
MAGIC = b"SCCONCUR"
INITIAL = -1

failures = []
flock = threading.Lock()


def failure(msg):
    with flock:
        failures.append(msg)
    print("FAIL: concurrency.py: " + msg, file=sys.stderr, flush=True)


def block_data(w, b, s):
    return struct.pack("<8sIIQQ", MAGIC, w, b, s, s ^ 0xFFFFFFFFFFFFFFFF) * (B // 32)


class Test:
    def __init__(self, args):
        self.args = args
        with open(args.initial, "rb") as f:
            self.initial = f.read()
        self.size = len(self.initial)
        self.nblocks = self.size // B
        self.W = args.writers
        self.logs = [[] for _ in range(self.W)]      # (seq, b0, n, ti, ta)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.snaps = {}          # name -> dict
        self.alive = []          # names, oldest first
        self.reads = 0
        self.read_errors_ok = 0

    def owner(self, b):
        return (b // S) % self.W

    def connect(self, export):
        h = nbd.NBD()
        h.set_export_name(export)
        h.connect_unix(self.args.sock)
        return h

    def decode(self, data, first_block, what):
        """Per-block values: INITIAL or the request number that wrote it."""
        out = []
        for i in range(len(data) // B):
            b = first_block + i
            d = data[i * B:(i + 1) * B]
            if d == self.initial[b * B:(b + 1) * B]:
                out.append(INITIAL)
                continue
            magic, w, bb, s, ns = struct.unpack_from("<8sIIQQ", d)
            if magic != MAGIC or w != self.owner(b) or bb != b or \
               d != block_data(w, b, s):
                failure("%s: block %d (offset %d) holds neither its initial "
                        "data nor a complete block written by its writer "
                        "(header %s)" % (what, b, b * B, d[:32].hex()))
                out.append(None)
                continue
            out.append(s)
        return out

    # ---- writers ---------------------------------------------------------

    def writer(self, w):
        try:
            h = self.connect("" if w % 2 == 0 else "live")
            rng = random.Random(self.args.seed * 1000 + w)
            nstripes = (self.nblocks + S - 1) // S
            mine = [st for st in range(nstripes) if st % self.W == w]
            log = self.logs[w]
            seq = 0
            while not self.stop.is_set():
                seq += 1
                st = rng.choice(mine)
                end = min(st * S + S, self.nblocks)
                b0 = rng.randrange(st * S, end)
                n = rng.randint(1, end - b0)
                data = b"".join(block_data(w, b, seq) for b in range(b0, b0 + n))
                flags = nbd.CMD_FLAG_FUA if rng.random() < 0.1 else 0
                ti = time.monotonic()
                h.pwrite(data, b0 * B, flags)
                ta = time.monotonic()
                log.append((seq, b0, n, ti, ta))
                if rng.random() < 0.01:
                    h.flush()
            h.shutdown()
        except nbd.Error as e:
            failure("writer %d: live write failed: %s" % (w, e))
            self.stop.set()

    # ---- readers ---------------------------------------------------------

    def reader(self, r):
        rng = random.Random(self.args.seed * 1000 + 100 + r)
        handles = {}
        while not self.stop.is_set():
            with self.lock:
                cands = [n for n in self.alive
                         if self.snaps[n]["first"] is not None]
            if not cands:
                time.sleep(0.01)
                continue
            name = rng.choice(cands)
            snap = self.snaps[name]
            nb = rng.randint(1, 256)
            b0 = rng.randrange(0, self.nblocks - nb + 1)
            try:
                if name not in handles:
                    handles[name] = self.connect(name)
                data = handles[name].pread(nb * B, b0 * B)
            except nbd.Error as e:
                handles.pop(name, None)
                if snap["deleting"]:
                    self.read_errors_ok += 1
                    continue
                failure("reader %d: reading snapshot %s at %d failed: %s"
                        % (r, name, b0 * B, e))
                continue
            got = self.decode(data, b0, "snapshot %s (re-read)" % name)
            if got != snap["first"][b0:b0 + nb]:
                i = next(i for i in range(nb) if got[i] != snap["first"][b0 + i])
                failure("snapshot %s changed while the live disk was written: "
                        "block %d read first as %s, later as %s"
                        % (name, b0 + i, snap["first"][b0 + i], got[i]))
            self.reads += 1
        for h in handles.values():
            try:
                h.shutdown()
            except nbd.Error:
                pass

    # ---- snapshots -------------------------------------------------------

    def cli(self, *argv):
        cmd = [self.args.cli, "-c", self.args.ctl] + list(argv)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60)

    def read_full(self, name):
        h = self.connect(name)
        if not h.is_read_only():
            failure("snapshot %s is not read-only" % name)
        data = bytearray()
        for off in range(0, self.size, 1 << 20):
            data += h.pread(min(1 << 20, self.size - off), off)
        h.shutdown()
        return bytes(data)

    def snapshots(self):
        rng = random.Random(self.args.seed)
        deadline = time.monotonic() + self.args.seconds
        i = 0
        while time.monotonic() < deadline and not self.stop.is_set():
            time.sleep(rng.uniform(0.02, 0.3))
            i += 1
            name = "c%d" % i
            t0 = time.monotonic()
            p = self.cli("create", name)
            t1 = time.monotonic()
            if p.returncode != 0 or p.stdout.strip() != name:
                failure("create %s: exit %d, stdout %r, stderr %r"
                        % (name, p.returncode, p.stdout, p.stderr))
                break
            snap = {"t0": t0, "t1": t1, "first": None, "deleting": False}
            with self.lock:
                self.snaps[name] = snap
                self.alive.append(name)
            # Read it at once, while the writers go on.
            try:
                data = self.read_full(name)
            except nbd.Error as e:
                failure("first read of snapshot %s failed: %s" % (name, e))
                break
            snap["first"] = self.decode(data, 0, "snapshot %s" % name)
            snap["sha"] = hashlib.sha256(data).hexdigest()
            if len(self.alive) > 5:
                with self.lock:
                    victim = self.alive.pop(0)
                    self.snaps[victim]["deleting"] = True
                p = self.cli("delete", victim)
                if p.returncode != 0:
                    failure("delete %s while it may be read: exit %d: %s"
                            % (victim, p.returncode, p.stderr.strip()))
        print("concurrency.py: created %d snapshots in %.1f s"
              % (i, self.args.seconds), flush=True)

    # ---- checking --------------------------------------------------------

    def check_point_in_time(self, name, snap):
        vals = snap["first"]
        for w in range(self.W):
            log = self.logs[w]
            lo = 0
            hi = 0
            for (s, b0, n, ti, ta) in log:
                if ta < snap["t0"]:
                    lo = s
                if ti < snap["t1"]:
                    hi = s
            blocks = [b for b in range(self.nblocks) if self.owner(b) == w]
            state = {}
            for (s, b0, n, ti, ta) in log[:lo]:
                for b in range(b0, b0 + n):
                    state[b] = s
            at_lo = dict(state)
            bad = set()
            for b in blocks:
                v = vals[b]
                if v is None:
                    return          # already reported by decode
                if v != INITIAL:
                    if v > len(log):
                        failure("snapshot %s: block %d holds writer %d request "
                                "%d, which was never issued" % (name, b, w, v))
                        return
                    s, b0, n, ti, ta = log[v - 1]
                    if not (b0 <= b < b0 + n):
                        failure("snapshot %s: block %d holds request %d of "
                                "writer %d, which did not write it"
                                % (name, b, v, w))
                        return
                if v != state.get(b, INITIAL):
                    bad.add(b)
            k = lo
            while bad and k < hi:
                k += 1
                s, b0, n, ti, ta = log[k - 1]
                for b in range(b0, b0 + n):
                    state[b] = k
                    if vals[b] == k:
                        bad.discard(b)
                    else:
                        bad.add(b)
            if not bad:
                continue
            # Explain what is wrong.
            late = [b for b in blocks if vals[b] != INITIAL and vals[b] > hi]
            missing = [b for b in blocks
                       if at_lo.get(b, INITIAL) != INITIAL and
                       (vals[b] == INITIAL or vals[b] < at_lo[b])]
            if late:
                b = late[0]
                why = ("block %d holds request %d, issued after the create "
                       "returned (last request issued before: %d)"
                       % (b, vals[b], hi))
            elif missing:
                b = missing[0]
                why = ("block %d shows %s, but request %d, acknowledged before "
                       "the create started, wrote it"
                       % (b, "its initial data" if vals[b] == INITIAL
                          else "request %d" % vals[b], at_lo[b]))
            else:
                b = min(bad)
                why = ("no single point in writer %d's history matches (a "
                       "request is torn or reordered), e.g. block %d shows %s"
                       % (w, b, vals[b]))
            failure("snapshot %s is not a point-in-time image for writer %d "
                    "(requests %d..%d were candidates): %s"
                    % (name, w, lo, hi, why))
            return

    def run(self):
        threads = [threading.Thread(target=self.writer, args=(w,))
                   for w in range(self.W)]
        threads += [threading.Thread(target=self.reader, args=(r,))
                    for r in range(2)]
        for t in threads:
            t.start()
        try:
            self.snapshots()
        finally:
            self.stop.set()
            for t in threads:
                t.join()
        nwrites = [len(l) for l in self.logs]
        print("concurrency.py: writes per writer %s, %d snapshot range reads, "
              "%d reads refused after delete"
              % (nwrites, self.reads, self.read_errors_ok), flush=True)
        if failures:
            return
        if min(nwrites) < 20 or self.reads < 10 or len(self.snaps) < 5:
            failure("too little happened to test anything (writes %s, reads %d,"
                    " snapshots %d)" % (nwrites, self.reads, len(self.snaps)))
        # Each snapshot, as first read, is a point in time.
        for name, snap in self.snaps.items():
            if snap["first"] is not None:
                self.check_point_in_time(name, snap)
        # The snapshots still alive read the same as when they were new.
        out = {}
        for name in self.alive:
            data = self.read_full(name)
            got = self.decode(data, 0, "snapshot %s (final read)" % name)
            if got != self.snaps[name]["first"]:
                i = next(i for i in range(self.nblocks)
                         if got[i] != self.snaps[name]["first"][i])
                failure("snapshot %s changed between its first and its final "
                        "read: block %d was %s, is %s"
                        % (name, i, self.snaps[name]["first"][i], got[i]))
            out[name] = hashlib.sha256(data).hexdigest()
        # The live disk holds the last write to every block.
        want = [INITIAL] * self.nblocks
        for log in self.logs:
            for (s, b0, n, ti, ta) in log:
                for b in range(b0, b0 + n):
                    want[b] = s
        h = self.connect("live")
        data = bytearray()
        for off in range(0, self.size, 1 << 20):
            data += h.pread(min(1 << 20, self.size - off), off)
        got = self.decode(bytes(data), 0, "live")
        if got != want:
            i = next(i for i in range(self.nblocks) if got[i] != want[i])
            failure("live block %d is %s, the last write to it was %s"
                    % (i, got[i], want[i]))
        out["live"] = hashlib.sha256(data).hexdigest()
        # All snapshots are listed, valid, deleted ones are gone.
        p = self.cli("list", "--json")
        listing = json.loads(p.stdout)
        names = [s["name"] for s in listing]
        if names != self.alive:
            failure("list shows %s, expected %s" % (names, self.alive))
        for s in listing:
            if s["state"] != "valid":
                failure("snapshot %s is %s: %s" % (s["name"], s["state"],
                                                    s.get("reason")))
        self.check_delete_while_open(out)
        if self.args.out:
            with open(self.args.out, "w") as f:
                json.dump(out, f)

    def check_delete_while_open(self, out):
        """A client still connected to a snapshot that gets deleted must
        get errors or the right data, never data of the slots it freed
        once they are reused."""
        if len(self.alive) < 2:
            return
        name = self.alive[0]
        first = self.snaps[name]["first"]
        h = self.connect(name)
        h.pread(B, 0)
        p = self.cli("delete", name)
        if p.returncode != 0:
            failure("delete %s while a client is connected to it: exit %d: %s"
                    % (name, p.returncode, p.stderr.strip()))
            return
        self.alive.remove(name)
        out.pop(name, None)
        # Write everywhere, so that freed diff-area slots get reused.
        w = self.connect("live")
        rng = random.Random(self.args.seed + 7)
        sha = hashlib.sha256()
        for off in range(0, self.size, 1 << 20):
            data = rng.randbytes(min(1 << 20, self.size - off))
            w.pwrite(data, off)
            sha.update(data)
        w.flush()
        out["live"] = sha.hexdigest()
        w.shutdown()
        errors = 0
        for off in range(0, self.size, 1 << 20):
            try:
                data = h.pread(1 << 20, off)
            except nbd.Error:
                errors += 1
                continue
            got = self.decode(data, off // B, "deleted snapshot %s via an open "
                              "connection" % name)
            if got != first[off // B:off // B + len(got)]:
                failure("deleted snapshot %s, read on a connection opened "
                        "before the delete, returned wrong data at %d"
                        % (name, off))
                break
        try:
            h.shutdown()
        except nbd.Error:
            pass
        print("concurrency.py: deleted snapshot %s on an open connection: %d of "
              "%d reads refused, the others right"
              % (name, errors, (self.size + (1 << 20) - 1) >> 20), flush=True)
        try:
            self.connect(name)
        except nbd.Error:
            return
        failure("deleted snapshot %s can still be opened" % name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sock", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--initial", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--out")
    args = ap.parse_args()
    Test(args).run()
    if failures:
        print("concurrency.py: %d failure(s), seed %d" % (len(failures), args.seed),
              file=sys.stderr)
        sys.exit(1)
    print("concurrency.py: all snapshots consistent")


if __name__ == "__main__":
    main()
