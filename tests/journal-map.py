# The journal records of a diff area, one line each, for the tests that damage them (test-journal-flips.sh, test-salvage.sh).
"""
Usage: journal-map.py DIFFAREA

Prints one line per journal record of the current journal, in order:

    SEQ TYPE OFFSET LEN WHERE

OFFSET is the record's byte offset in the file; WHERE says where it is:
"slot-end" for the last three records of a journal slot (its NEXT record
included), "journal-end" for the last three records of the journal, and
"-" otherwise.  The walk follows the record lengths and NEXT records from
the superblock's journal head, and stops at the first record whose
sequence number or length does not fit (the end of the journal); it does
not check CRCs, so it is meant for a diff area that is not damaged yet.
"""

import struct
import sys

SB_SIZE = 4096
REC_NEXT = 6


def superblock(data):
    best = None
    for i in range(2):
        b = data[i * SB_SIZE:(i + 1) * SB_SIZE]
        if len(b) < 112 or b[:8] != b"SHCOPYSB":
            continue
        gen = struct.unpack_from("<Q", b, 16)[0]
        if best is None or gen > best[0]:
            best = (gen, b)
    if best is None:
        sys.exit("journal-map.py: no superblock")
    b = best[1]
    shift = struct.unpack_from("<I", b, 40)[0]
    head, seq = struct.unpack_from("<QQ", b, 80)
    return 1 << shift, head, seq


def walk(data):
    cs, slot, seq = superblock(data)
    recs = []           # (seq, type, offset, len, slot index)
    nslot = 0
    seen = set()
    while slot not in seen:
        seen.add(slot)
        pos = 0
        nxt = None
        while pos + 16 <= cs:
            off = slot * cs + pos
            if off + 16 > len(data):
                break
            _crc, typ, ln, s = struct.unpack_from("<IHHQ", data, off)
            if s != seq or ln < 16 or ln % 8 or pos + ln > cs:
                break
            recs.append((seq, typ, off, ln, nslot))
            seq += 1
            if typ == REC_NEXT:
                nxt = struct.unpack_from("<Q", data, off + 16)[0]
                break
            pos += ln
        if nxt is None:
            break
        slot = nxt
        nslot += 1
    return recs


def main():
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    recs = walk(data)
    for i, (seq, typ, off, ln, ns) in enumerate(recs):
        where = "-"
        if i >= len(recs) - 3:
            where = "journal-end"
        elif any(recs[k][4] != ns for k in range(i + 1, min(i + 4, len(recs)))):
            where = "slot-end"
        print(seq, typ, off, ln, where)


main()
