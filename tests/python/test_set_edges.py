"""shadowcopy.Set at its edges, against real servers: shadowcopy_close
refuses a set's handle."""
import ctypes
import errno

import shadowcopy
from shadowcopy import _lib
from helpers import ServerTest, eventually, needs

def set_handle(s, i):
    f = _lib.cdll.shadowcopy_set_handle
    f.restype = ctypes.c_void_p
    f.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    h = f(s._s, i)
    assert h, last_error()
    return h


def c_call(name, restype, argtypes, *args):
    f = getattr(_lib.cdll, name)
    f.restype = restype
    f.argtypes = argtypes
    return f(*args)


def last_error():
    f = _lib.cdll.shadowcopy_get_error
    f.restype = ctypes.c_char_p
    return f().decode()


@needs("shadowcopy_set_handle")
class SetEdgesTest(ServerTest):
    def setUp(self):
        super().setUp()
        self.srv2 = self.server("vol2")

    def listed(self, ctl):
        with shadowcopy.connect(ctl) as v:
            return [(s.name, s.type, s.set) for s in v.list()]

    def test_close_refuses_a_set_handle(self):
        s = shadowcopy.Set(volumes=[self.srv.ctl], name="ar",
                           auto_release=True)
        self.addCleanup(s.close)
        s.create()
        h = set_handle(s, 0)
        rc = c_call("shadowcopy_close", ctypes.c_int, [ctypes.c_void_p], h)
        self.assertEqual(rc, -errno.EINVAL)
        self.assertIn("this handle belongs to a snapshot set", last_error())
        # The set's connection is still open: its auto-release snapshot
        # lives, and the handle still works.
        self.assertEqual(self.listed(self.srv.ctl), [("ar", "snapshot", s.id)])
        self.assertGreaterEqual(
            c_call("shadowcopy_fd", ctypes.c_int, [ctypes.c_void_p], h), 0)
        s.close()
        self.assertTrue(eventually(lambda: self.listed(self.srv.ctl) == []))
