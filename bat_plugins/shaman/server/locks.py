"""Advisory locks that tell a live upload's temporary file from a dead one.

An uploading server holds an exclusive ``flock`` on its temporary file for as
long as it writes it.  Another process (or a restarted server) that can take
the lock knows the writer is gone, so the file is stale and may be removed.
``flock`` locks belong to an open file, so closing some other descriptor of
the same file never drops them; on NFS Linux emulates them with POSIX locks,
which are per process, which is why a server never probes its own files (the
store keeps a set of them).  Where no locking exists (Windows) the caller falls
back to the file's age; Windows also refuses to delete a file that is open.
"""

from __future__ import annotations

import contextlib
import enum
import errno

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]


class Probe(enum.Enum):
    ACQUIRED = "acquired"  # nobody else holds it: the writer is gone
    HELD = "held"  # a live writer holds it
    UNSUPPORTED = "unsupported"  # this filesystem or OS has no such locks


def try_lock(fd: int) -> Probe:
    """Take an exclusive lock on ``fd`` without waiting."""
    if fcntl is None:
        return Probe.UNSUPPORTED
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return Probe.HELD
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return Probe.HELD
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return Probe.UNSUPPORTED
        raise
    return Probe.ACQUIRED


def unlock(fd: int) -> None:
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
