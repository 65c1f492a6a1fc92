"""python/examples/backup-set.py (the README's example) backs up a set of
two volumes with a writer, tells it backup-complete and deletes the set."""
import os
import subprocess
import unittest

import shadowcopy
from helpers import ServerTest, executable, logging_writer, needs, phases

SRCDIR = os.environ.get("abs_top_srcdir",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLE = os.path.join(SRCDIR, "python", "examples", "backup-set.py")


class Readme(unittest.TestCase):
    def test_readme_shows_the_examples_code(self):
        with open(EXAMPLE) as f:
            ex = f.read()
        code = ex[ex.index("def export_uri"):ex.index("def main():")]
        with open(os.path.join(SRCDIR, "README.md")) as f:
            readme = f.read()
        shown = "\n".join(line[4:] for line in readme.split("\n"))
        self.assertIn(code.rstrip("\n") + "\n", shown)


@needs("shadowcopy_set_new")
class Example(ServerTest):
    def test_backup_set_example(self):
        srv2 = self.server("vol2")
        log = os.path.join(self.tmp, "w.log")
        writer = logging_writer(os.path.join(self.tmp, "w"), log)
        # A second writer overwrites the start of each live disk once the
        # snapshots are taken (post-snapshot), before the copies: an
        # example that copied the live export instead of the snapshot
        # would copy these bytes.
        before = {}
        for srv in (self.srv, srv2):
            with open(srv.disk, "rb") as f:
                before[srv.disk] = f.read()
        scribbler = executable(os.path.join(self.tmp, "scribble"), '''#!/bin/sh
[ "$1" = post-snapshot ] || exit 0
for s in %s %s; do
    /usr/bin/nbdsh -u "nbd+unix:///?socket=$s" \
        -c 'h.pwrite(b"\\xab" * 65536, 0); h.flush()' || exit 1
done
''' % (self.srv.nbd, srv2.nbd))
        dest = os.path.join(self.tmp, "backup")
        os.mkdir(dest)
        r = subprocess.run(["/usr/bin/python3", EXAMPLE, "--writer", writer,
                            "--writer", scribbler,
                            dest, self.srv.ctl, srv2.ctl],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        images = r.stdout.split()
        self.assertEqual(len(images), 2, r.stdout)
        for img, srv in zip(images, (self.srv, srv2)):
            self.assertTrue(img.startswith(dest + "/"))
            # The image is the disk as it was at the snapshot, not as the
            # scribbler left it.
            with open(img, "rb") as f:
                self.assertEqual(f.read(), before[srv.disk], img)
            with open(srv.disk, "rb") as f:
                self.assertEqual(f.read(65536), b"\xab" * 65536)
        self.assertEqual(phases(log),
                         ["identify", "prepare", "freeze", "thaw",
                          "post-snapshot", "backup-complete"])
        with open(log) as f:
            self.assertEqual(f.read().split()[-1], "success")
        for srv in (self.srv, srv2):
            with shadowcopy.connect(srv.ctl) as v:
                self.assertEqual(v.list(), [])

    def test_backup_set_example_fails_cleanly(self):
        r = subprocess.run(["/usr/bin/python3", EXAMPLE, self.tmp,
                            os.path.join(self.tmp, "nosuch.sock")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertRegex(r.stderr, r"^backup-set: .*nosuch\.sock")
