# Rewrite a backup's manifest with another (valid) block size: the CRC32C
# of each BLOCK_SIZE block of the image as read from the raw file IMAGE,
# or from RAW_CONTENT when given (a qcow2 image's content, saved raw).
# Backup only writes 1 MiB blocks; the manifest parser takes any power of
# two from 4 KiB to 1 GiB.
"""Usage: manifest-reblock.py IMAGE BLOCK_SIZE [RAW_CONTENT]"""
import json
import sys

TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    t = TABLE
    for x in data:
        c = t[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def main():
    image, bs = sys.argv[1], int(sys.argv[2])
    content = sys.argv[3] if len(sys.argv) > 3 else image
    path = image + ".manifest.json"
    with open(path) as f:
        m = json.load(f)
    with open(content, "rb") as f:
        data = f.read()
    assert len(data) == m["volume-size"], "the content is not the volume's size"
    crcs, zero_crc = [], {}
    for off in range(0, len(data), bs):
        block = data[off:off + bs]
        if block.count(0) == len(block):
            if len(block) not in zero_crc:
                zero_crc[len(block)] = crc32c(block)
            crcs.append(zero_crc[len(block)])
        else:
            crcs.append(crc32c(block))
    as_text = isinstance(m["block-crc32c"][0], str)
    m["block-size"] = bs
    m["block-crc32c"] = ["%08x" % c if as_text else c for c in crcs]
    with open(path, "w") as f:
        json.dump(m, f, indent=1)


main()
