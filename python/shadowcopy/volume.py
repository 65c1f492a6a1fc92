"""A connection to one volume: struct shadowcopy and its calls."""
import ctypes
from array import array

from . import _lib
from ._callbacks import Guard
from ._lib import arg, fn, text
from .types import (diff_header_from, dropped_from, revert_from, scrub_from,
                    server_from, snapshot_from, volume_from)

_OFFLINE = {None: 0, False: 0, "read": 1, "write": 2}

DELETE_KEEP_CHECKPOINT = 1
DELETE_WITH_CLONES = 2


def _rate(rate):
    """A rate argument: None is the server's default (0 in C)."""
    return 0 if rate is None else int(rate)


def _number(v):
    """A counter's value: an int when it is a decimal number."""
    return int(v) if v.isdigit() else v


class Diff:
    """The changed extents of Volume.diff: iterating yields (offset,
    length) pairs, sorted and disjoint; .header says who FROM and TO are
    (a DiffHeader)."""

    def __init__(self, header, extents):
        self.header = header
        self._extents = extents          # array('Q'): offset, length, ...

    def __len__(self):
        return len(self._extents) // 2

    def __iter__(self):
        e = self._extents
        for i in range(0, len(e), 2):
            yield (e[i], e[i + 1])

    def __repr__(self):
        return "<shadowcopy.Diff %s -> %s: %d extents, %d bytes>" % (
            self.header.from_.name, self.header.to.name, len(self),
            self.header.bytes)


class Volume:
    """A connection to one volume, closed by close() or a with block.

    Volume(socket=PATH): the server listening on control socket PATH.
    Volume(diff=PATH, offline=None|"read"|"write"): the server listening
    on PATH.sock or, when none listens and offline allows, the diff area
    itself, served in-process ("write" checkpoints it at close).
    Volume(volume=NAME): configured volume NAME.
    """

    def __init__(self, socket=None, *, diff=None, offline=None, volume=None):
        if sum(x is not None for x in (socket, diff, volume)) != 1:
            raise TypeError("Volume() takes exactly one of socket=, diff=,"
                            " volume=")
        if offline not in _OFFLINE:
            raise ValueError("offline must be None, 'read' or 'write', not %r"
                             % (offline,))
        if offline and diff is None:
            raise TypeError("offline= goes with diff= only")
        self._h = None
        h = ctypes.c_void_p()
        if socket is not None:
            rc = fn.connect(arg(socket), ctypes.byref(h))
        elif diff is not None:
            rc = fn.open(arg(diff), _OFFLINE[offline], ctypes.byref(h))
        else:
            rc = fn.open_volume(arg(volume), ctypes.byref(h))
        _lib.check(rc)
        self._h = h
        self._where = ("socket=%r" % (socket,) if socket is not None else
                       "diff=%r offline=%r" % (diff, offline)
                       if diff is not None else "volume=%r" % (volume,))

    @classmethod
    def _borrowed(cls, h, owner, where):
        """A Volume over handle h, which `owner` (a Set) owns: close()
        only forgets it, and it is closed once the owner is."""
        v = cls.__new__(cls)
        v._h = h
        v._owner = owner
        v._where = where
        return v

    def __repr__(self):
        return "<shadowcopy.Volume %s%s>" % (
            getattr(self, "_where", "?"), " closed" if self.closed else "")

    # ---- the handle -------------------------------------------------

    _owner = None               # the Set whose connection this is, if any

    def _handle(self):
        if self.closed:
            raise ValueError("shadowcopy.Volume: the connection is closed")
        return self._h

    @property
    def closed(self):
        return self._h is None or (self._owner is not None and
                                   self._owner.closed)

    def close(self):
        """Close (again: nothing).  Raises the error of the checkpoint an
        offline read-write open writes.  A Set's connection (Set.volume)
        is only let go of: the set keeps it until it is closed."""
        h, self._h = self._h, None
        if h is not None and self._owner is None:
            _lib.check(fn.close(h))
        self._owner = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_h", None) is not None and self._owner is None:
            try:
                self.close()
            except Exception:   # nobody to tell, at collection
                pass

    def server(self):
        """Who answers: a Server."""
        c = _lib.server()
        _lib.check(fn.server(self._handle(), ctypes.byref(c)))
        return server_from(c)

    def fileno(self):
        """The control socket's descriptor, to poll for the server going
        away (an offline volume has none: Error)."""
        return _lib.check(fn.fd(self._handle()))

    # ---- snapshots --------------------------------------------------

    def list(self):
        """Every snapshot, checkpoint and clone, oldest first (clones last),
        as Snapshot."""
        out = ctypes.POINTER(_lib.snapshot)()
        n = ctypes.c_size_t()
        _lib.check(fn.list(self._handle(), ctypes.byref(out), ctypes.byref(n)))
        try:
            return [snapshot_from(out[i]) for i in range(n.value)]
        finally:
            if out:
                _libc_free(out)

    def find(self, name):
        """Snapshot `name` (NotFoundError if there is none)."""
        c = _lib.snapshot()
        _lib.check(fn.find(self._handle(), arg(name), ctypes.byref(c)))
        return snapshot_from(c)

    def __contains__(self, name):
        try:
            self.find(name)
        except FileNotFoundError:
            return False
        return True

    # ---- the volume -------------------------------------------------

    def info(self):
        """The volume: a VolumeInfo."""
        c = _lib.volume()
        _lib.check(fn.info(self._handle(), ctypes.byref(c)))
        return volume_from(c)

    def dropped(self):
        """The snapshots the space policy dropped, most recent last, as
        Dropped."""
        out = ctypes.POINTER(_lib.dropped)()
        n = ctypes.c_size_t()
        _lib.check(fn.list_dropped(self._handle(), ctypes.byref(out),
                                   ctypes.byref(n)))
        try:
            return [dropped_from(out[i]) for i in range(n.value)]
        finally:
            if out:
                _libc_free(out)

    def stats(self):
        """The engine's counters (a running server only): a dict of name
        to value, int where the value is a decimal number."""
        out = {}
        g = Guard()

        def one(k, v, _):
            out[text(k)] = _number(text(v))
        cb = g.int_fn(_lib.field_fn, one)
        rc = fn.stats(self._handle(), cb, None)
        g.reraise()
        _lib.check(rc)
        return out

    # ---- delete -----------------------------------------------------

    def _deleting(self, call, *args):
        names = []
        g = Guard()
        cb = g.void_fn(_lib.deleted_fn, lambda n, _: names.append(text(n)))
        rc = call(self._handle(), *args, cb, None)
        g.reraise()
        if rc < 0:
            e = _lib.last_error(rc)
            e.deleted = names
            raise e
        return names

    def delete(self, name, uuid=None, *, keep_checkpoint=False,
               with_clones=False):
        """Delete snapshot `name` (only if its UUID is `uuid`, when given:
        StaleError otherwise).  Returns the names deleted, in order (its
        clones first with with_clones).  On failure the Error's .deleted
        says what was deleted before it."""
        flags = ((DELETE_KEEP_CHECKPOINT if keep_checkpoint else 0)
                 | (DELETE_WITH_CLONES if with_clones else 0))
        return self._deleting(fn.delete, arg(name), arg(uuid), flags)

    def delete_oldest(self):
        """Delete the oldest snapshot; the names deleted."""
        return self._deleting(fn.delete_oldest)

    def delete_all(self):
        """Delete every snapshot (clones first); the names deleted."""
        return self._deleting(fn.delete_all)

    def delete_set(self, set_id):
        """Delete every member of snapshot set `set_id` on this volume
        (NotFoundError: none); the names deleted."""
        return self._deleting(fn.delete_set, arg(set_id))

    # ---- create -----------------------------------------------------

    @staticmethod
    def _create_args(name, set, auto_release, delete_oldest):
        return _lib.create_args(arg(name), arg(set), bool(auto_release),
                                bool(delete_oldest))

    def create(self, name=None, *, set=None, auto_release=False,
               delete_oldest=False):
        """Take a snapshot in one request (BusyError while another
        creation is in progress); the new Snapshot."""
        a = self._create_args(name, set, auto_release, delete_oldest)
        c = _lib.snapshot()
        _lib.check(fn.create(self._handle(), ctypes.byref(a),
                             ctypes.byref(c)))
        return snapshot_from(c)

    def begin(self, timeout_ms=0):
        """Take the volume's creation slot (writes still flowing)."""
        _lib.check(fn.begin(self._handle(), int(timeout_ms)))

    def hold(self, timeout_ms=0):
        """Drain the writes in flight and hold new ones."""
        _lib.check(fn.hold(self._handle(), int(timeout_ms)))

    def commit(self, name=None, *, set=None, auto_release=False,
               delete_oldest=False, release=False):
        """Record the snapshot under the hold (and release at once with
        release=True); the new Snapshot."""
        a = self._create_args(name, set, auto_release, delete_oldest)
        c = _lib.snapshot()
        _lib.check(fn.commit(self._handle(), ctypes.byref(a), bool(release),
                             ctypes.byref(c)))
        return snapshot_from(c)

    def release(self):
        """Let the writes go, keep the snapshot; how long they were held
        (ns)."""
        held = ctypes.c_uint64()
        _lib.check(fn.release(self._handle(), ctypes.byref(held)))
        return held.value

    def abort(self):
        """Delete what commit made, release, end the creation."""
        _lib.check(fn.abort(self._handle()))

    def checkpoint(self, name, *, delete_oldest=False):
        """A checkpoint `name` (a point diff can start from); its Snapshot."""
        c = _lib.snapshot()
        _lib.check(fn.checkpoint(self._handle(), arg(name),
                                 bool(delete_oldest), ctypes.byref(c)))
        return snapshot_from(c)

    def clone(self, snapshot, name):
        """A writable clone `name` of `snapshot`; its Snapshot."""
        c = _lib.snapshot()
        _lib.check(fn.clone(self._handle(), arg(snapshot), arg(name),
                            ctypes.byref(c)))
        return snapshot_from(c)

    # ---- changed blocks ---------------------------------------------

    def diff(self, from_, to=None, extent=None):
        """Which byte ranges may differ between `from_` and `to` (None:
        the live volume): a Diff, iterable as (offset, length) pairs, with
        its .header.  With `extent`, a callable, each extent goes to
        extent(offset, length) instead of being kept (the Diff then
        iterates as empty)."""
        extents = array("Q")
        g = Guard()
        if extent is None:
            def one(off, length, _):
                extents.append(off)
                extents.append(length)
        else:
            def one(off, length, _):
                extent(off, length)
        cb = g.int_fn(_lib.extent_fn, one)
        head = _lib.diff()
        rc = fn.diff(self._handle(), arg(from_), arg(to), cb, None,
                     ctypes.byref(head))
        g.reraise()
        _lib.check(rc)
        return Diff(diff_header_from(head), extents)

    # ---- revert -----------------------------------------------------

    def revert(self, name, *, save=None, nosave=False, rate=None,
               force=False, dry_run=False, paused=False):
        """Revert the live volume to snapshot `name`; the Revert.  rate:
        bytes/s of the background copy (None: the server's default,
        RATE_UNBOUNDED: no limit)."""
        a = _lib.revert_args(arg(save), bool(nosave), _rate(rate),
                             bool(force), bool(dry_run), bool(paused))
        c = _lib.revert()
        _lib.check(fn.revert(self._handle(), arg(name), ctypes.byref(a),
                             ctypes.byref(c)))
        return revert_from(c)

    def revert_status(self):
        c = _lib.revert()
        _lib.check(fn.revert_status(self._handle(), ctypes.byref(c)))
        return revert_from(c)

    def revert_resume(self):
        c = _lib.revert()
        _lib.check(fn.revert_resume(self._handle(), ctypes.byref(c)))
        return revert_from(c)

    def revert_rate(self, rate):
        """The running revert's rate from now on (0 or RATE_UNBOUNDED: no
        limit)."""
        c = _lib.revert()
        _lib.check(fn.revert_rate(self._handle(), int(rate), ctypes.byref(c)))
        return revert_from(c)

    # ---- space and scrub --------------------------------------------

    def resize(self, max_bytes, *, force=False):
        """Limit the diff area to max_bytes (None: unbounded); how many
        snapshots were dropped (force=True only; NoSpaceError without)."""
        m = _lib.UINT64_MAX if max_bytes is None else int(max_bytes)
        dropped = ctypes.c_uint64()
        _lib.check(fn.resize(self._handle(), m, bool(force),
                             ctypes.byref(dropped)))
        return dropped.value

    def scrub(self, rate=None):
        """Start verifying every copy in the background (rate: bytes/s,
        None: the server's default, RATE_UNBOUNDED: no limit); a Scrub."""
        c = _lib.scrub()
        _lib.check(fn.scrub(self._handle(), _rate(rate), ctypes.byref(c)))
        return scrub_from(c)

    def scrub_status(self):
        c = _lib.scrub()
        _lib.check(fn.scrub_status(self._handle(), ctypes.byref(c)))
        return scrub_from(c)

    # ---- any request ------------------------------------------------

    def request(self, verb, *args):
        """Send one request line; its data lines as a list of (kind, dict
        of key to value)."""
        lines = []
        g = Guard()

        def one(kind, fields, n, _):
            lines.append((text(kind), {text(fields[i].key):
                                       text(fields[i].value)
                                       for i in range(n)}))
        cb = g.int_fn(_lib.line_fn, one)
        argv = (ctypes.c_char_p * max(len(args), 1))(
            *[arg(str(a) if isinstance(a, int) else a) for a in args])
        rc = fn.request(self._handle(), arg(verb), argv, len(args), cb, None)
        g.reraise()
        _lib.check(rc)
        return lines


_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]
_libc.free.restype = None


def _libc_free(p):
    _libc.free(ctypes.cast(p, ctypes.c_void_p))


def connect(socket=None, *, diff=None, offline=None, volume=None):
    """A Volume: connect("/path/ctl.sock"), connect(diff=PATH,
    offline="read"), connect(volume=NAME)."""
    return Volume(socket, diff=diff, offline=offline, volume=volume)


def open_volume(name):
    """The Volume of configured volume `name`."""
    return Volume(volume=name)
