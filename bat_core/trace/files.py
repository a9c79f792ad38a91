"""What a path from a blend file stands for on disk: a regular file bat may read, or why not.

Paths in blend files come from anywhere (downloaded assets, other studios,
crafted files), so every file-system call on them goes through here and no
``OSError`` escapes: a name too long, a symbolic link loop, a permission
error or a file name under a non-directory each become a reason, reported
with the path, never a traceback.

Only regular files are dependencies.  FIFOs (opening one blocks), sockets,
devices, and anything on a kernel file system (``/proc/self/environ`` is a
"regular" file holding this process's environment) are refused: a pack must
never read them.  Kernel file systems are recognised by the device number of
their mounts (``/proc/self/mountinfo``), so a symbolic link into them is
caught too, and by path for ``/proc``, ``/sys`` and ``/dev`` themselves.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ..bpathlib import BlendPath

#: Reasons a path is not a dependency.  The first word says what kind of problem it is.
MISSING = "missing"
UNREADABLE = "unreadable"
NOT_REGULAR = "not a regular file"
SPECIAL_FS = "on a kernel file system"
FOREIGN = "foreign path"
NOT_BLEND = "not a blend file"

#: File systems whose files are kernel interfaces, not data.
SPECIAL_FS_TYPES = frozenset({
    "proc", "sysfs", "devtmpfs", "devpts", "debugfs", "tracefs", "securityfs", "cgroup", "cgroup2",
    "configfs", "pstore", "bpf", "efivarfs", "fusectl", "mqueue", "binfmt_misc", "autofs", "rpc_pipefs",
    "nsfs", "selinuxfs", "smackfs", "hugetlbfs", "devfs", "fdescfs", "procfs", "linprocfs", "linsysfs",
})
#: Directories whose every file is a kernel interface, whatever file system they are on.
SPECIAL_DIRS = ("/proc", "/sys", "/dev")

_NOT_FOUND = {errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG}
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _unescape(field: str) -> str:
    """Mount points in mountinfo escape space, tab, newline and backslash as octal."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _in_special_dir(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in SPECIAL_DIRS)


def _mountinfo() -> Iterator[tuple[int, str, str]]:
    """(device, mount point, file-system type) of every mount this process sees (Linux)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        fields = line.split(" ")
        try:
            sep = fields.index("-")
            major, minor = fields[2].split(":")
            yield os.makedev(int(major), int(minor)), _unescape(fields[4]), fields[sep + 1]
        except (ValueError, IndexError):
            continue


def special_devices() -> frozenset[int]:
    """Device numbers of kernel file systems and of mounts at or below /proc, /sys and /dev."""
    devs: set[int] = set()
    for dev, mount_point, fstype in _mountinfo():
        if fstype in SPECIAL_FS_TYPES or _in_special_dir(mount_point):
            devs.add(dev)
    try:
        root_dev = os.stat("/").st_dev
    except OSError:
        root_dev = -1
    for d in SPECIAL_DIRS:  # without mountinfo (macOS, BSD): the mounts at the usual places
        try:
            dev = os.stat(d).st_dev
        except OSError:
            continue
        if dev != root_dev:
            devs.add(dev)
    return frozenset(devs)


def foreign_problem(path: BlendPath) -> str:
    """Why a path of the other operating system's flavour names nothing here."""
    if path.is_drive_relative:
        what = "relative to the working directory of a Windows drive"
    elif path.is_windows:
        what = "Windows"
    else:
        what = "POSIX"
    return f"{FOREIGN}: {what}, never looked up on this system"


def describe_error(exc: OSError) -> str:
    """The reason for a failed file-system call on a path from a blend file."""
    if exc.errno in _NOT_FOUND:
        if exc.errno == errno.ENOENT:
            return MISSING
        return f"{MISSING} ({(exc.strerror or str(exc)).lower()})"
    return f"{UNREADABLE} ({(exc.strerror or str(exc)).lower()})"


class FileProbe:
    """Classifies paths; one per trace (the mount table is read once)."""

    def __init__(self) -> None:
        self._special: frozenset[int] | None = None
        #: The ``stat`` of each path :meth:`file` found a readable regular file: a pack's
        #: plan takes it from here instead of asking the file system again.
        self.readable: dict[Path, os.stat_result] = {}

    @property
    def special(self) -> frozenset[int]:
        if self._special is None:
            self._special = special_devices()
        return self._special

    def _stat(self, path: Path) -> os.stat_result | str:
        try:
            return os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ENOENT and os.path.islink(path):
                return f"{MISSING} (dangling symbolic link)"
            return describe_error(exc)
        except ValueError:  # an embedded NUL byte
            return f"{MISSING} (invalid file name)"

    def _kind_problem(self, path: Path, st: os.stat_result, want_dir: bool) -> str:
        if st.st_dev in self.special or _in_special_dir(os.path.normpath(path)):
            return SPECIAL_FS
        if want_dir:
            return "" if stat.S_ISDIR(st.st_mode) else f"{MISSING} (not a directory)"
        if stat.S_ISREG(st.st_mode):
            return ""
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
        return f"{NOT_REGULAR} ({kind})"

    def file(self, path: Path) -> str:
        """'' when ``path`` is a readable regular file; otherwise why it is not a dependency."""
        st = self._stat(path)
        if isinstance(st, str):
            return st
        problem = self._kind_problem(path, st, want_dir=False)
        if not problem:
            if not os.access(path, os.R_OK):
                return f"{UNREADABLE} (permission denied)"
            self.readable[path] = st
        return problem

    def directory(self, path: Path) -> str:
        """'' when ``path`` is a directory bat may list; otherwise why not."""
        st = self._stat(path)
        if isinstance(st, str):
            return st
        problem = self._kind_problem(path, st, want_dir=True)
        if not problem and not os.access(path, os.R_OK | os.X_OK):
            return f"{UNREADABLE} (permission denied)"
        return problem

    def listdir(self, directory: Path) -> list[str] | str:
        """Sorted names in ``directory``, or why it cannot be listed."""
        problem = self.directory(directory)
        if problem:
            return problem
        try:
            return sorted(os.listdir(directory))
        except OSError as exc:
            return describe_error(exc)
