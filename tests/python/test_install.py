"""python/pythondir.py, which configure asks where the package goes, names
a directory Debian's python3 reads, for the prefixes Debian uses."""
import os
import subprocess
import sys
import unittest

SRCDIR = os.environ.get("abs_top_srcdir",
                        os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(SRCDIR, "python", "pythondir.py")


def pythondir(prefix):
    return subprocess.run(["/usr/bin/python3", SCRIPT, prefix], check=True,
                          capture_output=True, text=True).stdout.strip()


class Install(unittest.TestCase):
    def debian_path(self):
        return subprocess.run(
            ["/usr/bin/python3", "-c", "import sys; print('\\n'.join(sys.path))"],
            check=True, capture_output=True, text=True).stdout.split()

    def test_prefix_usr_is_the_system_dist_packages(self):
        self.assertEqual(pythondir("/usr"), "/usr/lib/python3/dist-packages")
        self.assertIn(pythondir("/usr"), self.debian_path())

    def test_prefix_usr_local_is_read_by_debians_python3(self):
        d = pythondir("/usr/local")
        self.assertTrue(d.startswith("/usr/local/lib/python3"), d)
        self.assertIn(d, self.debian_path())

    def test_another_prefix_stays_under_it(self):
        d = pythondir("/opt/sc/")
        self.assertEqual(d, "/opt/sc/lib/python%d.%d/site-packages"
                         % sys.version_info[:2])


if __name__ == "__main__":
    unittest.main()
