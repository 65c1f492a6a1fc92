"""Python callables handed to C.

A guard keeps the first exception a callback raises (C cannot unwind
through Python) and makes the C side stop: an int-returning callback
returns -ECANCELED, and later calls do nothing.  The binding raises the
kept exception once the C call has returned.  The ctypes function
objects are kept by whoever holds the guard for as long as C may call
them.
"""
import errno
import threading


class Guard:
    def __init__(self):
        self._lock = threading.Lock()
        self.exc = None

    def _keep(self, e):
        with self._lock:
            if self.exc is None:
                self.exc = e

    def int_fn(self, cfunctype, f):
        """A C callback returning int: f's result (None: 0)."""
        def call(*args):
            if self.exc is not None:
                return -errno.ECANCELED
            try:
                r = f(*args)
                return 0 if r is None else int(r)
            except BaseException as e:  # noqa: B902 (re-raised later)
                self._keep(e)
                return -errno.ECANCELED
        return cfunctype(call)

    def void_fn(self, cfunctype, f):
        """A C callback returning nothing."""
        def call(*args):
            if self.exc is not None:
                return
            try:
                f(*args)
            except BaseException as e:  # noqa: B902 (re-raised later)
                self._keep(e)
        return cfunctype(call)

    def reraise(self):
        """Raise what a callback raised, once."""
        with self._lock:
            e, self.exc = self.exc, None
        if e is not None:
            raise e
