# kill -9 test of shadowcopy: concurrent writers on several connections and snapshot creates/deletes by the CLI, nbdkit SIGKILLed at a random moment; after the restart every snapshot and the flushed live data are checked against a Python model (driven by test-kill9.sh).
"""
Usage: kill9.py --sock NBD_SOCK --ctl CONTROL_SOCK --cli SHADOWCOPY
                --state DIR --seed N --cycle N [--init] [--pid NBDKIT_PID]
                [--no-run] [--stats FILE] [--writers W] [--max-alive N]

One invocation is one cycle against a freshly (re)started server:

 1. Verify.  With --init, the live disk as it is becomes the model.
    Otherwise the model saved in DIR by the previous cycle is loaded and
    the server, restarted after a SIGKILL, is checked against it:
    - a snapshot whose `create` returned (and that was not deleted) is
      listed, valid, and equals the live image at its creation, byte for
      byte;
    - a snapshot whose `create` or `delete` had not returned when the
      server was killed may be there or not; if it is there and valid it
      equals its model; if it is there and invalid its export is refused;
    - a snapshot whose `delete` returned is gone; no unknown name appears;
    - the live disk holds, at every byte, the data of the last durable
      write to it (acknowledged and then covered by a completed flush, or
      acknowledged with FUA), or the data of a later write to that byte
      (acknowledged or in flight: it may or may not have reached the disk).
      Bytes no write of the cycle touched hold what they held before.
    The live disk as read becomes the base of the next cycle.

 2. Run (unless --no-run).  W writer threads, each on its own NBD
    connection, write random data (aligned and unaligned; some with FUA,
    some zeroes) to random offsets inside their own stripes of the disk
    (48 KiB stripes, interleaved, so that 64 KiB chunks are shared by two
    writers), and flush now and then.  The main thread creates snapshots
    and deletes old ones with the CLI.  A create is made exact by a
    barrier: the writers stop issuing, every request in flight is
    acknowledged, then `create` runs; the model of the snapshot is the
    live image at that moment.  After a random delay (0.2-1.5 s) nbdkit
    (--pid) gets SIGKILL; what was in flight is left in doubt, and the
    model is saved in DIR for the next cycle.

Exit status 0: pass; 1: failure (the first mismatch is printed).
"""

import argparse
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time

import nbd

BLOCK = 4096
STRIPE = 12 * BLOCK             # a writer's unit of ownership
SECTOR = 512

failures = []
flock = threading.Lock()


def failure(msg):
    with flock:
        failures.append(msg)
    print("FAIL: kill9.py: " + msg, file=sys.stderr, flush=True)


def hexs(b):
    return b.hex() if b else "(nothing)"


class Killed(Exception):
    pass


class Cycle:
    def __init__(self, args):
        self.args = args
        self.dir = args.state
        self.tag = "cycle %d (seed %d)" % (args.cycle, args.seed)
        self.rng = random.Random(args.seed)
        self.W = args.writers

    # ---- plumbing ------------------------------------------------------

    def connect(self, export):
        h = nbd.NBD()
        h.set_export_name(export)
        h.connect_unix(self.args.sock)
        return h

    def cli(self, *argv):
        cmd = [self.args.cli, "-c", self.args.ctl] + list(argv)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60)

    def read_all(self, h):
        out = bytearray()
        off = 0
        while off < self.size:
            n = min(4 << 20, self.size - off)
            out += h.pread(n, off)
            off += n
        return bytes(out)

    def model_path(self, name):
        return os.path.join(self.dir, "snap-%s.bin" % name)

    def load_model(self, name):
        with open(self.model_path(name), "rb") as f:
            return f.read()

    def drop_model(self, name):
        try:
            os.unlink(self.model_path(name))
        except FileNotFoundError:
            pass

    # ---- state ---------------------------------------------------------

    def load(self):
        with open(os.path.join(self.dir, "state.pickle"), "rb") as f:
            st = pickle.load(f)
        self.size = st["size"]
        self.D = bytearray(st["durable"])
        self.alts = st["alts"]
        self.snaps = st["snaps"]          # name -> "ok"|"creating"|"deleting"
        self.order = st["order"]          # names in creation order
        self.deleted = st["deleted"]      # names whose delete returned
        self.gone = st["gone"]            # in-doubt creates found missing
        self.stats = st["stats"]
        self.durable_blocks = st["durable_blocks"]
        self.last = st["last"]

    def save(self):
        st = {"size": self.size, "durable": bytes(self.D), "alts": self.alts,
              "snaps": self.snaps, "order": self.order,
              "deleted": self.deleted, "gone": self.gone, "stats": self.stats,
              "durable_blocks": self.durable_blocks, "last": self.last}
        tmp = os.path.join(self.dir, "state.pickle.tmp")
        with open(tmp, "wb") as f:
            pickle.dump(st, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, os.path.join(self.dir, "state.pickle"))

    def init(self):
        h = self.connect("live")
        self.size = h.get_size()
        self.D = bytearray(self.read_all(h))
        h.shutdown()
        self.alts = [[] for _ in range(self.W)]
        self.snaps = {}
        self.order = []
        self.deleted = set()
        self.gone = set()
        self.durable_blocks = 0
        self.last = "initial state"
        self.stats = {"cycles": 0, "snapshots_verified": 0,
                      "live_blocks_verified": 0, "writes": 0, "flushes": 0,
                      "fua": 0, "zeroes": 0, "creates": 0, "deletes": 0,
                      "creates_in_doubt": 0, "deletes_in_doubt": 0,
                      "in_doubt_found": 0, "in_doubt_invalid": 0}

    # ---- verification after a restart ------------------------------------

    def first_diff(self, a, b):
        """First offset where bytes a and b differ (same length)."""
        lo, hi = 0, len(a)
        step = 1 << 16
        for off in range(0, hi, step):
            if a[off:off + step] != b[off:off + step]:
                lo = off
                break
        for i in range(lo, min(lo + step, hi)):
            if a[i] != b[i]:
                return i
        return None

    def verify_snapshot(self, name, live):
        try:
            h = self.connect(name)
        except nbd.Error as e:
            failure("%s: snapshot %s is listed valid but its export cannot be "
                    "opened after the restart: %s" % (self.tag, name, e))
            return False
        if not h.is_read_only():
            failure("%s: snapshot %s is not read-only" % (self.tag, name))
        if h.get_size() != self.size:
            failure("%s: snapshot %s has size %d, expected %d"
                    % (self.tag, name, h.get_size(), self.size))
            return False
        got = self.read_all(h)
        h.shutdown()
        want = self.load_model(name)
        if got == want:
            self.stats["snapshots_verified"] += 1
            return True
        i = self.first_diff(want, got)
        nbad = sum(1 for off in range(0, self.size, BLOCK)
                   if want[off:off + BLOCK] != got[off:off + BLOCK])
        failure("%s: snapshot %s differs from its model after the SIGKILL and "
                "restart: first mismatch at offset %d (chunk-aligned block %d), "
                "expected %s, actual %s; the actual bytes %s the live disk's "
                "there; %d of %d 4 KiB blocks differ (previous cycle: %s)"
                % (self.tag, name, i, i // BLOCK, hexs(want[i:i + 16]),
                   hexs(got[i:i + 16]),
                   "equal" if got[i:i + 16] == live[i:i + 16] else "differ from",
                   nbad, self.size // BLOCK, self.last))
        return False

    def verify_refused(self, name):
        try:
            h = self.connect(name)
        except nbd.Error:
            return
        try:
            h.pread(BLOCK, 0)
        except nbd.Error:
            return
        failure("%s: snapshot %s is listed invalid but its export can be "
                "opened and read" % (self.tag, name))

    def verify_live(self, A):
        """Every byte holds the last durable write or a later one."""
        D = self.D
        if len(A) != len(D):
            failure("%s: the live disk has size %d, expected %d"
                    % (self.tag, len(A), len(D)))
            return
        if A == D:
            return
        # E: D with every write in doubt applied, in order.
        E = bytearray(D)
        alts = []
        for w in range(self.W):
            for (o, d) in self.alts[w]:
                E[o:o + len(d)] = d
                alts.append((o, d))
        step = 1 << 16
        for base in range(0, len(A), step):
            a = A[base:base + step]
            if a == D[base:base + step] or a == E[base:base + step]:
                continue
            for s in range(base, min(base + step, len(A)), SECTOR):
                a = A[s:s + SECTOR]
                if a == D[s:s + SECTOR] or a == E[s:s + SECTOR]:
                    continue
                cands = [(o, d) for (o, d) in alts
                         if o < s + SECTOR and o + len(d) > s]
                for i in range(s, min(s + SECTOR, len(A))):
                    if A[i] == D[i] or A[i] == E[i]:
                        continue
                    if any(o <= i < o + len(d) and d[i - o] == A[i]
                           for (o, d) in cands):
                        continue
                    failure("%s: live disk at offset %d: expected the last "
                            "durable (flushed or FUA) data %s or a later write "
                            "to these bytes (the last write issued: %s), "
                            "actual %s (previous cycle: %s)"
                            % (self.tag, i, hexs(D[i:i + 16]),
                               hexs(bytes(E[i:i + 16])), hexs(A[i:i + 16]),
                               self.last))
                    return

    def verify(self):
        p = self.cli("list", "--json")
        if p.returncode != 0:
            failure("%s: list --json after the restart: exit %d: %s"
                    % (self.tag, p.returncode, p.stderr.strip()))
            return
        try:
            listing = json.loads(p.stdout)
        except ValueError:
            failure("%s: list --json printed no JSON: %r" % (self.tag, p.stdout))
            return
        listed = {}
        for s in listing:
            for k in ("id", "name", "created", "epoch", "state"):
                if k not in s:
                    failure("%s: list --json entry without %r: %s"
                            % (self.tag, k, s))
                    return
            listed[s["name"]] = s
        for name in listed:
            if name in self.snaps:
                continue
            if name in self.deleted:
                failure("%s: snapshot %s is listed after the restart, but its "
                        "delete had returned successfully before the SIGKILL"
                        % (self.tag, name))
            elif name in self.gone:
                failure("%s: snapshot %s, whose create was in doubt and which "
                        "was missing after an earlier restart, is listed again"
                        % (self.tag, name))
            else:
                failure("%s: unknown snapshot %s is listed" % (self.tag, name))
            return
        h = self.connect("live")
        if h.is_read_only():
            failure("%s: the live export is read-only after the restart"
                    % self.tag)
        if h.get_size() != self.size:
            failure("%s: the live export has size %d, expected %d"
                    % (self.tag, h.get_size(), self.size))
            return
        live = self.read_all(h)
        h.shutdown()
        for name in list(self.order):
            status = self.snaps[name]
            s = listed.get(name)
            if status == "ok":
                if s is None:
                    failure("%s: snapshot %s is missing after the restart, but "
                            "its create had returned successfully and no "
                            "delete was issued" % (self.tag, name))
                    return
                if s["state"] != "valid":
                    failure("%s: snapshot %s, whose create had returned, is "
                            "%s after the SIGKILL (durability=safe must keep "
                            "it): %s" % (self.tag, name, s["state"],
                                         s.get("reason")))
                    return
                if not self.verify_snapshot(name, live):
                    return
                continue
            # create or delete in doubt
            if s is None:
                self.forget(name, gone=(status == "creating"),
                            deleted=(status == "deleting"))
                continue
            self.stats["in_doubt_found"] += 1
            if s["state"] == "valid":
                if not self.verify_snapshot(name, live):
                    return
                self.snaps[name] = "ok"
                continue
            self.stats["in_doubt_invalid"] += 1
            self.verify_refused(name)
            p = self.cli("delete", name)
            if p.returncode != 0:
                failure("%s: delete of invalid snapshot %s: exit %d: %s"
                        % (self.tag, name, p.returncode, p.stderr.strip()))
                return
            self.forget(name, deleted=True)
        if failures:
            return
        self.verify_live(live)
        if failures:
            return
        self.stats["live_blocks_verified"] += self.durable_blocks
        # The live disk as read is the base of the next cycle.
        self.D = bytearray(live)
        self.alts = [[] for _ in range(self.W)]
        self.durable_blocks = 0

    def forget(self, name, gone=False, deleted=False):
        del self.snaps[name]
        self.order.remove(name)
        if gone:
            self.gone.add(name)
        if deleted:
            self.deleted.add(name)
        self.drop_model(name)

    # ---- the workload ----------------------------------------------------

    def stripes(self, w):
        n = (self.size + STRIPE - 1) // STRIPE
        return [s for s in range(n) if s % self.W == w]

    def pick(self, rng, mine):
        st = rng.choice(mine)
        lo, hi = st * STRIPE, min(st * STRIPE + STRIPE, self.size)
        if rng.random() < 0.5 and hi - lo >= BLOCK:
            nb = (hi - lo) // BLOCK
            b = rng.randrange(nb)
            n = BLOCK * rng.randint(1, min(4, nb - b))
            off = lo + b * BLOCK
        else:
            off = rng.randrange(lo, hi)
            n = rng.randint(1, min(hi - off, 3 * BLOCK + 100))
        return off, n

    def wait_turn(self):
        """Block while a barrier holds the writers; False once killed."""
        with self.cond:
            if self.pause and not self.killed.is_set():
                self.paused += 1
                self.cond.notify_all()
                while self.pause and not self.killed.is_set():
                    self.cond.wait()
                self.paused -= 1
            return not self.killed.is_set()

    def make_durable(self, w, off, data):
        """Write (off, data), the last of writer w, was acknowledged with
        FUA: it is durable, and older writes in doubt no longer count
        where it wrote."""
        n = len(data)
        self.D[off:off + n] = data
        self.blocks.update(range(off // BLOCK, (off + n - 1) // BLOCK + 1))
        kept = []
        for (o, d) in self.alts[w][:-1]:
            e = o + len(d)
            if e <= off or o >= off + n:
                kept.append((o, d))
                continue
            if o < off:
                kept.append((o, d[:off - o]))
            if e > off + n:
                kept.append((off + n, d[off + n - o:]))
        self.alts[w] = kept

    def flushed(self, w):
        """Every write of writer w so far was acknowledged, then flushed."""
        for (o, d) in self.alts[w]:
            self.D[o:o + len(d)] = d
            self.blocks.update(range(o // BLOCK, (o + len(d) - 1) // BLOCK + 1))
        self.alts[w] = []

    def writer(self, w):
        rng = random.Random(self.args.seed * 100 + w)
        mine = self.stripes(w)
        h = None
        try:
            h = self.connect("" if w % 2 else "live")
            while self.wait_turn():
                off, n = self.pick(rng, mine)
                r = rng.random()
                zero = r < 0.05
                fua = 0.05 <= r < 0.15
                data = bytes(n) if zero else rng.randbytes(n)
                with self.lock:
                    self.alts[w].append((off, data))     # in doubt from now
                flags = nbd.CMD_FLAG_FUA if fua else 0
                try:
                    if zero:
                        h.zero(n, off, flags)
                    else:
                        h.pwrite(data, off, flags)
                except nbd.Error as e:
                    if self.killed.is_set():
                        return
                    failure("%s: writer %d: %s of %d bytes at %d failed while "
                            "the server was up: %s"
                            % (self.tag, w, "zero" if zero else "write", n,
                               off, e))
                    return
                with self.lock:
                    self.L[off:off + n] = data
                    self.stats["writes"] += 1
                    if zero:
                        self.stats["zeroes"] += 1
                    if fua:
                        self.stats["fua"] += 1
                        self.make_durable(w, off, data)
                if rng.random() < 0.06:
                    try:
                        h.flush()
                    except nbd.Error as e:
                        if self.killed.is_set():
                            return
                        failure("%s: writer %d: flush failed while the server "
                                "was up: %s" % (self.tag, w, e))
                        return
                    with self.lock:
                        self.stats["flushes"] += 1
                        self.flushed(w)
        except nbd.Error as e:
            if not self.killed.is_set():
                failure("%s: writer %d: %s" % (self.tag, w, e))
        finally:
            with self.cond:
                self.active -= 1
                self.cond.notify_all()
            h = None            # closes the connection

    def barrier(self):
        """Stop the writers with nothing in flight; the live image, or None
        if the server was killed meanwhile."""
        with self.cond:
            self.pause = True
            while self.paused < self.active and not self.killed.is_set():
                self.cond.wait(0.5)
            if self.killed.is_set():
                return None
            with self.lock:
                return bytes(self.L)

    def release(self):
        with self.cond:
            self.pause = False
            self.cond.notify_all()

    def killer(self, delay):
        time.sleep(delay)
        with self.cond:
            self.killed.set()
            self.cond.notify_all()
        try:
            os.kill(self.args.pid, signal.SIGKILL)
        except ProcessLookupError:
            failure("%s: nbdkit (pid %d) was gone before the SIGKILL"
                    % (self.tag, self.args.pid))

    def requester(self):
        rng = self.rng
        i = 0
        while not self.killed.wait(rng.uniform(0.03, 0.2)):
            alive = [n for n in self.order if self.snaps[n] == "ok"]
            if alive and (len(alive) >= self.args.max_alive or
                          rng.random() < 0.2):
                victim = alive[0] if rng.random() < 0.7 else rng.choice(alive)
                self.snaps[victim] = "deleting"
                p = self.cli("delete", victim)
                if p.returncode == 0:
                    self.stats["deletes"] += 1
                    self.forget(victim, deleted=True)
                    self.last = "delete %s returned" % victim
                elif self.killed.is_set():
                    self.stats["deletes_in_doubt"] += 1
                    self.last = "killed during delete %s" % victim
                    return
                else:
                    failure("%s: delete %s: exit %d: %s"
                            % (self.tag, victim, p.returncode, p.stderr.strip()))
                    return
                continue
            i += 1
            name = "k%d-%d" % (self.args.cycle, i)
            image = self.barrier()
            if image is None:
                self.release()
                return
            self.snaps[name] = "creating"
            self.order.append(name)
            self.new_models[name] = image
            try:
                p = self.cli("create", name)
            finally:
                self.release()
            if p.returncode == 0 and p.stdout.strip() == name:
                self.snaps[name] = "ok"
                self.stats["creates"] += 1
                self.last = "create %s returned" % name
            elif self.killed.is_set():
                self.stats["creates_in_doubt"] += 1
                self.last = "killed during create %s" % name
                return
            else:
                failure("%s: create %s: exit %d, stdout %r, stderr %r"
                        % (self.tag, name, p.returncode, p.stdout,
                           p.stderr.strip()))
                return

    def run(self):
        self.L = bytearray(self.D)
        self.blocks = set()
        self.new_models = {}
        self.lock = threading.Lock()
        self.cond = threading.Condition()
        self.killed = threading.Event()
        self.pause = False
        self.paused = 0
        self.active = self.W
        delay = self.rng.uniform(0.2, 1.5)
        self.last = "killed %.2f s into the cycle, no snapshot request " \
                    "in progress" % delay
        kt = threading.Thread(target=self.killer, args=(delay,))
        threads = [threading.Thread(target=self.writer, args=(w,))
                   for w in range(self.W)]
        kt.start()
        for t in threads:
            t.start()
        try:
            self.requester()
        finally:
            kt.join()
            self.release()
            for t in threads:
                t.join()
        if not self.last.startswith("killed"):
            self.last = "killed %.2f s into the cycle after: %s" % (delay,
                                                                   self.last)
        for name, image in self.new_models.items():
            if name in self.snaps:
                with open(self.model_path(name), "wb") as f:
                    f.write(image)
        self.durable_blocks = len(self.blocks)
        self.stats["cycles"] += 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sock", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--cycle", type=int, required=True)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--init", action="store_true")
    ap.add_argument("--no-run", action="store_true")
    ap.add_argument("--stats")
    ap.add_argument("--writers", type=int, default=3)
    ap.add_argument("--max-alive", type=int, default=4)
    args = ap.parse_args()
    if not args.no_run and not args.pid:
        ap.error("--pid is needed to run a cycle")
    c = Cycle(args)
    if args.init:
        c.init()
    else:
        c.load()
        c.verify()
        if failures:
            sys.exit(1)
    if args.no_run:
        c.last = "verified, nothing run"
    else:
        c.run()
    c.save()
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(c.stats, f)
    if failures:
        sys.exit(1)
    print("kill9.py: %s: %s; alive snapshots %s"
          % (c.tag, c.last, [n for n in c.order if c.snaps[n] == "ok"]),
          flush=True)


if __name__ == "__main__":
    main()
