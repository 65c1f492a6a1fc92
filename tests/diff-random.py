# Randomized test of changed-block tracking against the data: a real nbdkit
# with the plugin takes random writes, zeroes and trims, snapshots,
# checkpoints, deletes (some keeping a checkpoint), clean restarts and
# kill -9 restarts (some with a write in flight), and every DIFF it answers
# is checked against the expected images and the exports as read (driven
# by test-diff-random.sh).
"""
Usage: diff-random.py --plugin SO --cli SHADOWCOPY --dir DIR --seed N
                      [--size BYTES] [--chunk BYTES] [--steps N]
                      [--strict-restart]

The driver starts nbdkit itself (so it can SIGTERM and SIGKILL it) on an
origin of --size random bytes with chunk-size=--chunk and
discard-snapshots=on, and speaks the control protocol directly on the
control socket.  It keeps the expected content of the live disk and of
every snapshot and checkpoint (for a checkpoint: the live disk at the
moment it was made; after DELETE keep-checkpoint=1 a snapshot's image
stays as the checkpoint's; the chunks a snapshot's reader discarded read
as zeros), and the log of which chunks every write, zero or trim touched.

Every few steps, and after each restart, for pairs FROM -> TO (FROM a
snapshot or checkpoint, TO a later one or the live volume) it pages
through DIFF (with small and large max=) and checks:

  - each page: the header names FROM and TO as created (ids, UUIDs,
    types, epochs, chunk size, volume size), next= progresses, the
    extents are sorted, disjoint and not touching, within [start, next)
    in chunks, chunk-aligned (the last may end at the volume size);
  - (a) every byte range not reported is identical in the two expected
    images, and, where a side is a snapshot or the live volume, in the
    exports as read (and every export read equals its expected image);
  - (b) every byte where the two expected images differ is inside a
    reported extent;
  - the reported chunks are all chunks that some write, zero or trim
    touched after FROM (and before TO), or that either side's reader
    discarded, so the total does not exceed those chunks' bytes.

After each restart it also checks LIST against the model (names, ids,
UUIDs, types, all valid), that checkpoints are not exports, and that the
live disk holds every acknowledged write.  A kill -9 with writes in
flight (a thread writing on its own connection, up to four requests at
once) leaves those not acknowledged in doubt: each of their bytes may
hold the old or the new data; the live disk as read then becomes the
expectation, and their chunks count as touched.

A restart right after a kill -9 could be refused because the killed
server's lock on the diff area outlived it for a moment (its io_uring
torn down after it was reaped); the server now asks for its locks again
for up to 2 s.  With --strict-restart (make check) such a refusal is a
failure; without it, it is retried and counted (see Server.start).

Now and then: DIFF errors (unknown name, FROM newer than TO), a name
reused after its delete (the UUID must be new), and the CLI's
`diff --json` compared with the paged answer.

The seed fixes every choice; only the moment of an in-flight kill
varies.  On a failure the steps so far are in DIR/steps.log.
Exit status 0: pass; 1: failure (the first one is printed).
"""

import argparse
import bisect
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import nbd

SECTOR = 512


class Failure(Exception):
    pass


class CtlError(Exception):
    def __init__(self, errname, message):
        super().__init__("%s %s" % (errname, message))
        self.errname = errname


# ---- the server ----------------------------------------------------------

class Server:
    def __init__(self, args, disk, diff, log, pidlog):
        self.args = args
        self.disk, self.diff = disk, diff
        self.sock = diff + ".nbd"
        self.ctlpath = diff + ".sock"
        self.log = log
        self.pidlog = pidlog
        self.proc = None
        self.ctl = None
        self.killed = False
        self.refused_after_kill = 0

    def start(self):
        """Start nbdkit and connect to its control socket.  Right after a
        kill -9 the killed server's lock on the diff area can outlive it
        briefly (seen with io_uring; the new server then refuses to start:
        "in use by another process"): unless --strict-restart, that start
        is retried every 0.1 s for up to 3 s and counted in
        self.refused_after_kill."""
        for attempt in range(31):
            out = self.start_once()
            if out is None:
                break
            in_use = "in use by another" in out
            if not (self.killed and in_use) or self.args.strict_restart or \
               attempt == 30:
                raise Failure("nbdkit exited with status %d while starting%s;"
                              " its log from this start:\n    %s"
                              % (self.proc.returncode,
                                 " right after a kill -9 of the previous one"
                                 if self.killed else "",
                                 "\n    ".join(out.splitlines()[-6:])))
            if attempt == 0:
                self.refused_after_kill += 1
            time.sleep(0.1)
        self.killed = False
        self.ctl = socket.socket(socket.AF_UNIX)
        self.ctl.connect(self.ctlpath)
        self.ctlf = self.ctl.makefile("rw")

    def start_once(self):
        """None once nbdkit listens; the log it wrote if it exited."""
        pidfile = self.diff + ".pid"
        for p in (self.sock, self.ctlpath, pidfile):
            if os.path.exists(p):
                os.unlink(p)
        with open(self.log, "ab") as logf:
            logf.write(b"==== start\n")
            logf.flush()
            mark = logf.tell()
            self.proc = subprocess.Popen(
                ["nbdkit", "-f", "-U", self.sock, "--pidfile", pidfile,
                 self.args.plugin,
                 "disk=" + self.disk, "diff=" + self.diff,
                 "chunk-size=%d" % self.args.chunk, "discard-snapshots=on"],
                stdout=logf, stderr=logf, stdin=subprocess.DEVNULL)
        with open(self.pidlog, "a") as f:
            f.write("%d\n" % self.proc.pid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with open(self.log, "rb") as f:
                    f.seek(mark)
                    return f.read().decode(errors="replace")
            # The pidfile is written once nbdkit listens.
            if os.path.exists(pidfile) and os.path.getsize(pidfile) > 0 and \
               os.path.exists(self.sock) and os.path.exists(self.ctlpath):
                return None
            time.sleep(0.01)
        raise Failure("nbdkit not ready within 20 s")

        self.ctl = socket.socket(socket.AF_UNIX)
        self.ctl.connect(self.ctlpath)
        self.ctlf = self.ctl.makefile("rw")

    def close_ctl(self):
        if self.ctl:
            self.ctlf.close()
            self.ctl.close()
            self.ctl = None

    def stop(self):
        """SIGTERM; must exit 0."""
        self.close_ctl()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure("nbdkit did not exit within 20 s of SIGTERM")
        if rc != 0:
            raise Failure("nbdkit exited with status %d after SIGTERM" % rc)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.reap_killed()

    def reap_killed(self):
        rc = self.proc.wait()
        if rc != -signal.SIGKILL:
            raise Failure("nbdkit ended with status %d, not by the SIGKILL"
                          % rc)
        self.killed = True
        self.close_ctl()

    def request(self, line):
        """(data lines as (kind, {key: value}), in order); CtlError on ERR."""
        self.ctlf.write(line + "\n")
        self.ctlf.flush()
        data = []
        while True:
            l = self.ctlf.readline()
            if not l:
                raise Failure("control connection closed during %r" % line)
            l = l.rstrip("\n")
            if l == "OK":
                return data
            if l.startswith("ERR "):
                parts = l.split(" ", 2)
                raise CtlError(parts[1], parts[2] if len(parts) > 2 else "")
            if not l.startswith("* "):
                raise Failure("bad control line for %r: %r" % (line, l))
            fields = l[2:].split("\t")
            kv = {}
            for f in fields[1:]:
                k, _, v = f.partition("=")
                kv[k] = v
            data.append((fields[0], kv))

    def connect(self, export):
        h = nbd.NBD()
        h.set_export_name(export)
        h.connect_unix(self.sock)
        return h


# ---- the model -------------------------------------------------------------

class Point:
    """A snapshot or checkpoint and what it must see."""

    def __init__(self, name, kind, image, seq, info):
        self.name = name
        self.kind = kind                # "snapshot" | "checkpoint"
        self.image = image              # bytes
        self.seq = seq                  # event sequence at creation
        self.id = int(info["id"])
        self.uuid = info["uuid"]
        self.epoch = int(info["epoch"])
        self.disc = set()               # chunks its reader discarded

    def __repr__(self):
        return "%s %s (id %d)" % (self.kind, self.name, self.id)


class Run:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.cs = args.chunk
        self.size = args.size
        self.nchunks = (self.size + self.cs - 1) // self.cs
        os.makedirs(args.dir, exist_ok=True)
        self.disk = os.path.join(args.dir, "disk")
        self.steplog = open(os.path.join(args.dir, "steps.log"), "w")
        self.history = []
        self.step = 0
        self.seq = 0
        self.events = []                # (seq, first chunk, last chunk)
        self.points = []                # alive, in creation order
        self.uuids = set()
        self.names_used = set()
        self.stats = {k: 0 for k in (
            "writes", "zeroes", "trims", "snapshots", "checkpoints",
            "deletes", "keep-checkpoint", "clean-restarts", "kill9",
            "kill9-in-flight", "in-doubt-writes", "in-doubt-landed",
            "diffs", "pages", "pairs", "export-reads", "cli-diffs",
            "error-checks", "names-reused", "discards")}
        self.reported = 0
        self.touched_total = 0

    def note(self, msg):
        line = "step %d: %s" % (self.step, msg)
        self.history.append(line)
        self.steplog.write(line + "\n")
        self.steplog.flush()

    def fail(self, msg):
        raise Failure("seed %d, step %d: %s" % (self.args.seed, self.step, msg))

    # ---- set-up ------------------------------------------------------------

    def setup(self):
        rng = random.Random(self.args.seed ^ 0x5eed)
        data = bytearray(rng.randbytes(self.size))
        # Some zero runs in the origin, so that zeroes may change nothing.
        for _ in range(8):
            o = rng.randrange(0, self.size - 65536)
            n = rng.randrange(512, 65536)
            data[o:o + n] = bytes(n)
        with open(self.disk, "wb") as f:
            f.write(data)
        self.live = data
        self.server = Server(self.args, self.disk,
                             os.path.join(self.args.dir, "diff"),
                             os.path.join(self.args.dir, "server.log"),
                             os.path.join(self.args.dir, "nbdkit.pids"))
        self.server.start()
        self.h = self.server.connect("live")
        if self.h.get_size() != self.size:
            self.fail("live export has size %d, expected %d"
                      % (self.h.get_size(), self.size))

    # ---- helpers ------------------------------------------------------------

    def read_all(self, h):
        out = bytearray()
        off = 0
        while off < self.size:
            n = min(4 << 20, self.size - off)
            out += h.pread(n, off)
            off += n
        return bytes(out)

    def touch(self, off, n):
        self.seq += 1
        self.events.append((self.seq, off // self.cs, (off + n - 1) // self.cs))

    def touched(self, f, t):
        """Chunks some write touched after point f and before point t (or
        now, for t None)."""
        hi = t.seq if t else self.seq + 1
        s = set()
        for (seq, a, b) in self.events:
            if f.seq < seq < hi:
                s.update(range(a, b + 1))
        return s

    def rand_range(self, maxlen, rng=None):
        rng = rng or self.rng
        r = rng.random()
        n = rng.randint(SECTOR, maxlen)
        if r < 0.3:
            n = max(SECTOR, n // SECTOR * SECTOR)
        n = min(n, self.size)
        if r < 0.15:
            off = rng.randrange(0, self.size - n + 1, SECTOR) \
                if (self.size - n) >= SECTOR else 0
        else:
            off = rng.randrange(0, self.size - n + 1)
        return off, n

    def first_diff(self, a, b):
        step = 1 << 16
        for o in range(0, len(a), step):
            if a[o:o + step] != b[o:o + step]:
                for i in range(o, min(o + step, len(a))):
                    if a[i] != b[i]:
                        return i
        return None

    def by_name(self, name):
        for p in self.points:
            if p.name == name:
                return p
        return None

    def fresh_name(self):
        free = ["p%d" % i for i in range(16)
                if self.by_name("p%d" % i) is None]
        name = self.rng.choice(free)
        if name in self.names_used:
            self.stats["names-reused"] += 1
        self.names_used.add(name)
        return name

    # ---- steps ---------------------------------------------------------------

    def do_write(self):
        off, n = self.rand_range(300 * 1024)
        data = self.rng.randbytes(n)
        flags = nbd.CMD_FLAG_FUA if self.rng.random() < 0.1 else 0
        self.h.pwrite(data, off, flags)
        self.live[off:off + n] = data
        self.touch(off, n)
        self.stats["writes"] += 1
        self.note("write [%d, +%d)" % (off, n))

    def do_zero(self):
        off, n = self.rand_range(self.rng.choice([64 * 1024, 1024 * 1024]))
        flags = 0
        if self.rng.random() < 0.4:
            flags |= nbd.CMD_FLAG_NO_HOLE
        self.h.zero(n, off, flags)
        self.live[off:off + n] = bytes(n)
        self.touch(off, n)
        self.stats["zeroes"] += 1
        self.note("zero [%d, +%d) flags %d" % (off, n, flags))

    def do_trim(self):
        off, n = self.rand_range(512 * 1024)
        self.h.trim(n, off)
        # Trimmed bytes read back as before or as zeros: adopt what is read.
        got = self.h.pread(n, off)
        old = bytes(self.live[off:off + n])
        if got != old:
            for i in range(n):
                if got[i] != old[i] and got[i] != 0:
                    self.fail("live byte %d after trim of [%d, +%d) is 0x%02x:"
                              " neither the old 0x%02x nor zero"
                              % (off + i, off, n, got[i], old[i]))
        self.live[off:off + n] = got
        self.touch(off, n)
        self.stats["trims"] += 1
        self.note("trim [%d, +%d)" % (off, n))

    def new_point(self, kind):
        name = self.fresh_name()
        verb = "CREATE" if kind == "snapshot" else "CHECKPOINT"
        data = self.server.request("%s %s" % (verb, name))
        if len(data) != 1 or data[0][0] != "snapshot":
            self.fail("%s %s answered %r" % (verb, name, data))
        info = data[0][1]
        if info.get("name") != name or info.get("type") != kind or \
           info.get("state") != "valid":
            self.fail("%s %s answered %r" % (verb, name, info))
        if info.get("uuid") in self.uuids or not info.get("uuid"):
            self.fail("%s %s: UUID %r is not new" % (verb, name,
                                                     info.get("uuid")))
        self.uuids.add(info["uuid"])
        self.seq += 1
        p = Point(name, kind, bytes(self.live), self.seq, info)
        self.points.append(p)
        self.stats[kind + "s"] += 1
        self.note("%s %s -> id %d uuid %s" % (verb, name, p.id, p.uuid))

    def do_discard(self):
        """A trim on a snapshot export (discard-snapshots=on): the whole
        chunks inside the range read as zeros from now on, and count as
        changed in every DIFF from or to that snapshot."""
        snaps = [p for p in self.points if p.kind == "snapshot"]
        if not snaps:
            return
        p = self.rng.choice(snaps)
        off, n = self.rand_range(512 * 1024)
        if self.rng.random() < 0.3:
            off -= off % self.cs
            n = min(self.size - off, max(self.cs, n - n % self.cs))
        h = self.server.connect(p.name)
        h.trim(n, off)
        h.shutdown()
        first = (off + self.cs - 1) // self.cs
        end = off + n
        last_end = (end + self.cs - 1) // self.cs if end == self.size \
            else end // self.cs
        if last_end > first:
            image = bytearray(p.image)
            a, b = first * self.cs, min(last_end * self.cs, self.size)
            image[a:b] = bytes(b - a)
            p.image = bytes(image)
            p.disc.update(range(first, last_end))
        self.stats["discards"] += 1
        self.note("trim [%d, +%d) on snapshot %s: chunks [%d, %d) discarded"
                  % (off, n, p.name, first, max(first, last_end)))

    def do_delete(self, keep):
        if keep:
            cands = [p for p in self.points if p.kind == "snapshot"]
        else:
            cands = self.points
        if not cands:
            return
        p = cands[0] if self.rng.random() < 0.4 else self.rng.choice(cands)
        line = "DELETE %s%s" % (p.name, " keep-checkpoint=1" if keep else "")
        data = self.server.request(line)
        want = {"name": p.name}
        if keep:
            want["checkpoint"] = "1"
        if data != [("deleted", want)]:
            self.fail("%s answered %r" % (line, data))
        if keep:
            p.kind = "checkpoint"
            self.stats["keep-checkpoint"] += 1
        else:
            self.points.remove(p)
            self.stats["deletes"] += 1
        self.note(line)

    def restart(self, how):
        """how: clean | kill | kill-in-flight."""
        self.h.shutdown()
        self.h = None
        in_doubt = None
        if how == "clean":
            self.server.stop()
            self.stats["clean-restarts"] += 1
        elif how == "kill":
            self.server.kill9()
            self.stats["kill9"] += 1
        else:
            in_doubt = self.kill_in_flight()
            self.stats["kill9-in-flight"] += 1
        self.note("%s restart%s" % (how, "" if not in_doubt else
                                    ", writes %s in doubt" % ", ".join(
                                        "[%d, +%d)" % (o, len(d))
                                        for (o, d) in in_doubt)))
        refused = self.server.refused_after_kill
        self.server.start()
        if self.server.refused_after_kill > refused:
            self.note("the restart was refused (diff area still locked by "
                      "the killed server) and retried")
        self.h = self.server.connect("live")
        live = self.read_all(self.h)
        for (off, data) in in_doubt or []:
            n = len(data)
            got = live[off:off + n]
            old = bytes(self.live[off:off + n])
            if got != old:
                for i in range(n):
                    if got[i] != old[i] and got[i] != data[i]:
                        self.fail("after a kill -9 with write [%d, +%d) in "
                                  "flight, live byte %d is 0x%02x: neither "
                                  "the old 0x%02x nor the new 0x%02x"
                                  % (off, n, off + i, got[i], old[i], data[i]))
                self.stats["in-doubt-landed"] += 1
            self.live[off:off + n] = got
            self.touch(off, n)
            self.stats["in-doubt-writes"] += 1
        if live != bytes(self.live):
            i = self.first_diff(live, self.live)
            self.fail("after the %s restart the live disk differs from the "
                      "acknowledged writes at byte %d (expected %s, read %s)"
                      % (how, i, self.live[i:i + 8].hex(),
                         live[i:i + 8].hex()))
        self.check_list()
        self.verify(full=True, live=live)

    def kill_in_flight(self):
        """A thread writes on its own connection, up to 4 requests in
        flight at once (to ranges that do not overlap while in flight,
        but may share chunks); SIGKILL at a random moment.  The
        acknowledged writes count; those not acknowledged are returned as
        [(offset, data)]."""
        rng = random.Random(self.rng.random())
        h = self.server.connect("live")
        state = {"acked": 0, "inflight": {}}

        def overlaps(off, n):
            return any(o < off + n and off < o + len(d)
                       for (o, d) in state["inflight"].values())

        def writer():
            inflight = state["inflight"]
            try:
                while True:
                    while len(inflight) < 4:
                        off, n = self.rand_range(300 * 1024, rng)
                        if overlaps(off, n):
                            continue
                        data = rng.randbytes(n)
                        c = h.aio_pwrite(nbd.Buffer.from_bytearray(data), off)
                        inflight[c] = (off, data)
                    h.poll(5000)
                    for c in list(inflight):
                        if h.aio_command_completed(c):
                            off, data = inflight.pop(c)
                            self.live[off:off + len(data)] = data
                            self.touch(off, len(data))
                            state["acked"] += 1
            except nbd.Error:
                return      # the kill: what is in flight is in doubt

        t = threading.Thread(target=writer)
        t.start()
        time.sleep(rng.uniform(0.01, 0.15))
        self.server.proc.send_signal(signal.SIGKILL)
        t.join(30)
        if t.is_alive():
            self.fail("the writer thread did not notice the kill -9")
        self.server.reap_killed()
        self.note("kill -9 after %d acknowledged writes of a thread"
                  % state["acked"])
        return sorted(state["inflight"].values())

    # ---- checks ----------------------------------------------------------

    def check_list(self):
        data = self.server.request("LIST")
        listed = [kv for (kind, kv) in data if kind == "snapshot"]
        got = [(s["name"], int(s["id"]), s["uuid"], s["type"], s["state"])
               for s in listed]
        want = [(p.name, p.id, p.uuid, p.kind, "valid") for p in self.points]
        if got != want:
            self.fail("LIST after the restart:\n  got  %s\n  want %s"
                      % (got, want))

    def fetch_diff(self, f, t, maxn):
        """The extents of DIFF f t, paged by maxn, merged: [(a, b)]."""
        tname = t.name if t else "live"
        start = 0
        runs = []
        pages = 0
        while True:
            pages += 1
            if pages > self.nchunks + 2:
                self.fail("DIFF %s %s: more pages than chunks" % (f.name, tname))
            line = "DIFF %s %s start=%d max=%d" % (f.name, tname, start, maxn)
            data = self.server.request(line)
            if not data or data[0][0] != "diff":
                self.fail("%s: no diff header: %r" % (line, data[:2]))
            hd = data[0][1]
            want = {"chunk-size": str(self.cs), "volume-size": str(self.size),
                    "from": f.name, "from-id": str(f.id),
                    "from-uuid": f.uuid, "from-type": f.kind,
                    "to": tname,
                    "to-type": t.kind if t else "live"}
            if t:
                want["to-id"] = str(t.id)
                want["to-uuid"] = t.uuid
            for k, v in want.items():
                if hd.get(k) != v:
                    self.fail("%s: header %s=%r, expected %r (header %r)"
                              % (line, k, hd.get(k), v, hd))
            if t is None and ("to-id" in hd or "to-uuid" in hd):
                self.fail("%s: live TO with to-id/to-uuid: %r" % (line, hd))
            if int(hd["from-epoch"]) != f.epoch or \
               (t and int(hd["to-epoch"]) != t.epoch):
                self.fail("%s: epochs %r, expected from %d to %s"
                          % (line, hd, f.epoch, t and t.epoch))
            ext = data[1:]
            if len(ext) > maxn:
                self.fail("%s: %d extents in a page" % (line, len(ext)))
            nxt = hd["next"]
            end = self.size if nxt == "end" else int(nxt) * self.cs
            if nxt != "end" and int(nxt) <= start:
                self.fail("%s: next=%s does not progress" % (line, nxt))
            prev = None
            for (kind, kv) in ext:
                if kind != "extent":
                    self.fail("%s: unexpected line %s %r" % (line, kind, kv))
                a = int(kv["offset"])
                b = a + int(kv["length"])
                if not (start * self.cs <= a < b <= min(end, self.size)):
                    self.fail("%s: extent [%d, %d) outside the page [%d, %d)"
                              % (line, a, b, start * self.cs, end))
                if a % self.cs or (b % self.cs and b != self.size):
                    self.fail("%s: extent [%d, %d) not chunk-aligned"
                              % (line, a, b))
                if prev is not None and a <= prev:
                    self.fail("%s: extents not sorted and apart: [.., %d) "
                              "then [%d, ..)" % (line, prev, a))
                prev = b
                if runs and runs[-1][1] == a:
                    runs[-1] = (runs[-1][0], b)     # touches across pages
                elif runs and runs[-1][1] > a:
                    self.fail("%s: extent [%d, %d) overlaps the previous "
                              "page's" % (line, a, b))
                else:
                    runs.append((a, b))
            self.stats["pages"] += 1
            if nxt == "end":
                break
            start = int(nxt)
        self.stats["diffs"] += 1
        return runs

    def check_pair(self, f, t, reads):
        """reads: name (or "live") -> bytes read from the export."""
        tname = t.name if t else "live"
        # Mostly whole answers; small pages now and then (merged here).
        maxn = self.rng.choice([1, 2, 5, 17]) if self.rng.random() < 0.2 \
            else 65536
        runs = self.fetch_diff(f, t, maxn)
        what = "DIFF %s %s (%r -> %s)" % (f.name, tname, f, t or "live")
        ef = f.image
        et = t.image if t else bytes(self.live)
        af = reads.get(f.name) if f.kind == "snapshot" else None
        at = reads.get(t.name) if t and t.kind == "snapshot" else \
            (reads.get("live") if t is None else None)
        # (a) the gaps are identical.
        pos = 0
        for (a, b) in runs + [(self.size, self.size)]:
            if pos < a:
                if ef[pos:a] != et[pos:a]:
                    i = pos + self.first_diff(ef[pos:a], et[pos:a])
                    self.fail("%s: byte %d is reported unchanged but the "
                              "expected images differ there (0x%02x -> "
                              "0x%02x); extents %s"
                              % (what, i, ef[i], et[i], runs[:20]))
                if af is not None and at is not None and af[pos:a] != at[pos:a]:
                    i = pos + self.first_diff(af[pos:a], at[pos:a])
                    self.fail("%s: byte %d is reported unchanged but the "
                              "exports differ there as read" % (what, i))
            pos = b
        # (b) every differing sector of the expected images is reported.
        starts = [a for (a, b) in runs]
        blk = 1 << 16
        for o in range(0, self.size, blk):
            if ef[o:o + blk] == et[o:o + blk]:
                continue
            for s in range(o, min(o + blk, self.size), SECTOR):
                if ef[s:s + SECTOR] == et[s:s + SECTOR]:
                    continue
                k = bisect.bisect_right(starts, s) - 1
                if k < 0 or runs[k][1] < s + SECTOR:
                    self.fail("%s: sector at %d differs between the images "
                              "but is not in a reported extent; extents %s"
                              % (what, s, runs[:20]))
        # Only chunks written after FROM (and before TO) are reported.
        # ... or that either side's reader discarded.
        touched = self.touched(f, t) | f.disc | (t.disc if t else set())
        total = 0
        for (a, b) in runs:
            total += b - a
            for c in range(a // self.cs, (b - 1) // self.cs + 1):
                if c not in touched:
                    self.fail("%s: chunk %d is reported changed but no write "
                              "touched it in between and neither side "
                              "discarded it" % (what, c))
        bound = sum(min(self.cs, self.size - c * self.cs) for c in touched)
        if total > bound:
            self.fail("%s: %d bytes reported, more than the %d bytes of the "
                      "chunks written" % (what, total, bound))
        self.reported += total
        self.touched_total += bound
        self.stats["pairs"] += 1
        return runs

    def check_cli(self, f, t, runs):
        tname = t.name if t else "live"
        p = subprocess.run([self.args.cli, "-c", self.server.ctlpath, "diff",
                            f.name, tname, "--json"], capture_output=True,
                           text=True, timeout=60)
        if p.returncode != 0:
            self.fail("shadowcopy diff %s %s --json: exit %d: %s"
                      % (f.name, tname, p.returncode, p.stderr.strip()))
        d = json.loads(p.stdout)
        got = [(e["offset"], e["offset"] + e["length"]) for e in d["extents"]]
        if got != runs or d["total-bytes"] != sum(b - a for a, b in runs) \
           or d["extent-count"] != len(runs) or \
           d["from"]["uuid"] != f.uuid or d["chunk-size"] != self.cs or \
           d["volume-size"] != self.size:
            self.fail("shadowcopy diff %s %s --json disagrees with the "
                      "paged DIFF: %s vs %s" % (f.name, tname, p.stdout[:400],
                                                runs[:20]))
        self.stats["cli-diffs"] += 1

    def check_errors(self):
        """Unknown names and FROM newer than TO are refused."""
        gone = sorted(n for n in self.names_used if self.by_name(n) is None)
        for name in ["nosuch"] + gone[:1]:
            try:
                self.server.request("DIFF %s live" % name)
                self.fail("DIFF of %s (unknown or deleted) succeeded" % name)
            except CtlError as e:
                if e.errname != "ENOENT":
                    self.fail("DIFF of %s (unknown or deleted): %s"
                              % (name, e))
        if len(self.points) >= 2:
            a, b = self.points[0], self.points[-1]
            try:
                self.server.request("DIFF %s %s" % (b.name, a.name))
                self.fail("DIFF %s %s (FROM newer) succeeded" % (b.name, a.name))
            except CtlError as e:
                if e.errname != "EINVAL":
                    self.fail("DIFF FROM newer than TO: %s" % e)
        for p in self.points:
            if p.kind == "checkpoint":
                try:
                    h = self.server.connect(p.name)
                    h.pread(SECTOR, 0)
                    self.fail("checkpoint %s can be opened as an export"
                              % p.name)
                except nbd.Error:
                    pass
                break
        self.stats["error-checks"] += 1

    def verify(self, full, live=None):
        reads = {}
        if live is None:
            live = self.read_all(self.h)
            if live != bytes(self.live):
                i = self.first_diff(live, self.live)
                self.fail("live disk differs from the model at byte %d" % i)
        reads["live"] = live
        snaps = [p for p in self.points if p.kind == "snapshot"]
        if not full:
            snaps = self.rng.sample(snaps, min(2, len(snaps)))
        for p in snaps:
            h = self.server.connect(p.name)
            if h.get_size() != self.size:
                self.fail("snapshot %s has size %d" % (p.name, h.get_size()))
            got = self.read_all(h)
            h.shutdown()
            if got != p.image:
                i = self.first_diff(got, p.image)
                self.fail("snapshot %s differs from its expected image at "
                          "byte %d (expected %s, read %s)"
                          % (p.name, i, p.image[i:i + 8].hex(),
                             got[i:i + 8].hex()))
            reads[p.name] = got
            self.stats["export-reads"] += 1
        pairs = []
        for i, f in enumerate(self.points):
            for t in self.points[i + 1:] + [None]:
                pairs.append((f, t))
        if not full and len(pairs) > 5:
            pairs = self.rng.sample(pairs, 5)
        elif len(pairs) > 24:
            pairs = self.rng.sample(pairs, 24)
        for (f, t) in pairs:
            runs = self.check_pair(f, t, reads)
            if self.rng.random() < 0.05:
                self.check_cli(f, t, runs)
        if self.rng.random() < 0.2:
            self.check_errors()

    # ---- the run -----------------------------------------------------------

    def one_step(self):
        nsnap = sum(1 for p in self.points if p.kind == "snapshot")
        nck = len(self.points) - nsnap
        r = self.rng.random()
        if r < 0.40:
            self.do_write()
        elif r < 0.48:
            self.do_zero()
        elif r < 0.52:
            if self.rng.random() < 0.6:
                self.do_trim()
            else:
                self.do_discard()
        elif r < 0.60:
            # Checkpoints kept from snapshots are not bounded by nck's
            # test below: the 16 names bound every point.
            if nsnap < 5 and len(self.points) < 16:
                self.new_point("snapshot")
            else:
                self.do_delete(keep=self.rng.random() < 0.5)
        elif r < 0.67:
            if nck < 7 and len(self.points) < 16:
                self.new_point("checkpoint")
            else:
                self.do_delete(keep=False)
        elif r < 0.74:
            self.do_delete(keep=False)
        elif r < 0.80:
            self.do_delete(keep=True)
        elif r < 0.815:
            self.restart("clean")
        elif r < 0.83:
            self.restart("kill")
        elif r < 0.845:
            self.restart("kill-in-flight")
        elif r < 0.87:
            self.do_discard()
        else:
            self.do_write()

    def run(self):
        self.setup()
        t0 = time.monotonic()
        for self.step in range(1, self.args.steps + 1):
            self.one_step()
            if self.step % 6 == 0:
                self.verify(full=False)
        # Whatever the seed chose, end with each kind of restart.
        self.step += 1
        self.restart("kill-in-flight")
        self.restart("kill")
        self.restart("clean")
        self.h.shutdown()
        self.server.stop()
        self.stats["seconds"] = round(time.monotonic() - t0, 1)
        self.stats["refused-after-kill"] = self.server.refused_after_kill


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--size", type=int, default=8 * 1024 * 1024 + 12800)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--strict-restart", action="store_true",
                    help="fail when a restart right after a kill -9 finds "
                    "the diff area still locked")
    args = ap.parse_args()
    r = Run(args)
    try:
        r.run()
    except (Failure, CtlError, nbd.Error) as e:
        print("FAIL: diff-random.py (seed %d, chunk %d, step %d): %s"
              % (args.seed, args.chunk, r.step, e), file=sys.stderr)
        print("the last steps:", file=sys.stderr)
        for line in r.history[-25:]:
            print("  " + line, file=sys.stderr)
        print("replay: SEED=%d (steps in %s)" % (args.seed, r.steplog.name),
              file=sys.stderr)
        if r.server.proc and r.server.proc.poll() is None:
            r.server.proc.kill()
            r.server.proc.wait()
        sys.exit(1)
    finally:
        s = getattr(r, "server", None)
        if s and s.proc and s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
    if r.server.refused_after_kill:
        print("diff-random.py: NOTE: %d restart(s) right after a kill -9 were "
              "refused because the diff area was still locked by the killed "
              "server, and were retried (a known issue; --strict-restart "
              "makes it a failure)" % r.server.refused_after_kill)
    print("diff-random.py: seed %d, chunk %d, %d bytes: %s; %d bytes reported "
          "changed against %d bytes of chunks written"
          % (args.seed, args.chunk, args.size, json.dumps(r.stats),
             r.reported, r.touched_total))


if __name__ == "__main__":
    main()
