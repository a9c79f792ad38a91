"""Copy files into a local directory: temporary name then rename, identical files skipped.

A file is written as ``.<name>.<random>.partial`` beside its final place and
renamed with ``os.replace`` only when complete, so an aborted or failed pack
never leaves a half-written file under a real name.  Before writing, every
destination directory is checked to lie inside the target (a symlink in an
existing target could otherwise lead writes elsewhere).

Copies are made by the kernel (``copy_file_range``, in chunks so an abort is
seen between them), falling back to reads and writes where it is not
available.  A rewritten blend file, a temporary file of the packer's, is moved
into place when it is on the target's file system.  A file already in the
target is skipped when it has the source's size and modification time (the
packer copies modification times along, as ``rsync`` does), or else the same
size and the same bytes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from pathlib import Path

from bat_core.pack import CHUNK_SIZE, PackError, Target, Transfer, TransferIO, TransferItem


def resolve_directory(target: str) -> Target:
    """Validate the target string as a directory; creates nothing (that is left to ``start``)."""
    if not target or "\0" in target:
        raise PackError(f"invalid target directory {target!r}")
    path = Path(os.path.abspath(os.path.expanduser(target)))
    if path.exists() and not path.is_dir():
        raise PackError(f"target {path} exists and is not a directory "
                        "(a ZIP target needs a name ending in .zip, or --target-scheme zip)")
    return Target(root=path, transfer=DirectoryTransfer(path), local_dir=path, description=f"directory {path}")


#: Kernel copies go in chunks this big, with an abort check between them.
KERNEL_CHUNK = 16 * CHUNK_SIZE

#: ``copy_file_range`` errors that mean "not here" (other file systems, old kernels):
#: the rest of the file is copied with reads and writes.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF, errno.EPERM}


def write_all(fd: int, data: memoryview) -> None:
    """Write every byte of ``data`` (``os.write`` may write less than asked)."""
    while data:
        n = os.write(fd, data)
        data = data[n:]


def copy_contents(src: int, dst: int, io: TransferIO) -> None:
    """Copy from file descriptor ``src`` to ``dst`` (both at their current offsets)."""
    copy_range = getattr(os, "copy_file_range", None)
    while copy_range is not None:
        io.check_abort()
        try:
            n = copy_range(src, dst, KERNEL_CHUNK)
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
            break
        if not n:
            return
        io.progress(n)
    while chunk := os.read(src, CHUNK_SIZE):
        io.check_abort()
        write_all(dst, memoryview(chunk))
        io.progress(len(chunk))


def same_content(a: Path, b: Path, io: TransferIO) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            io.check_abort()
            ca = fa.read(CHUNK_SIZE)
            if ca != fb.read(CHUNK_SIZE):
                return False
            if not ca:
                return True


class DirectoryTransfer(Transfer):
    workers = 4

    def __init__(self, root: Path) -> None:
        self.root = root
        self._real_root = ""
        self._checked: set[str] = set()  # parent directories made and found inside the target

    def start(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise PackError(f"target {self.root} exists and is not a directory") from None
        except OSError as exc:
            raise PackError(f"cannot create target directory {self.root}: {exc.strerror or exc}") from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PackError(f"target directory {self.root} is not writable")
        self._real_root = os.path.realpath(self.root)

    def _path(self, item: TransferItem) -> Path:
        path = self.root / item.dest
        parent = str(path.parent)
        if parent not in self._checked:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise PackError(f"cannot create {path.parent}: a file is in the way") from None
            real = os.path.realpath(path.parent)
            if real != self._real_root and not real.startswith(self._real_root.rstrip(os.sep) + os.sep):
                raise PackError(f"refusing to write {path}: {path.parent} leads outside the target ({real})")
            self._checked.add(parent)
        if path.is_symlink() or path.is_dir():
            raise PackError(f"refusing to write {path}: a directory or symlink is in the way")
        return path

    def is_present(self, item: TransferItem, io: TransferIO) -> bool:
        path = self.root / item.dest
        try:
            st = path.lstat()
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != item.size:
            return False
        if not item.temporary:
            with contextlib.suppress(OSError):
                if item.read_from.stat().st_mtime_ns == st.st_mtime_ns:
                    return True  # same size and time: a copy this packer made (quick check)
        return same_content(item.read_from, path, io)

    def send(self, item: TransferItem, io: TransferIO) -> None:
        path = self._path(item)
        if item.temporary and self._move(item, path, io):
            return
        token = secrets.token_hex(4)
        tmp = path.with_name(f".{path.name}.{token}.partial")
        if len(os.fsencode(tmp.name)) > 240:  # keep under NAME_MAX for long file names
            tmp = path.with_name(f".bat-{token}.partial")
        try:
            with open(item.read_from, "rb") as src:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                try:
                    copy_contents(src.fileno(), fd, io)
                finally:
                    os.close(fd)
            shutil.copystat(item.read_from, tmp)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _move(self, item: TransferItem, path: Path, io: TransferIO) -> bool:
        """Rename the packer's temporary file into place; False when it is on another file system."""
        io.check_abort()
        try:
            os.replace(item.read_from, path)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                return False
            raise
        io.progress(item.size)
        return True
