# Bit rot in the diff area: flip one byte at each of many random offsets of
# a diff area holding copied data, restart the real server on it, read every
# snapshot, and check that none serves data different from its saved image
# (driven by test-bitflip.sh).
"""
Usage: bitflip.py --plugin SO --cli SHADOWCOPY --dir DIR
                  [--trials N] [--seed N] [--table FILE]

Set-up, once per stop kind ("clean": SIGTERM, "kill": SIGKILL after a
flush): a 4 MiB origin of random data, 64 KiB chunks, a diff area holding
three snapshots made between rounds of writes (data copies, zero copies,
a deleted snapshot whose slots were freed and reused), each snapshot read
and saved as the reference image, then the server stopped.

Each trial starts from a pristine copy of that diff area (and the origin,
which no trial may change), XORs one byte at one offset with a random non-zero value, starts nbdkit on
it and sorts what the user gets:

  refused    nbdkit did not start (the open was refused with a message)
  damaged    a snapshot is listed but not valid (damaged, invalid, with a
             reason); its export must then be refused
  eio        reading a snapshot failed (EIO); afterwards it must be listed
             as not valid and its export refused
  identical  every snapshot served equals its image
  wrong      a snapshot served data different from its image (a failure)

Also a failure: a snapshot that vanished from the list while the server
started (a snapshot silently lost), or the origin file changed (recovery
must never write the origin).  A trial is counted under the worst of its
snapshots (wrong > eio > damaged > identical).

Offsets: a fifth of the trials hit the used bytes of the metadata (the
superblocks and the journal's records, found through the superblock's
journal head); the rest are uniform over the file's allocated extents.
"""

import argparse
import errno
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import nbd

CHUNK = 64 * 1024
DISK_SIZE = 4 * 1024 * 1024
SB_SIZE = 4096
SB_JOURNAL_HEAD = 80            # offset of journal_head in the superblock
SB_GENERATION = 16

ORDER = ["identical", "damaged", "eio", "wrong"]


def die(msg):
    print("FAIL: bitflip: " + msg, file=sys.stderr)
    sys.exit(1)


class Server:
    def __init__(self, args, disk, diff, log):
        self.sock = diff + ".nbd"
        self.ctl = diff + ".sock"
        self.args = args
        for p in (self.sock, self.ctl):
            if os.path.exists(p):
                os.unlink(p)
        self.logf = open(log, "ab")
        self.proc = subprocess.Popen(
            ["nbdkit", "-f", "-U", self.sock, args.plugin,
             "disk=" + disk, "diff=" + diff],
            stdout=self.logf, stderr=self.logf, stdin=subprocess.DEVNULL)
        self.ready = False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return
            if os.path.exists(self.sock) and os.path.exists(self.ctl):
                self.ready = True
                return
            time.sleep(0.01)
        self.stop(signal.SIGKILL)
        die("nbdkit neither started nor exited within 20 s")

    def cli(self, *words):
        return subprocess.run([self.args.cli, "-c", self.ctl] + list(words),
                              capture_output=True, text=True, timeout=60)

    def snapshots(self):
        r = self.cli("list", "--json")
        if r.returncode != 0:
            die("list failed on a running server: " + r.stderr.strip())
        return {s["name"]: s for s in json.loads(r.stdout)}

    def handle(self, export):
        h = nbd.NBD()
        h.set_export_name(export)
        h.connect_unix(self.sock)
        return h

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


def read_all(h):
    size = h.get_size()
    out = bytearray()
    for off in range(0, size, 1024 * 1024):
        out += h.pread(min(1024 * 1024, size - off), off)
    return bytes(out)


def read_export(server, name):
    """All of export `name`; the connection is closed whatever happens (an
    open one would keep nbdkit from stopping)."""
    h = server.handle(name)
    try:
        return read_all(h)
    finally:
        try:
            h.shutdown()
        except nbd.Error:
            pass


def digest(data):
    return hashlib.sha256(data).hexdigest()


def prepare(args, rng, kind):
    """Make the pristine origin and diff area for one stop kind; return
    (disk, diff, images) where images maps snapshot name -> sha256."""
    d = os.path.join(args.dir, kind)
    os.makedirs(d)
    disk, diff = os.path.join(d, "disk"), os.path.join(d, "diff")
    with open(disk, "wb") as f:
        f.write(rng.randbytes(DISK_SIZE))
    s = Server(args, disk, diff, os.path.join(d, "setup.log"))
    if not s.ready:
        die("set-up server did not start")
    live = s.handle("")
    images = {}

    def write_round(n):
        for _ in range(n):
            off = rng.randrange(0, DISK_SIZE // 4096) * 4096
            length = rng.choice([4096, 8192, CHUNK, 3 * CHUNK])
            length = min(length, DISK_SIZE - off)
            if rng.random() < 0.15:
                live.zero(length, off)
            else:
                live.pwrite(rng.randbytes(length), off)
        live.flush()

    def snap(name):
        r = s.cli("create", name)
        if r.returncode != 0:
            die("create %s: %s" % (name, r.stderr.strip()))

    # Zeros in the origin first, so that later writes make zero copies.
    live.zero(4 * CHUNK, 8 * CHUNK)
    live.flush()
    snap("s1")
    write_round(30)
    snap("gone")
    write_round(20)
    snap("s2")
    write_round(30)
    r = s.cli("delete", "gone")
    if r.returncode != 0:
        die("delete: " + r.stderr.strip())
    snap("s3")
    write_round(30)                 # reuses the slots "gone" freed
    for name in ("s1", "s2", "s3"):
        h = s.handle(name)
        images[name] = digest(read_all(h))
        h.shutdown()
    live.flush()
    live.shutdown()
    rc = s.stop(signal.SIGTERM if kind == "clean" else signal.SIGKILL)
    if kind == "kill" and rc != -signal.SIGKILL:
        die("set-up server was not killed (status %s)" % rc)
    if kind == "clean" and rc != 0:
        die("set-up server exited with status %s" % rc)
    return disk, diff, images


def used_ranges(path):
    """The allocated extents of a file, as (start, end) pairs."""
    out = []
    fd = os.open(path, os.O_RDONLY)
    try:
        end = os.fstat(fd).st_size
        pos = 0
        while pos < end:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            stop = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, stop))
            pos = stop
    finally:
        os.close(fd)
    return out


def metadata_ranges(path):
    """The superblocks, and the used bytes of the journal's first slot."""
    with open(path, "rb") as f:
        data = f.read(2 * SB_SIZE)
        best = max(range(2), key=lambda i: int.from_bytes(
            data[i * SB_SIZE + SB_GENERATION:i * SB_SIZE + SB_GENERATION + 8],
            "little"))
        sb = data[best * SB_SIZE:(best + 1) * SB_SIZE]
        head = int.from_bytes(sb[SB_JOURNAL_HEAD:SB_JOURNAL_HEAD + 8], "little")
        f.seek(head * CHUNK)
        slot = f.read(CHUNK)
    used = len(slot.rstrip(b"\0"))
    ranges = [(0, 2 * SB_SIZE)]
    if used:
        ranges.append((head * CHUNK, head * CHUNK + used))
    return ranges


def pick(rng, ranges):
    total = sum(b - a for a, b in ranges)
    x = rng.randrange(total)
    for a, b in ranges:
        if x < b - a:
            return a + x
        x -= b - a
    raise AssertionError


def trial(args, rng, kind, n, src_disk, src_diff, images, offset):
    d = os.path.join(args.dir, "trial")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    # The origin is used in place: a diff area belongs to its origin's
    # inode, and nothing in a trial may write it (checked below).
    disk, diff = src_disk, os.path.join(d, "diff")
    subprocess.run(["cp", "--sparse=always", src_diff, diff], check=True)
    with open(disk, "rb") as f:
        origin_before = digest(f.read())
    xor = rng.randrange(1, 256)
    with open(diff, "r+b") as f:
        f.seek(offset)
        old = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([old ^ xor]))
    log = os.path.join(args.dir, "trial-%s-%d.log" % (kind, n))
    s = Server(args, disk, diff, log)
    where = "%s trial %d (offset %d, xor 0x%02x)" % (kind, n, offset, xor)
    if not s.ready:
        s.stop()
        with open(log, errors="replace") as f:
            text = f.read()
        if "shadowcopy" not in text:
            die(where + ": nbdkit exited without a message")
        os.unlink(log)
        outcome = "refused"
    else:
        worst = "identical"
        for name, image in images.items():
            # Listed again before each snapshot: reading another one may
            # have found damage in a copy this one shares.
            listed = s.snapshots()
            if name not in listed:
                die(where + ": snapshot %s vanished" % name)
            if listed[name]["state"] != "valid":
                got = "damaged"
                try:
                    s.handle(name).shutdown()
                    die(where + ": %s is %s but its export opens"
                        % (name, listed[name]["state"]))
                except nbd.Error:
                    pass
            else:
                try:
                    data = read_export(s, name)
                    got = "identical" if digest(data) == image else "wrong"
                except nbd.Error as e:
                    got = "eio"
                    if e.errnum != errno.EIO:
                        die(where + ": reading %s failed with %s, not EIO"
                            % (name, e))
                    after = s.snapshots()
                    if name in after and after[name]["state"] == "valid":
                        die(where + ": %s failed a read but is still "
                            "listed valid" % name)
            if got == "wrong":
                print("WRONG: " + where + ": snapshot %s served wrong data"
                      % name, file=sys.stderr)
            if ORDER.index(got) > ORDER.index(worst):
                worst = got
        rc = s.stop()
        if rc != 0:
            die(where + ": nbdkit exited with status %s" % rc)
        outcome = worst
        if outcome != "wrong":
            os.unlink(log)
    with open(disk, "rb") as f:
        if digest(f.read()) != origin_before:
            die(where + ": the origin file changed")
    return outcome


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plugin", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--trials", type=int, default=240)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--table")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    kinds = ["clean", "kill"]
    cols = ["refused", "damaged", "eio", "identical", "wrong"]
    table = {k: dict.fromkeys(cols, 0) for k in kinds}
    region = {k: {"metadata": 0, "any": 0} for k in kinds}
    for kind in kinds:
        disk, diff, images = prepare(args, rng, kind)
        meta, anywhere = metadata_ranges(diff), used_ranges(diff)
        per_kind = args.trials // len(kinds)
        for n in range(per_kind):
            in_meta = n % 5 == 0
            offset = pick(rng, meta if in_meta else anywhere)
            region[kind]["metadata" if in_meta else "any"] += 1
            table[kind][trial(args, rng, kind, n, disk, diff, images,
                              offset)] += 1
    lines = ["| stop | flips (metadata / anywhere) | refused at start "
             "| snapshot marked damaged | read failed with EIO "
             "| served identical | served wrong |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for k in kinds:
        t = table[k]
        lines.append("| %s | %d (%d / %d) | %d | %d | %d | %d | %d |" % (
            k, sum(t.values()), region[k]["metadata"], region[k]["any"],
            t["refused"], t["damaged"], t["eio"], t["identical"], t["wrong"]))
    print("\n".join(lines))
    if args.table:
        with open(args.table, "w") as f:
            f.write("\n".join(lines) + "\n")
    wrong = sum(table[k]["wrong"] for k in kinds)
    if wrong:
        die("%d trial(s) served wrong data (seed %d)" % (wrong, args.seed))


if __name__ == "__main__":
    main()
