# Model test of writable clones: random writes (partial and whole chunks), zeroes and trims to two clones of one snapshot and to the live volume, checked byte for byte against a model (driven by test-clone-model.sh).
"""
Usage: clone-model.py --sock NBD_SOCK --state FILE --seed N --chunk BYTES
                      [--init] [--ops N]

With --init the model starts as the live export as it is: the snapshot
(export s), the clones c1 and c2 of it, and the live volume all hold it.
Otherwise the model saved in FILE by the previous run is loaded and every
export is checked against it first (a restart or a kill -9 came between:
every change was followed by a flush, so all of it must be there).

Then --ops random changes go to c1, c2 and live: writes at random offsets
and lengths (some whole aligned chunks, some with FUA), zeroes, and trims
(on a clone a trim turns the whole chunks it covers to zeros and leaves
the rest; trims go to the clones only).  Every export is flushed, checked
again, and the model saved.  The snapshot must never change.

With --threads N, N threads first write to c1 at once, each on its own
connection, into stripes of 512 bytes that it alone owns (interleaved, so
that every chunk is shared by all of them): partial writes of one chunk
from several connections must all land (the clone serializes them).

Exit status 0: pass; 1: the first mismatch is printed.
"""

import argparse
import os
import pickle
import random
import sys
import threading

import nbd

EXPORTS = ("s", "c1", "c2", "live")


def connect(sock, name):
    h = nbd.NBD()
    h.set_export_name(name)
    h.connect_unix(sock)
    return h


def read_all(h):
    size = h.get_size()
    out = bytearray()
    step = 1 << 20
    for off in range(0, size, step):
        out += h.pread(min(step, size - off), off)
    return out


def check(handles, model, when):
    for name in EXPORTS:
        got = read_all(handles[name])
        want = model[name]
        if got != want:
            first = next(i for i in range(len(want)) if got[i] != want[i])
            print("FAIL: export %s differs from the model at byte %d (%s)"
                  % (name, first, when), file=sys.stderr)
            sys.exit(1)


def one_change(rng, handles, model, chunk, size):
    name = rng.choice(("c1", "c2", "live"))
    h, m = handles[name], model[name]
    kind = rng.random()
    if rng.random() < 0.3:      # whole aligned chunks
        off = rng.randrange(size // chunk) * chunk
        n = chunk * rng.randint(1, 3)
    else:
        off = rng.randrange(size - 1)
        n = rng.randint(1, 3 * chunk)
    n = min(n, size - off)
    if kind < 0.65:
        data = os.urandom(n)
        flags = nbd.CMD_FLAG_FUA if rng.random() < 0.2 else 0
        h.pwrite(data, off, flags)
        m[off:off + n] = data
    elif kind < 0.85 or name == "live":
        h.zero(n, off)
        m[off:off + n] = bytes(n)
    else:
        h.trim(n, off)
        first = -(-off // chunk) * chunk            # whole chunks only
        last = (off + n) // chunk * chunk
        if off + n == size:
            last = size
        if last > first:
            m[first:last] = bytes(last - first)


STRIPE = 512


def concurrent(sock, model, nthreads, seed, size):
    """Thread t owns stripes t, t + n, t + 2n...; writes land in c1's
    model as they are acknowledged (each stripe has one writer)."""
    errors = []

    def writer(t):
        try:
            rng = random.Random(seed * 100 + t)
            h = connect(sock, "c1")
            nstripes = size // STRIPE
            for _ in range(400):
                k = rng.randrange(t, nstripes, nthreads)
                n = rng.randint(1, STRIPE)
                off = k * STRIPE + rng.randrange(STRIPE - n + 1)
                data = os.urandom(n)
                h.pwrite(data, off)
                model["c1"][off:off + n] = data
            h.flush()
            h.shutdown()
        except Exception as e:      # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,))
               for t in range(nthreads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        print("FAIL: a concurrent writer: %s" % errors[0], file=sys.stderr)
        sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sock", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--chunk", type=int, required=True)
    ap.add_argument("--ops", type=int, default=200)
    ap.add_argument("--init", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    handles = {name: connect(a.sock, name) for name in EXPORTS}
    size = handles["live"].get_size()
    if a.init:
        live = read_all(handles["live"])
        model = {name: bytearray(live) for name in EXPORTS}
    else:
        with open(a.state, "rb") as f:
            model = pickle.load(f)
    check(handles, model, "after the restart" if not a.init else "at start")
    if a.threads:
        concurrent(a.sock, model, a.threads, a.seed, size)
        check(handles, model, "after the concurrent writes")
    for _ in range(a.ops):
        one_change(rng, handles, model, a.chunk, size)
    for name in ("c1", "c2", "live"):
        handles[name].flush()
    check(handles, model, "after the changes")
    with open(a.state + ".tmp", "wb") as f:
        pickle.dump(model, f)
    os.rename(a.state + ".tmp", a.state)
    for h in handles.values():
        h.shutdown()


if __name__ == "__main__":
    main()
