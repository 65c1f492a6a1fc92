#!/usr/bin/env python3
# Write the seed corpus of fuzz-wblog (tests/fuzz/corpus-wblog/): short
# write-back logs in the layout of engine/writeback-log.c (docs/design.md,
# "The write-back log"), cut after the first data slot.
#   python3 tests/fuzz/gen-wblog-corpus.py tests/fuzz/corpus-wblog
import os
import struct
import sys


def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xffffffff


KEY = bytes(range(32))
BOOT = bytes(range(32, 48))
SLOT = 64 << 10


def log(slots, data_len=4096, magic=b"SCWBLOG1", version=2):
    """slots: (index, seq, offset, count, data byte or None)."""
    head = magic + struct.pack("<IIII", version, 64, SLOT, 0) + KEY + BOOT
    if version > 1:
        head += struct.pack("<Q", 0x5e55) + bytes(range(48, 64))  # owner
        head += b"/var/lib/shadowcopy/disk.diff".ljust(512, b"\0")
        head += struct.pack("<Q", 0xfa11ed)           # the path's hash
    else:
        head += struct.pack("<Q", 1 << 60)            # made (ns)
    head += struct.pack("<I", crc32c(head))
    img = bytearray(4096 + data_len)
    img[:len(head)] = head
    for i, seq, off, count, byte in slots:
        data = bytes([byte or 0]) * count
        if i == 0:
            img[4096:4096 + count] = data[:data_len]
        s = struct.pack("<QQII", seq, off, count, crc32c(data))
        s += struct.pack("<II", crc32c(s), 0)
        img[1024 + 32 * i:1024 + 32 * i + 32] = s
    return img


def main(out):
    os.makedirs(out, exist_ok=True)
    seeds = {
        "empty": log([], 0),
        "queued": log([(0, 1, 65536, 4096, 0xa5)]),
        "queued-short": log([(0, 7, 8192, 512, 0x11)], 512),
        "retired": log([(0, 0, 65536, 4096, 0xa5)]),
        "data-past-end": log([(0, 2, 0, 512, 1), (1, 1, 4096, 4096, 2)],
                             512),
        "bad-magic": log([(0, 1, 65536, 4096, 0xa5)], magic=b"SCWBLOG9"),
        "version-1": log([(0, 1, 65536, 4096, 0xa5)], version=1),
    }
    for name, err in (("lost", 30), ("lost-queued", 5)):  # EROFS, EIO
        img = log([(0, 1, 65536, 4096, 0xa5)] if err == 5 else [])
        img[1016:1024] = struct.pack("<Q", 0x4c4f5354 << 32 | err)
        seeds[name] = img
    flipped = log([(0, 1, 65536, 4096, 0xa5)])
    flipped[4096 + 17] ^= 4
    seeds["bad-data"] = flipped
    for name, img in seeds.items():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(img)


main(sys.argv[1])
