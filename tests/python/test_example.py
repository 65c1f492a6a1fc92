"""python/examples/backup-set.py (the README's example) backs up a set of
two volumes with a writer, tells it backup-complete and deletes the set."""
import filecmp
import os
import subprocess
import unittest

import shadowcopy
from helpers import ServerTest, logging_writer, needs, phases

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
        dest = os.path.join(self.tmp, "backup")
        os.mkdir(dest)
        r = subprocess.run(["/usr/bin/python3", EXAMPLE, "--writer", writer,
                            dest, self.srv.ctl, srv2.ctl],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        images = r.stdout.split()
        self.assertEqual(len(images), 2, r.stdout)
        for img, srv in zip(images, (self.srv, srv2)):
            self.assertTrue(img.startswith(dest + "/"))
            # Nothing was written: the snapshot is the disk as it is.
            self.assertTrue(filecmp.cmp(img, srv.disk, shallow=False), img)
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
