"""ctypes declarations of lib/shadowcopy.h, and the library's loading.

Every structure and prototype here mirrors the header field for field;
tests/python/test_layout.py compiles the header and checks each offset
and size, and that every public function of the header is declared.

The library is $SHADOWCOPY_LIBRARY when set (a file, or a directory
holding libshadowcopy.so.0), else libshadowcopy.so.0 as the dynamic
linker finds it, else the one installed beside this package's
configured libdir.
"""
import ctypes
import ctypes.util
import errno
import os

from .errors import error_for

SONAME = "libshadowcopy.so.0"

NAME_MAX = 128
UUID_LEN = 37
UINT64_MAX = (1 << 64) - 1
RATE_UNBOUNDED = UINT64_MAX

c_u64 = ctypes.c_uint64
c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_bool = ctypes.c_bool
c_size_t = ctypes.c_size_t


def _char(n):
    return ctypes.c_char * n


class server(ctypes.Structure):
    _fields_ = [
        ("protocol_major", ctypes.c_uint),
        ("protocol_minor", ctypes.c_uint),
        ("version", _char(64)),
        ("offline", c_bool),
        ("where", _char(4096)),
    ]


class snapshot(ctypes.Structure):
    _fields_ = [
        ("id", c_u64),
        ("name", _char(NAME_MAX + 1)),
        ("type", _char(16)),
        ("base", _char(NAME_MAX + 1)),
        ("uuid", _char(UUID_LEN)),
        ("set", _char(UUID_LEN)),
        ("created", _char(32)),
        ("epoch", c_u64),
        ("valid", c_bool),
        ("reason", _char(256)),
        ("auto_release", c_bool),
        ("used_bytes", c_u64),
        ("discarded_bytes", c_u64),
        ("meta_bytes", c_u64),
    ]


class revert(ctypes.Structure):
    _fields_ = [
        ("state", _char(16)),
        ("target", _char(NAME_MAX + 1)),
        ("saved", _char(NAME_MAX + 1)),
        ("bytes_done", c_u64),
        ("bytes_todo", c_u64),
        ("rate", c_u64),
        ("eta_s", c_u64),
        ("errors", c_u64),
        ("target_invalid", c_bool),
        ("error", _char(128)),
        ("ended", _char(256)),
        ("have_plan", c_bool),
        ("plan_bytes_to_write", c_u64),
        ("plan_space_needed", c_u64),
        ("plan_limit", c_u64),
        ("plan_fits", c_bool),
    ]


class volume(ctypes.Structure):
    _fields_ = [
        ("volume_size", c_u64), ("chunk_size", c_u64),
        ("diff_used_bytes", c_u64), ("diff_file_bytes", c_u64),
        ("diff_max", c_u64),
        ("snapshots", c_u64), ("checkpoints", c_u64), ("copies", c_u64),
        ("epoch", c_u64),
        ("max_snapshots", c_u64), ("max_checkpoints", c_u64),
        ("invalid", c_u64), ("damaged", c_u64), ("dropped", c_u64),
        ("full_failures", c_u64), ("discarded_bytes", c_u64),
        ("on_full", _char(24)),
        ("origin", _char(256)),
        ("last_drop", _char(NAME_MAX + 1)),
        ("last_drop_reason", _char(128)),
        ("have_holds", c_bool),
        ("holds", c_u64), ("hold_last_ns", c_u64), ("hold_p50_ns", c_u64),
        ("hold_p99_ns", c_u64), ("hold_max_ns", c_u64),
        ("failed", c_bool),
        ("health_message", _char(1024)),
        ("have_health", c_bool),
        ("failed_since", _char(32)), ("failed_errno", _char(24)),
        ("failed_write", _char(128)),
        ("invalidated", c_u64), ("retries", c_u64),
        ("retry_every_ms", c_u64), ("recoveries", c_u64),
        ("recorded", c_bool),
        ("last_retry", _char(32)), ("last_retry_errno", _char(24)),
        ("last_retry_write", _char(128)),
        ("recovered", _char(32)),
        ("have_revert", c_bool),
        ("revert", revert),
        ("listen", _char(1024)),
    ]


class field(ctypes.Structure):
    _fields_ = [("key", c_char_p), ("value", c_char_p)]


class create_args(ctypes.Structure):
    _fields_ = [
        ("name", c_char_p),
        ("set", c_char_p),
        ("auto_release", c_bool),
        ("delete_oldest", c_bool),
    ]


class diff_side(ctypes.Structure):
    _fields_ = [
        ("name", _char(NAME_MAX + 1)),
        ("type", _char(16)),
        ("id", c_u64),
        ("uuid", _char(UUID_LEN)),
        ("epoch", c_u64),
    ]


class diff(ctypes.Structure):
    _fields_ = [
        ("volume", _char(UUID_LEN)),
        ("chunk_size", c_u64),
        ("volume_size", c_u64),
        ("from", diff_side),
        ("to", diff_side),
        ("bytes", c_u64),
    ]


class revert_args(ctypes.Structure):
    _fields_ = [
        ("save", c_char_p),
        ("nosave", c_bool),
        ("rate", c_u64),
        ("force", c_bool),
        ("dry_run", c_bool),
        ("paused", c_bool),
    ]


class scrub(ctypes.Structure):
    _fields_ = [
        ("state", _char(16)),
        ("copies_checked", c_u64), ("copies_total", c_u64),
        ("bytes_checked", c_u64), ("bytes_total", c_u64),
        ("damaged", c_u64), ("freed", c_u64), ("read_errors", c_u64),
        ("rate", c_u64),
        ("started", _char(32)), ("finished", _char(32)),
        ("error", _char(256)),
    ]


class dropped(ctypes.Structure):
    _fields_ = [
        ("name", _char(NAME_MAX + 1)),
        ("created", _char(32)),
        ("dropped_at", _char(32)),
        ("reason", _char(128)),
    ]


class writer_result(ctypes.Structure):
    _fields_ = [
        ("writer", c_char_p),
        ("phase", c_char_p),
        ("result", c_char_p),
        ("output", c_char_p),
        ("when", c_u64),
        ("frozen_ns", c_u64),
    ]


class writer_kind(ctypes.Structure):
    _fields_ = [
        ("prefix", c_char_p),
        ("argument", c_char_p),
        ("needs", c_char_p),
        ("does", c_char_p),
    ]


# The structures by their C name, for the layout test.
STRUCTS = {
    "shadowcopy_server": server,
    "shadowcopy_snapshot": snapshot,
    "shadowcopy_revert": revert,
    "shadowcopy_volume": volume,
    "shadowcopy_field": field,
    "shadowcopy_create_args": create_args,
    "shadowcopy_diff_side": diff_side,
    "shadowcopy_diff": diff,
    "shadowcopy_revert_args": revert_args,
    "shadowcopy_scrub": scrub,
    "shadowcopy_dropped": dropped,
    "shadowcopy_writer_result": writer_result,
    "shadowcopy_writer_kind": writer_kind,
}

# Callback types.
field_fn = ctypes.CFUNCTYPE(c_int, c_char_p, c_char_p, c_void_p)
deleted_fn = ctypes.CFUNCTYPE(None, c_char_p, c_void_p)
extent_fn = ctypes.CFUNCTYPE(c_int, c_u64, c_u64, c_void_p)
line_fn = ctypes.CFUNCTYPE(c_int, c_char_p, ctypes.POINTER(field), c_size_t,
                           c_void_p)
notify_fn = ctypes.CFUNCTYPE(None, c_char_p, c_void_p)
writer_result_fn = ctypes.CFUNCTYPE(None, ctypes.POINTER(writer_result),
                                     c_void_p)

H = c_void_p                    # struct shadowcopy *
S = c_void_p                    # struct shadowcopy_set *
P = ctypes.POINTER
HP = P(c_void_p)

# name: (restype, argtypes).  Every function of lib/shadowcopy.h.
PROTOTYPES = {
    "shadowcopy_get_error": (c_char_p, []),
    "shadowcopy_get_errno": (c_int, []),
    "shadowcopy_version": (c_char_p, []),
    "shadowcopy_connect": (c_int, [c_char_p, HP]),
    "shadowcopy_open": (c_int, [c_char_p, c_int, HP]),
    "shadowcopy_open_volume": (c_int, [c_char_p, HP]),
    "shadowcopy_close": (c_int, [H]),
    "shadowcopy_server": (c_int, [H, P(server)]),
    "shadowcopy_fd": (c_int, [H]),
    "shadowcopy_list": (c_int, [H, P(P(snapshot)), P(c_size_t)]),
    "shadowcopy_find": (c_int, [H, c_char_p, P(snapshot)]),
    "shadowcopy_info": (c_int, [H, P(volume)]),
    "shadowcopy_stats": (c_int, [H, field_fn, c_void_p]),
    "shadowcopy_list_dropped": (c_int, [H, P(P(dropped)), P(c_size_t)]),
    "shadowcopy_delete": (c_int, [H, c_char_p, c_char_p, ctypes.c_uint,
                                  deleted_fn, c_void_p]),
    "shadowcopy_delete_oldest": (c_int, [H, deleted_fn, c_void_p]),
    "shadowcopy_delete_all": (c_int, [H, deleted_fn, c_void_p]),
    "shadowcopy_delete_set": (c_int, [H, c_char_p, deleted_fn, c_void_p]),
    "shadowcopy_create": (c_int, [H, P(create_args), P(snapshot)]),
    "shadowcopy_begin": (c_int, [H, c_u64]),
    "shadowcopy_hold": (c_int, [H, c_u64]),
    "shadowcopy_commit": (c_int, [H, P(create_args), c_bool, P(snapshot)]),
    "shadowcopy_release": (c_int, [H, P(c_u64)]),
    "shadowcopy_abort": (c_int, [H]),
    "shadowcopy_checkpoint": (c_int, [H, c_char_p, c_bool, P(snapshot)]),
    "shadowcopy_clone": (c_int, [H, c_char_p, c_char_p, P(snapshot)]),
    "shadowcopy_diff": (c_int, [H, c_char_p, c_char_p, extent_fn, c_void_p,
                                P(diff)]),
    "shadowcopy_revert": (c_int, [H, c_char_p, P(revert_args), P(revert)]),
    "shadowcopy_revert_status": (c_int, [H, P(revert)]),
    "shadowcopy_revert_resume": (c_int, [H, P(revert)]),
    "shadowcopy_revert_rate": (c_int, [H, c_u64, P(revert)]),
    "shadowcopy_resize": (c_int, [H, c_u64, c_bool, P(c_u64)]),
    "shadowcopy_scrub": (c_int, [H, c_u64, P(scrub)]),
    "shadowcopy_scrub_status": (c_int, [H, P(scrub)]),
    "shadowcopy_request": (c_int, [H, c_char_p, P(c_char_p), c_size_t,
                                   line_fn, c_void_p]),
    "shadowcopy_set_new": (c_int, [P(S)]),
    "shadowcopy_set_add_volume": (c_int, [S, c_char_p]),
    "shadowcopy_set_add_writer": (c_int, [S, c_char_p]),
    "shadowcopy_set_add_writers_dir": (c_int, [S, c_char_p, c_bool]),
    "shadowcopy_set_writer": (c_char_p, [S, c_size_t]),
    "shadowcopy_set_name": (c_int, [S, c_char_p]),
    "shadowcopy_set_name_prefix": (c_int, [S, c_char_p]),
    "shadowcopy_set_auto_release": (None, [S, c_bool]),
    "shadowcopy_set_delete_oldest": (None, [S, c_bool]),
    "shadowcopy_set_timeouts": (None, [S, c_u64, c_u64]),
    "shadowcopy_set_retries": (None, [S, ctypes.c_uint, c_u64, c_bool]),
    "shadowcopy_set_notify": (None, [S, notify_fn, c_void_p]),
    "shadowcopy_set_create": (c_int, [S]),
    "shadowcopy_set_id": (c_char_p, [S]),
    "shadowcopy_set_snapshot_name": (c_char_p, [S]),
    "shadowcopy_set_volumes": (c_size_t, [S]),
    "shadowcopy_set_snapshot": (c_int, [S, c_size_t, P(c_char_p),
                                        P(snapshot)]),
    "shadowcopy_set_handle": (H, [S, c_size_t]),
    "shadowcopy_set_backup_complete": (c_int, [S, c_bool]),
    "shadowcopy_set_writer_results": (None, [S, writer_result_fn, c_void_p]),
    "shadowcopy_set_delete": (c_int, [S]),
    "shadowcopy_set_free": (None, [S]),
    "shadowcopy_interrupt": (None, []),
    "shadowcopy_writers_list": (P(writer_kind), []),
}


def _candidates():
    env = os.environ.get("SHADOWCOPY_LIBRARY")
    if env:
        yield os.path.join(env, SONAME) if os.path.isdir(env) else env
        return                  # an explicit choice: nothing else
    yield SONAME
    found = ctypes.util.find_library("shadowcopy")
    if found:
        yield found
    try:
        from ._paths import LIBDIR  # written by make install
    except ImportError:
        pass
    else:
        yield os.path.join(LIBDIR, SONAME)


def _load():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(str(e))
    raise ImportError("shadowcopy: cannot load %s (%s); set SHADOWCOPY_LIBRARY"
                      " to its path" % (SONAME, "; ".join(tried)))


class _Functions:
    """The library's functions, declared on first use: a function the
    loaded library lacks (an older one) raises Error(ENOSYS) when called,
    not at import."""

    def __init__(self, cdll):
        self.cdll = cdll

    def __getattr__(self, name):
        full = "shadowcopy_" + name
        restype, argtypes = PROTOTYPES[full]
        try:
            f = getattr(self.cdll, full)
        except AttributeError:
            def missing(*args):
                raise error_for(errno.ENOSYS, "%s: not in this libshadowcopy"
                                " (%s)" % (full, self.cdll._name))
            f = missing
        else:
            f.restype = restype
            f.argtypes = argtypes
        setattr(self, name, f)
        return f


cdll = _load()
fn = _Functions(cdll)


def has(name):
    """Whether the loaded library has function `name` (shadowcopy_...)."""
    return hasattr(cdll, name)


def text(b):
    """A C string (bytes or None) as str."""
    if b is None:
        return ""
    return b.decode("utf-8", errors="replace")


def arg(s):
    """A str or path argument as a C string (None stays NULL).  A NUL
    inside would cut the string short in C (delete("a\\0b") deleting
    "a"): ValueError."""
    if s is None:
        return None
    if isinstance(s, bytes):
        b = s
    elif isinstance(s, str):
        b = s.encode("utf-8")
    else:
        b = os.fsencode(s)
    if b"\0" in b:
        raise ValueError("shadowcopy: an argument holds a NUL byte: %r" % (s,))
    return b


def last_error(rc):
    """The Error for return value rc (a negative errno)."""
    return error_for(-rc, text(fn.get_error()))


def check(rc):
    if rc < 0:
        raise last_error(rc)
    return rc
