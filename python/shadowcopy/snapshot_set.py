"""A snapshot set with writers: struct shadowcopy_set and its calls."""
import ctypes
import signal
import threading
import time

from . import _lib
from ._callbacks import Guard
from ._lib import arg, fn, text
from .types import snapshot_from, writer_kind_from, writer_result_from

FREEZE_MS = 60000
HOLD_MS = 10000
RETRY_DELAY_MS = 5000
VOLUMES_MAX = 64                          # SHADOWCOPY_SET_VOLUMES_MAX
WRITERS_DIR = "/etc/shadowcopy/writers.d"  # SHADOWCOPY_WRITERS_DIR


def _interruptible(call, *args):
    """call(*args) for a call that runs writers.  In the main thread it
    runs in a worker thread, so that Ctrl-C (KeyboardInterrupt) can reach
    the library through shadowcopy_interrupt(): the writer phase in
    progress is cut short, the call ends (the set aborted, every writer
    thawed), and only then is KeyboardInterrupt raised.  Returns the
    call's value, or raises its Error (taken in the thread that failed:
    the message is thread-local)."""
    if threading.current_thread() is not threading.main_thread():
        return _lib.check(call(*args))
    box = {}
    done = threading.Event()

    def run():
        try:
            rc = call(*args)
            box["rc"] = rc
            if rc < 0:
                box["error"] = _lib.last_error(rc)
        finally:
            done.set()
    t = threading.Thread(target=run, name="shadowcopy", daemon=True)
    t.start()
    interrupted = None
    kicked = 0.0
    # An Event, not t.join(): a join that KeyboardInterrupt breaks into
    # marks the thread as ended while it still runs (Python 3.11).
    while not done.is_set():
        try:
            done.wait(0.1)
            if interrupted is not None and time.monotonic() - kicked > 1:
                # The library notices the interruption when a signal
                # breaks its wait (as in the CLI, whose handler calls
                # it); Python took SIGINT in this thread, so the worker
                # gets one too (again each second, in case one arrived
                # just before a wait).  The KeyboardInterrupt each causes
                # here is absorbed below.
                kicked = time.monotonic()
                signal.pthread_kill(t.ident, signal.SIGINT)
        except KeyboardInterrupt as e:
            if interrupted is None:
                interrupted = e
                fn.interrupt()
        except ProcessLookupError:      # the worker just ended
            pass
    t.join()
    if interrupted is not None:
        raise interrupted
    if "error" in box:
        raise box["error"]
    return box["rc"]


class Set:
    """A snapshot set: one snapshot of the same name on every volume,
    taken while every writer is frozen.

        with shadowcopy.Set(volumes=[a, b], writers=[w]) as s:
            s.create()
            for where, snap in s.snapshots: ...
            s.backup_complete(True)
            s.delete()

    Options (keywords here or of options()): name, name_prefix,
    auto_release,
    delete_oldest, freeze_ms, hold_ms, retries, retry_delay_ms, wait.
    notify: a callable given each notice of the library (a str).  An
    exception notify raises is raised by the call during which it ran,
    once that call has returned.
    """

    def __init__(self, volumes=(), writers=(), writers_dirs=(), *,
                 notify=None, **options):
        self._s = None
        s = ctypes.c_void_p()
        _lib.check(fn.set_new(ctypes.byref(s)))
        self._s = s
        self._guard = Guard()
        self._notify = None
        self._notify_c = None       # kept alive while the set may call it
        self._timeouts = [FREEZE_MS, HOLD_MS]
        self._retries = [0, RETRY_DELAY_MS, False]
        for v in volumes:
            self.add_volume(v)
        for w in writers:
            self.add_writer(w)
        for d in writers_dirs:
            self.add_writers_dir(d)
        if notify is not None:
            self.notify = notify
        if options:
            self.options(**options)

    def _handle(self):
        if self._s is None:
            raise ValueError("shadowcopy.Set: the set is closed")
        return self._s

    def _call(self, call, *args):
        """A set call: its Error, or what notify raised meanwhile."""
        try:
            rc = call(self._handle(), *args)
        finally:
            self._guard.reraise()
        return _lib.check(rc)

    def add_volume(self, where):
        """A volume by control socket or diff area (its server must run)."""
        self._call(fn.set_add_volume, arg(where))

    def add_writer(self, writer):
        """An executable's path, or an in-box writer ("fsfreeze:/mnt",
        "qemu-ga:/run/vm1.qga", ...; see shadowcopy.writers())."""
        self._call(fn.set_add_writer, arg(writer))

    def add_writers_dir(self, directory, optional=False):
        """The executables of `directory`, in name order."""
        self._call(fn.set_add_writers_dir, arg(directory), bool(optional))

    @property
    def writers(self):
        """The writers, as given or found, in the order they run."""
        h = self._handle()
        out = []
        while True:
            w = fn.set_writer(h, len(out))
            if w is None:
                return out
            out.append(text(w))

    def options(self, *, name=None, name_prefix=None, auto_release=None,
                delete_oldest=None, freeze_ms=None, hold_ms=None,
                retries=None, retry_delay_ms=None, wait=None):
        """Set the options given (None: leave as is).  Without a name the
        snapshots are named after the UTC time, after name_prefix if
        given."""
        h = self._handle()
        if name is not None:
            self._call(fn.set_name, arg(name))
        if name_prefix is not None:
            self._call(fn.set_name_prefix, arg(name_prefix))
        if auto_release is not None:
            fn.set_auto_release(h, bool(auto_release))
        if delete_oldest is not None:
            fn.set_delete_oldest(h, bool(delete_oldest))
        if freeze_ms is not None or hold_ms is not None:
            if freeze_ms is not None:
                self._timeouts[0] = int(freeze_ms)
            if hold_ms is not None:
                self._timeouts[1] = int(hold_ms)
            fn.set_timeouts(h, *self._timeouts)
        if retries is not None or retry_delay_ms is not None or \
           wait is not None:
            for i, v in enumerate((retries, retry_delay_ms, wait)):
                if v is not None:
                    self._retries[i] = v
            r, d, w = self._retries
            fn.set_retries(h, int(r), int(d), bool(w))

    @property
    def notify(self):
        return self._notify

    @notify.setter
    def notify(self, f):
        h = self._handle()
        if f is None:
            c = _lib.notify_fn()            # NULL: no callback
        else:
            c = self._guard.void_fn(_lib.notify_fn,
                                    lambda m, _: f(text(m)))
        fn.set_notify(h, c, None)
        self._notify, self._notify_c = f, c

    def create(self):
        """Take the set: every volume has its snapshot, or (Error) none
        does and every writer is thawed.  Returns self.snapshots.  If the
        notify callback raised, create() raises that, and the set, if it
        was taken, is deleted first: an exception never leaves snapshots
        behind."""
        h = self._handle()
        try:
            _interruptible(fn.set_create, h)
        except BaseException:
            self._guard.reraise()
            raise
        if self._guard.exc is not None:
            fn.set_delete(h)
            self._guard.reraise()
        return self.snapshots

    @property
    def id(self):
        """The set's UUID (None if the library has none yet)."""
        return text(fn.set_id(self._handle())) or None

    @property
    def name(self):
        """The snapshots' common name (None if not known yet)."""
        return text(fn.set_snapshot_name(self._handle())) or None

    @property
    def snapshots(self):
        """Each volume's snapshot: a list of (where, Snapshot)."""
        h = self._handle()
        out = []
        for i in range(fn.set_volumes(h)):
            where = ctypes.c_char_p()
            c = _lib.snapshot()
            _lib.check(fn.set_snapshot(h, i, ctypes.byref(where),
                                       ctypes.byref(c)))
            out.append((text(where.value), snapshot_from(c)))
        return out

    def volume(self, i):
        """Volume i's connection, the one that owns its snapshot, as a
        Volume: back the snapshot up over it (diff, list, checkpoints...),
        watch its fileno().  The set owns it: closing or dropping the
        Volume leaves the connection (and an auto-release snapshot)
        alive; it is closed with the set (the Volume keeps the set from
        being collected).  IndexError past the last volume; Error before
        create()."""
        from .volume import Volume
        h = self._handle()
        n = fn.set_volumes(h)
        i = int(i)
        if n and not -n <= i < n:
            raise IndexError("shadowcopy.Set: no volume %d (it has %d)"
                             % (i, n))
        if i < 0:
            i += n
        c = fn.set_handle(h, i)
        if not c:
            raise _lib.last_error(-fn.get_errno())
        return Volume._borrowed(ctypes.c_void_p(c), self,
                                "set=%s volume=%d" % (self.id, i))

    handle = volume

    def backup_complete(self, success=True):
        """Tell the writers the backup is done (their backup-complete
        phase)."""
        h = self._handle()
        try:
            _interruptible(fn.set_backup_complete, h, bool(success))
        finally:
            self._guard.reraise()

    @property
    def writer_results(self):
        """What each writer's phases did, in order: WriterResult."""
        out = []
        g = Guard()
        cb = g.void_fn(_lib.writer_result_fn,
                       lambda r, _: out.append(writer_result_from(r[0])))
        fn.set_writer_results(self._handle(), cb, None)
        g.reraise()
        return out

    def delete(self):
        """Delete the set's snapshot from every volume."""
        self._call(fn.set_delete)

    @property
    def closed(self):
        return self._s is None

    def close(self):
        """Close the connections (an auto-release set's snapshots go with
        them); again: nothing."""
        s, self._s = self._s, None
        if s is not None:
            try:
                fn.set_free(s)
            finally:
                self._notify_c = None
                self._guard.reraise()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_s", None) is not None:
            try:
                self.close()
            except Exception:   # nobody to tell, at collection
                pass


def writers():
    """The in-box writers: a list of WriterKind."""
    out = []
    table = fn.writers_list()
    i = 0
    while table and table[i].prefix is not None:
        out.append(writer_kind_from(table[i]))
        i += 1
    return out


def interrupt():
    """Cut the writer phase in progress short (async-signal-safe in C; a
    Set's create and backup_complete call it on Ctrl-C by themselves)."""
    fn.interrupt()
