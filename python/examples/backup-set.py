#!/usr/bin/python3
"""backup-set.py: back up several volumes as one consistent snapshot set.

Takes one snapshot of every volume while every writer is frozen (a
snapshot set), copies each snapshot from its NBD export to
DEST/VOLUME.SNAPSHOT.img with nbdcopy, tells the writers whether the
backup succeeded, and deletes the set.  The snapshots are auto-release:
if this script dies, they go with its connections.

    backup-set.py [--writer WRITER]... DEST CONTROL-SOCKET...

e.g. backup-set.py --writer fsfreeze:/srv /backup \\
         /run/shadowcopy/data.ctl /run/shadowcopy/logs.ctl
"""
import argparse
import os
import subprocess
import sys
import urllib.parse

import shadowcopy


def export_uri(listen, export):
    """The NBD URI of `export` on the server listening at URI `listen`."""
    u = urllib.parse.urlsplit(listen)     # nbd+unix:///?socket=... too
    return "%s://%s/%s%s" % (u.scheme, u.netloc,
                             urllib.parse.quote(export, safe=""),
                             "?" + u.query if u.query else "")


def backup(dest, volumes, writers=(), notify=None):
    """Snapshot `volumes` as a set, copy each snapshot into `dest`."""
    with shadowcopy.Set(volumes=volumes, writers=writers,
                        auto_release=True, notify=notify) as s:
        s.create()
        ok = False
        try:
            for where, snap in s.snapshots:
                with shadowcopy.connect(where) as v:
                    uri = export_uri(v.info().listen, snap.name)
                name = os.path.basename(where).removesuffix(".sock")
                out = os.path.join(dest, "%s.%s.img" % (name, snap.name))
                subprocess.run(["nbdcopy", uri, out], check=True)
                print(out)
            ok = True
        finally:
            s.backup_complete(ok)
            s.delete()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--writer", action="append", default=[])
    p.add_argument("dest")
    p.add_argument("volumes", nargs="+", metavar="CONTROL-SOCKET")
    a = p.parse_args()
    backup(a.dest, a.volumes, a.writer,
           notify=lambda m: print("backup-set: %s" % m, file=sys.stderr))


if __name__ == "__main__":
    try:
        main()
    except shadowcopy.Error as e:
        sys.exit("backup-set: %s" % e)
    except subprocess.CalledProcessError as e:
        sys.exit("backup-set: %s" % e)
