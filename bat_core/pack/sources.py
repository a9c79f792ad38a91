"""Reading a dependency safely: regular files only, never a FIFO, a device or a kernel file.

A path from a blend file may name anything.  Opening a FIFO blocks until
someone writes to it; reading ``/proc/self/environ`` would put bat's own
environment into the pack.  So a source is opened without blocking
(``O_NONBLOCK``), checked with ``fstat`` on the open descriptor — what is
read is what was checked, whatever the path pointed at when it was traced —
and refused unless it is a regular file outside ``/proc``, ``/sys`` and
``/dev``.  While it is copied, its size and modification time are watched:
a file that changes half-way would give a copy that is neither the old nor
the new file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
from pathlib import Path

from .errors import PackError

#: Kernel and device file systems: nothing there is a dependency.
SYSTEM_ROOTS = ("/proc", "/sys", "/dev")

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))


def kind_of(mode: int) -> str:
    """What a file that is not a regular file is, for messages."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


@functools.cache
def _system_devices() -> frozenset[int]:
    devices = set()
    for root in SYSTEM_ROOTS[:2]:  # /dev is mostly devtmpfs, shared with nothing else either
        with contextlib.suppress(OSError):
            devices.add(os.stat(root).st_dev)
    return frozenset(devices)


def system_root(real: str) -> str | None:
    """The kernel or device file system (``/proc``...) the real path ``real`` lies in, if any."""
    if os.name != "posix":
        return None
    return next((r for r in SYSTEM_ROOTS if real == r or real.startswith(r + "/")), None)


def refusal(path: Path, st: os.stat_result, real: str | None = None) -> str | None:
    """Why the file ``path`` (with ``stat`` result ``st``) is not packed, or None when it may be."""
    if not stat.S_ISREG(st.st_mode):
        return f"{kind_of(st.st_mode)}, not a regular file"
    root = system_root(real) if real is not None else None
    if root is not None or (os.name == "posix" and st.st_dev in _system_devices()):
        return f"a system file (in {root or 'a kernel file system'})"
    return None


def _fd_path(fd: int) -> str | None:
    """The real path of an open file (Linux), to check what was opened rather than what was named."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def open_source(path: Path) -> tuple[int, os.stat_result]:
    """Open ``path`` for reading; the descriptor and its ``fstat``.

    Raises :class:`PackError` (one line, naming the file) for anything but a
    regular file, and ``OSError`` when it cannot be opened.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        why = refusal(path, st, _fd_path(fd))
        if why is not None:
            raise PackError(f"{path}: {why}; refusing to pack it")
        if _OPEN_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def check_unchanged(path: Path, fd: int, before: os.stat_result) -> None:
    """Raise :class:`PackError` when the open file changed size or time since ``before``."""
    now = os.fstat(fd)
    if (now.st_size, now.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise PackError(f"{path} changed while it was being packed; pack again when it is no longer written to")
