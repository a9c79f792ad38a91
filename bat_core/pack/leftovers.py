"""What a killed pack leaves behind, and how a later run recognises and removes it.

A pack stopped by SIGKILL (or a power cut) cannot clean up: its temporary
directory (``bat-pack-<pid>-<random>`` in the temp dir) and its half-written
files (``….bat-<pid>-<random>.partial``) stay.  Every such name carries the
process id of its owner, and the owner holds an exclusive ``flock`` on it
while it runs.  A later run removes a leftover only when both say the owner
is gone: the lock can be taken, and no process has that id.  Another user's
files are never touched, and neither is anything not named this way.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: the process id alone decides
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

TEMP_PREFIX = "bat-pack-"
_TEMP_DIR = re.compile(r"^bat-pack-(\d+)-[a-z0-9_]+$")
_OWNER = re.compile(r"\.bat-(\d+)-[0-9a-z_]+\.partial$")

#: Errors of ``flock`` that mean "not supported here" (some network file systems).
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.ENOSYS}


def lock(fd: int) -> bool | None:
    """Take an exclusive lock on ``fd`` without waiting.

    True: taken (held until the descriptor is closed or the process ends);
    False: someone holds it; None: this file system has no locks.
    """
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in _NO_LOCKS:
            return None
        raise
    return True


def process_gone(pid: int) -> bool:
    """No process with id ``pid`` exists (on this machine, in this pid namespace)."""
    if pid == os.getpid() or pid <= 0:
        return pid <= 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: it exists, someone else's
        return False
    return False


def owner_of(name: str) -> int | None:
    """The process id in a partial file's name (``.x.png.bat-123-abc.partial``), if it is bat's."""
    match = _OWNER.search(name)
    return int(match.group(1)) if match else None


def partial_name(final: str, token: str) -> str:
    """The temporary name of a file being written: hidden, owner-tagged, short enough for any name."""
    tag = f".bat-{os.getpid()}-{token}.partial"
    name = f".{final}{tag}"
    if len(os.fsencode(name)) > 250:  # NAME_MAX is 255 bytes: keep room for long file names
        name = tag
    return name


def is_abandoned(fd: int, pid: int) -> bool:
    """The owner of the leftover open at ``fd`` (named with ``pid``) is gone.

    Takes the leftover's lock when it can, so the caller may remove it.
    """
    locked = lock(fd)
    return locked is not False and process_gone(pid)


class WorkDir:
    """The pack's own temporary directory: owner-tagged, locked while the pack runs."""

    def __init__(self, parent: str | None = None) -> None:
        sweep_work_dirs(parent)
        self.path = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=parent))
        self._fd: int | None = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        lock(self._fd)

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sweep_work_dirs(parent: str | None = None) -> list[Path]:
    """Remove the temporary directories of packs whose process is gone; returns them."""
    parent = parent or tempfile.gettempdir()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_DIR.match(entry.name)
        if match is None:
            continue
        with contextlib.suppress(OSError):
            if _remove_if_abandoned(Path(entry.path), int(match.group(1))):
                removed.append(Path(entry.path))
    return removed


def _remove_if_abandoned(path: Path, pid: int) -> bool:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
            return False
        if not is_abandoned(fd, pid):
            return False
        log.info("removing %s, left by bat process %d, which is gone", path, pid)
        shutil.rmtree(path, ignore_errors=True)
        return True
    finally:
        os.close(fd)


def remove_abandoned_partials(directory: Path, prefix: str = "") -> list[Path]:
    """Remove the owner-tagged partial files in ``directory`` (names starting with ``prefix``)."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        pid = owner_of(entry.name) if entry.name.startswith(prefix) else None
        if pid is None:
            continue
        with contextlib.suppress(OSError):
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            try:
                st = os.fstat(fd)
                mine = not hasattr(os, "geteuid") or st.st_uid == os.geteuid()
                if stat.S_ISREG(st.st_mode) and mine and is_abandoned(fd, pid):
                    log.info("removing %s, left by bat process %d, which is gone", entry.path, pid)
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            finally:
                os.close(fd)
    return removed
