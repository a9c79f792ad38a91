"""Copy files into a local directory: temporary name then rename, identical files skipped.

A file is written as ``.<name>.<random>.partial`` beside its final place and
renamed with ``os.replace`` only when complete, so an aborted or failed pack
never leaves a half-written file under a real name.  Before writing, every
destination directory is checked to lie inside the target (a symlink in an
existing target could otherwise lead writes elsewhere).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
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


def write_all(fd: int, data: memoryview) -> None:
    """Write every byte of ``data`` (``os.write`` may write less than asked)."""
    while data:
        n = os.write(fd, data)
        data = data[n:]


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
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise PackError(f"cannot create {path.parent}: a file is in the way") from None
        real = os.path.realpath(path.parent)
        if real != self._real_root and not real.startswith(self._real_root.rstrip(os.sep) + os.sep):
            raise PackError(f"refusing to write {path}: {path.parent} leads outside the target ({real})")
        if path.is_symlink() or path.is_dir():
            raise PackError(f"refusing to write {path}: a directory or symlink is in the way")
        return path

    def is_present(self, item: TransferItem, io: TransferIO) -> bool:
        path = self.root / item.dest
        try:
            st = path.lstat()
        except OSError:
            return False
        if not path.is_file() or path.is_symlink() or st.st_size != item.size:
            return False
        return same_content(item.read_from, path, io)

    def send(self, item: TransferItem, io: TransferIO) -> None:
        path = self._path(item)
        token = secrets.token_hex(4)
        tmp = path.with_name(f".{path.name}.{token}.partial")
        if len(os.fsencode(tmp.name)) > 240:  # keep under NAME_MAX for long file names
            tmp = path.with_name(f".bat-{token}.partial")
        try:
            with open(item.read_from, "rb") as src:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                try:
                    while chunk := src.read(CHUNK_SIZE):
                        io.check_abort()
                        write_all(fd, memoryview(chunk))
                        io.progress(len(chunk))
                finally:
                    os.close(fd)
            shutil.copystat(item.read_from, tmp)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
