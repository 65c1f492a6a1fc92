# Randomized model test of shadowcopy: live writes, trims and zeroes interleaved with snapshot creates and deletes, checked byte for byte against a Python model (driven by test-model.sh).
"""
Usage: model.py --sock NBD_SOCK --ctl CONTROL_SOCK --cli SHADOWCOPY
                --state DIR --seed N [--rounds N] [--load] [--verify-only]

The model is the live disk (a bytearray) and, for each snapshot, a copy of
the live disk at the moment it was created.  Each round does a few random
I/O requests on the live export, then creates a snapshot with the CLI and
sometimes deletes some.  At the end every snapshot and the live disk are
compared byte for byte with the model, and the model is saved in DIR so a
later run (--load) can check it again after the server restarted.
"""

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import time

import nbd

MiB = 1024 * 1024


def die(msg):
    print("FAIL: model.py: " + msg, file=sys.stderr)
    sys.exit(1)


class Model:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.snaps = []          # [(name, bytes)] in creation order
        self.created = 0
        self.deleted = 0
        self.ops = {}
        self.h = self.connect("live")
        self.size = self.h.get_size()
        if args.load:
            self.load()
        else:
            # The initial live content is whatever the disk holds.
            self.live = bytearray(self.read_all(self.h))
        self.chunk = self.info().get("chunk_size") or args.chunk
        if not self.chunk:
            die("cannot tell the chunk size (info --json has no chunk_size)")

    # ---- plumbing ------------------------------------------------------

    def connect(self, export):
        h = nbd.NBD()
        h.set_export_name(export)
        h.add_meta_context(nbd.CONTEXT_BASE_ALLOCATION)
        h.connect_unix(self.args.sock)
        return h

    def check_extents(self, h, what):
        """Every range the live export reports as reading zeros must be
        zeros in the model (else nbdcopy, qemu-img convert lose data)."""
        if not h.can_meta_context(nbd.CONTEXT_BASE_ALLOCATION):
            return
        off = 0
        while off < self.size:
            got = []

            def cb(ctx, start, entries, err):
                if ctx == nbd.CONTEXT_BASE_ALLOCATION:
                    got.extend(entries)
                return 0
            h.block_status(min(self.size - off, 1 << 30), off, cb)
            if not got:
                die("%s: block status at %d returned no extent" % (what, off))
            for i in range(0, len(got), 2):
                n, flags = got[i], got[i + 1]
                n = min(n, self.size - off)
                if flags & nbd.STATE_ZERO and \
                   self.live[off:off + n] != bytes(n):
                    j = next(j for j in range(n) if self.live[off + j])
                    die("%s: extent [%d, +%d) is reported as zeros (flags %d), "
                        "but byte %d holds data (seed %d)"
                        % (what, off, n, flags, off + j, self.args.seed))
                off += n
                if off >= self.size:
                    break

    def read_all(self, h):
        out = bytearray()
        off = 0
        while off < self.size:
            n = min(4 * MiB, self.size - off)
            out += h.pread(n, off)
            off += n
        return bytes(out)

    def cli(self, *argv, ok=True):
        cmd = [self.args.cli, "-c", self.args.ctl] + list(argv)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60)
        if ok and p.returncode != 0:
            die("%s exited with %d: %s" % (" ".join(cmd), p.returncode,
                                           p.stderr.strip()))
        return p

    def info(self):
        return json.loads(self.cli("info", "--json").stdout)

    def listing(self):
        return json.loads(self.cli("list", "--json").stdout)

    def count(self, op):
        self.ops[op] = self.ops.get(op, 0) + 1

    # ---- random requests ------------------------------------------------

    def pick_range(self):
        r = self.rng.random()
        c, size = self.chunk, self.size
        if r < 0.20:        # aligned, whole chunks
            n = c * self.rng.randint(1, 8)
            off = c * self.rng.randrange(size // c)
            kind = "aligned"
        elif r < 0.40:      # inside one chunk
            off = c * self.rng.randrange(size // c) + self.rng.randrange(c)
            cend = off - off % c + c
            n = self.rng.randint(1, max(1, cend - off))
            kind = "partial-chunk"
        elif r < 0.65:      # unaligned, across chunk boundaries
            off = self.rng.randrange(size)
            n = self.rng.randint(1, 3 * c + 4097)
            kind = "unaligned"
        elif r < 0.80:      # big: up to several MiB
            off = self.rng.randrange(size)
            if self.rng.random() < 0.5:
                off -= off % 512
            n = self.rng.randint(MiB, 5 * MiB)
            kind = "big"
        elif r < 0.90:      # the end of the disk
            n = self.rng.randint(1, 2 * c + 100)
            off = size - n
            kind = "tail"
        else:               # tiny, odd
            off = self.rng.randrange(size)
            n = self.rng.choice([1, 2, 3, 511, 513, 4095])
            kind = "tiny"
        off = max(0, min(off, size - 1))
        n = max(1, min(n, size - off))
        return kind, off, n

    def random_flags(self):
        return nbd.CMD_FLAG_FUA if self.rng.random() < 0.2 else 0

    def io(self):
        r = self.rng.random()
        kind, off, n = self.pick_range()
        if r < 0.65:
            data = self.rng.randbytes(n)
            self.h.pwrite(data, off, self.random_flags())
            self.live[off:off + n] = data
            self.count("write-" + kind)
        elif r < 0.82:
            flags = self.random_flags()
            if self.rng.random() < 0.5:
                flags |= nbd.CMD_FLAG_NO_HOLE
            self.h.zero(n, off, flags)
            self.live[off:off + n] = bytes(n)
            self.count("zero")
        elif r < 0.95:
            self.h.trim(n, off, self.random_flags())
            # Trimmed data reads back unspecified: old data or zeros.
            # Adopt what the live export says, after checking that.
            got = self.h.pread(n, off)
            old = bytes(self.live[off:off + n])
            for b in range(0, n, 4096):
                g, o = got[b:b + 4096], old[b:b + 4096]
                if g == o or g == bytes(len(g)):
                    continue
                for i in range(len(g)):
                    if g[i] != o[i] and g[i] != 0:
                        die("live byte %d after trim of [%d, +%d) is 0x%02x: "
                            "neither the old value 0x%02x nor zero"
                            % (off + b + i, off, n, g[i], o[i]))
            self.live[off:off + n] = got
            self.count("trim")
        else:
            self.h.flush()
            self.count("flush")

    # ---- snapshots ------------------------------------------------------

    def new_name(self):
        self.created += 1
        style = self.rng.randrange(6)
        base = "m%d" % self.created
        if style == 1:
            return base + ".b_c"
        if style == 2:
            return base + ":x+y"
        if style == 3:
            return base + "-" + "N" * (128 - len(base) - 1)   # 128 chars
        return base

    def create(self):
        name = self.new_name()
        p = self.cli("create", name)
        if p.stdout.strip() != name:
            die("create %s printed %r" % (name, p.stdout))
        self.snaps.append((name, bytes(self.live)))
        self.count("create")

    def delete(self):
        if not self.snaps:
            return
        r = self.rng.random()
        if r < 0.15:
            p = self.cli("delete", "--oldest")
            gone = [self.snaps.pop(0)[0]]
        elif r < 0.30 and len(self.snaps) >= 2:
            a, b = self.rng.sample(range(len(self.snaps)), 2)
            gone = [self.snaps[a][0], self.snaps[b][0]]
            p = self.cli("delete", *gone)
            self.snaps = [s for s in self.snaps if s[0] not in gone]
        else:
            i = self.rng.randrange(len(self.snaps))
            gone = [self.snaps[i][0]]
            p = self.cli("delete", gone[0])
            del self.snaps[i]
        self.deleted += len(gone)
        self.count("delete")
        # A deleted snapshot is no longer an export.
        for g in gone:
            try:
                h = self.connect(g)
            except nbd.Error:
                continue
            die("deleted snapshot %s can still be opened" % g)

    def delete_all(self):
        self.cli("delete", "--all")
        self.deleted += len(self.snaps)
        self.snaps = []
        self.count("delete-all")

    # ---- checks ----------------------------------------------------------

    def compare(self, what, expected, got, base=0):
        if expected == got:
            return
        n = min(len(expected), len(got))
        i = next((i for i in range(n) if expected[i] != got[i]), n)
        die("%s: first mismatch at offset %d (0x%x): expected %s got %s "
            "(seed %d; sizes %d/%d)"
            % (what, base + i, base + i, bytes(expected[i:i + 16]).hex(),
               bytes(got[i:i + 16]).hex(), self.args.seed, len(expected),
               len(got)))

    def spot_check(self):
        """A few random ranges of the live disk and of one snapshot."""
        for _ in range(3):
            kind, off, n = self.pick_range()
            self.compare("live [%d,+%d)" % (off, n), self.live[off:off + n],
                         self.h.pread(n, off), off)
        if self.rng.random() < 0.3:
            self.check_extents(self.h, "live export extents")
        if self.snaps:
            name, img = self.rng.choice(self.snaps)
            h = self.connect(name)
            for _ in range(3):
                kind, off, n = self.pick_range()
                self.compare("snapshot %s [%d,+%d)" % (name, off, n),
                             img[off:off + n], h.pread(n, off), off)
            h.shutdown()

    def verify_all(self, when):
        self.compare("live export (%s)" % when, self.live, self.read_all(self.h))
        self.check_extents(self.h, "live export extents (%s)" % when)
        h = self.connect("")
        self.compare("export \"\" (%s)" % when, self.live, self.read_all(h))
        h.shutdown()
        listing = self.listing()
        names = [s["name"] for s in listing]
        want = [s[0] for s in self.snaps]
        if names != want:
            die("%s: snapshot list is %s, the model has %s" % (when, names, want))
        for s in listing:
            if s["state"] != "valid":
                die("%s: snapshot %s is %s (%s)" % (when, s["name"], s["state"],
                                                     s.get("reason")))
        ids = [s["id"] for s in listing]
        if len(set(ids)) != len(ids) or ids != sorted(ids):
            die("%s: snapshot ids not unique and increasing: %s" % (when, ids))
        for name, img in self.snaps:
            h = self.connect(name)
            if h.get_size() != self.size:
                die("snapshot %s has size %d" % (name, h.get_size()))
            if not h.is_read_only():
                die("snapshot %s is not read-only" % name)
            self.compare("snapshot %s (%s)" % (name, when), img, self.read_all(h))
            h.shutdown()
        print("model.py: %s: live and %d snapshots match the model"
              % (when, len(self.snaps)))

    # ---- state -----------------------------------------------------------

    def save(self):
        d = self.args.state
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        with open(os.path.join(d, "live.bin"), "wb") as f:
            f.write(self.live)
        files = []
        for i, (name, img) in enumerate(self.snaps):
            fn = "snap%d.bin" % i
            with open(os.path.join(d, fn), "wb") as f:
                f.write(img)
            files.append([name, fn])
        with open(os.path.join(d, "state.json"), "w") as f:
            json.dump({"snaps": files, "created": self.created}, f)

    def load(self):
        d = self.args.state
        with open(os.path.join(d, "state.json")) as f:
            st = json.load(f)
        with open(os.path.join(d, "live.bin"), "rb") as f:
            self.live = bytearray(f.read())
        self.snaps = []
        for name, fn in st["snaps"]:
            with open(os.path.join(d, fn), "rb") as f:
                self.snaps.append((name, f.read()))
        self.created = st["created"]

    # ---- the run -----------------------------------------------------------

    def run(self, rounds):
        for rnd in range(rounds):
            for _ in range(self.rng.randint(2, 10)):
                self.io()
            if len(self.snaps) >= self.args.max_alive:
                self.delete()
            self.create()
            r = self.rng.random()
            if r < self.args.delete_prob:
                self.delete()
            if rnd == rounds // 2 and rounds >= 10 and not self.args.no_delete_all:
                self.delete_all()
            self.spot_check()
        print("model.py: seed %d: %d rounds, %d creates, %d deletes so far; "
              "ops %s" % (self.args.seed, rounds, self.created, self.deleted,
                          json.dumps(self.ops, sort_keys=True)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sock", required=True)
    ap.add_argument("--ctl", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--chunk", type=int, default=0,
                    help="chunk size, if info --json does not say")
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--max-alive", type=int, default=6,
                    help="delete one when this many snapshots exist")
    ap.add_argument("--delete-prob", type=float, default=0.35,
                    help="chance of a delete after each create")
    ap.add_argument("--no-delete-all", action="store_true")
    ap.add_argument("--load", action="store_true")
    ap.add_argument("--verify-only", action="store_true")
    args = ap.parse_args()
    t0 = time.monotonic()
    m = Model(args)
    if args.load:
        m.verify_all("after restart")
    if not args.verify_only:
        m.run(args.rounds)
        m.verify_all("end of run")
    m.save()
    print("model.py: done in %.1f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    try:
        main()
    except nbd.Error as e:
        die("unexpected NBD error: %s (%s)" % (e.string, e.errno))
