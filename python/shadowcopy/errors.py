"""shadowcopy's errors: the library's negative errno and its message.

Every failing call raises Error (an OSError): e.errno is the errno the
library returned, e.strerror (and str(e)) the one line it left in
shadowcopy_get_error(), naming the server or writer at fault.  The common
errnos get subclasses that are also the matching built-in OSError
subclass, so `except FileNotFoundError` works as well as
`except shadowcopy.NotFoundError`.
"""
import errno as _errno
import os


class Error(OSError):
    """A libshadowcopy call failed."""

    def __init__(self, err, message=None):
        if not message:
            message = os.strerror(err)
        super().__init__(err, message)
        # What a delete had done before it failed (names), else [].
        self.deleted = []

    @property
    def message(self):
        return self.strerror

    def __str__(self):
        return self.strerror

    def __reduce__(self):
        return (type(self), (self.errno, self.strerror))


class NotFoundError(Error, FileNotFoundError):
    """ENOENT: no such snapshot, set or volume."""


class ExistsError(Error, FileExistsError):
    """EEXIST: the name is taken."""


class BusyError(Error):
    """EBUSY: another creation is in progress, or the snapshot has clones."""


class StaleError(Error):
    """ESTALE: the snapshot was deleted and made again under its name."""


class NotConnectedError(Error, ConnectionError):
    """ENOTCONN: no server answers (or the verb needs one, offline)."""


class ProtocolError(Error):
    """EPROTO: the server's reply made no sense, or its protocol is another."""


class TimedOutError(Error, TimeoutError):
    """ETIMEDOUT: a deadline passed (the server's hold, a writer)."""


class NoSpaceError(Error):
    """ENOSPC: the diff area's limit."""


_BY_ERRNO = {
    _errno.ENOENT: NotFoundError,
    _errno.EEXIST: ExistsError,
    _errno.EBUSY: BusyError,
    _errno.ESTALE: StaleError,
    _errno.ENOTCONN: NotConnectedError,
    _errno.EPROTO: ProtocolError,
    _errno.ETIMEDOUT: TimedOutError,
    _errno.ENOSPC: NoSpaceError,
}


def error_for(err, message=None):
    """The Error (of the right subclass) for positive errno err."""
    return _BY_ERRNO.get(err, Error)(err, message)
