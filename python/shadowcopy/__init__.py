"""shadowcopy: Python bindings of libshadowcopy, the requester API.

    import shadowcopy

    with shadowcopy.connect("/var/lib/shadowcopy/vol.diff.sock") as v:
        snap = v.create("before-upgrade")
        for s in v.list():
            print(s.name, s.created, s.used_bytes)
        d = v.diff("before-upgrade")           # to the live volume
        for offset, length in d:
            ...
        v.delete("before-upgrade")

    with shadowcopy.Set(volumes=[a, b], writers=["fsfreeze:/srv"]) as s:
        s.create()
        for where, snap in s.snapshots:
            ...                                # back snap.name up
        s.backup_complete(True)
        s.delete()

Every failing call raises shadowcopy.Error (an OSError: .errno, and the
library's one-line message as str(e)); see shadowcopy.errors.  The
library is libshadowcopy.so.0, or $SHADOWCOPY_LIBRARY.  The calls mirror
lib/shadowcopy.h; its man pages (libshadowcopy(3)) say what each does.
"""
from ._lib import RATE_UNBOUNDED as _RATE_UNBOUNDED, fn as _fn, text as _text
from .errors import (BusyError, Error, ExistsError, NoSpaceError,
                     NotConnectedError, NotFoundError, ProtocolError,
                     StaleError, TimedOutError)
from .snapshot_set import VOLUMES_MAX, WRITERS_DIR, Set, interrupt, writers
from .types import (DiffHeader, DiffSide, Dropped, Revert, RevertPlan, Scrub,
                    Server, Snapshot, VolumeInfo, WriterKind, WriterResult)
from .volume import Diff, Volume, connect, open_volume

NAME_MAX = 128
# A rate of no limit (revert, revert_rate, scrub); None is the server's
# default.
RATE_UNBOUNDED = _RATE_UNBOUNDED
PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 1


def version():
    """The library's version, e.g. "0.16.0"."""
    return _text(_fn.version())


# Not in __all__: a star import must not hide the builtin open.
def open(diff, offline=None):  # noqa: A001 (shadowcopy.open, as in C)
    """The Volume of diff area `diff`: its server, or with offline="read"
    or "write" the diff area itself when no server runs."""
    return Volume(diff=diff, offline=offline)


__all__ = [
    "BusyError", "Diff", "DiffHeader", "DiffSide", "Dropped", "Error",
    "ExistsError", "NAME_MAX", "NoSpaceError", "NotConnectedError",
    "NotFoundError", "PROTOCOL_MAJOR", "PROTOCOL_MINOR", "ProtocolError",
    "RATE_UNBOUNDED", "Revert", "RevertPlan", "Scrub", "Server", "Set",
    "Snapshot", "StaleError", "TimedOutError", "VOLUMES_MAX", "Volume",
    "VolumeInfo", "WRITERS_DIR", "WriterKind", "WriterResult", "connect",
    "interrupt", "open_volume", "version", "writers",
]
