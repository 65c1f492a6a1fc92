"""shadowcopy.Error: an OSError with the library's errno and message, of
the subclass its errno names; and the module's own facts."""
import errno
import os
import pickle
import re
import subprocess
import sys
import unittest

import shadowcopy
import shadowcopy._lib


class Errors(unittest.TestCase):
    def test_error_is_an_oserror_with_errno_and_message(self):
        e = shadowcopy.errors.error_for(errno.EIO, "vol.sock: it broke")
        self.assertIsInstance(e, OSError)
        self.assertIs(type(e), shadowcopy.Error)
        self.assertEqual(e.errno, errno.EIO)
        self.assertEqual(str(e), "vol.sock: it broke")
        self.assertEqual(e.message, "vol.sock: it broke")

    def test_common_errnos_are_also_the_builtin_oserror_subclass(self):
        for err, cls, builtin in (
                (errno.ENOENT, shadowcopy.NotFoundError, FileNotFoundError),
                (errno.EEXIST, shadowcopy.ExistsError, FileExistsError),
                (errno.ENOTCONN, shadowcopy.NotConnectedError,
                 ConnectionError),
                (errno.ETIMEDOUT, shadowcopy.TimedOutError, TimeoutError)):
            e = shadowcopy.errors.error_for(err, "m")
            self.assertIsInstance(e, cls)
            self.assertIsInstance(e, builtin)
            self.assertIsInstance(e, shadowcopy.Error)
        for err, cls in ((errno.EBUSY, shadowcopy.BusyError),
                         (errno.ESTALE, shadowcopy.StaleError),
                         (errno.EPROTO, shadowcopy.ProtocolError),
                         (errno.ENOSPC, shadowcopy.NoSpaceError)):
            self.assertIsInstance(shadowcopy.errors.error_for(err), cls)

    def test_an_error_without_message_says_strerror(self):
        e = shadowcopy.errors.error_for(errno.EBUSY)
        self.assertEqual(str(e), "Device or resource busy")

    def test_errors_pickle(self):
        e = pickle.loads(pickle.dumps(
            shadowcopy.errors.error_for(errno.ENOENT, "no snapshot x")))
        self.assertIsInstance(e, shadowcopy.NotFoundError)
        self.assertEqual((e.errno, str(e)), (errno.ENOENT, "no snapshot x"))


def import_with(library):
    env = dict(os.environ, SHADOWCOPY_LIBRARY=library)
    return subprocess.run(
        [sys.executable, "-c",
         "import shadowcopy; print(shadowcopy.version())"],
        env=env, capture_output=True, text=True)


class Loading(unittest.TestCase):
    def test_shadowcopy_library_may_name_the_directory(self):
        lib = os.environ["SHADOWCOPY_LIBRARY"]
        r = import_with(os.path.dirname(os.path.abspath(lib)))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), shadowcopy.version())

    def test_a_missing_library_is_a_clear_import_error(self):
        r = import_with("/nonexistent/libshadowcopy.so.0")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError: shadowcopy: cannot load", r.stderr)
        self.assertIn("/nonexistent/libshadowcopy.so.0", r.stderr)
        self.assertIn("SHADOWCOPY_LIBRARY", r.stderr)


class Module(unittest.TestCase):
    def test_version_is_the_librarys(self):
        self.assertRegex(shadowcopy.version(), r"^\d+\.\d+\.\d+")

    def test_star_import_keeps_the_builtin_open(self):
        ns = {}
        exec("from shadowcopy import *", ns)
        self.assertNotIn("open", ns)
        self.assertIn("Volume", ns)
        for name in shadowcopy.__all__:
            self.assertTrue(hasattr(shadowcopy, name), name)

    def test_volume_takes_exactly_one_way_in(self):
        with self.assertRaises(TypeError):
            shadowcopy.Volume()
        with self.assertRaises(TypeError):
            shadowcopy.Volume("a.sock", diff="a")
        with self.assertRaises(ValueError):
            shadowcopy.Volume(diff="a", offline="rw")
        with self.assertRaises(TypeError):
            shadowcopy.Volume("a.sock", offline="read")

    @unittest.skipUnless(shadowcopy._lib.has("shadowcopy_writers_list"),
                         "the library lacks shadowcopy_writers_list")
    def test_in_box_writers_are_listed(self):
        kinds = shadowcopy.writers()
        self.assertTrue(kinds)
        prefixes = [k.prefix for k in kinds]
        self.assertIn("fsfreeze", prefixes)
        for k in kinds:
            self.assertIsInstance(k, shadowcopy.WriterKind)
            self.assertRegex(k.prefix, r"^[a-z][a-z0-9-]*$")
            self.assertTrue(k.argument and k.does, k)
        with self.assertRaises(AttributeError):
            kinds[0].prefix = "x"           # frozen

    def test_missing_socket_is_an_error_naming_it(self):
        with self.assertRaises(shadowcopy.Error) as cm:
            shadowcopy.connect("/nonexistent/ctl.sock")
        self.assertIn(cm.exception.errno, (errno.ENOENT, errno.ECONNREFUSED))
        self.assertIn("/nonexistent/ctl.sock", str(cm.exception))
        self.assertTrue(re.search(r"\S", str(cm.exception)))


if __name__ == "__main__":
    unittest.main()
