"""Directories inside the target, walked and created one level at a time, never through a symlink.

A symlink placed in an existing target (``out/textures -> /elsewhere``) must
not lead a pack's writes elsewhere — not even an empty directory.  So every
directory is opened relative to its parent's descriptor with ``O_NOFOLLOW``
and created with ``mkdir`` relative to that descriptor: a symlink or a file
in the way is found before anything is created, and it cannot be swapped in
between a check and a write.  Where the platform lacks descriptor-relative
calls, each component is checked with ``lstat`` before it is used.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from bat_core.pack import PackError

_AT = all(f in os.supports_dir_fd for f in (os.open, os.mkdir, os.rename, os.unlink, os.rmdir, os.stat))
_DIR_FLAGS = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
              | getattr(os, "O_CLOEXEC", 0))
#: What opening a symlink with O_NOFOLLOW, or a file as a directory, fails with.
_NOT_A_DIR = {errno.ELOOP, errno.ENOTDIR, errno.EMLINK}


class Dir:
    """An open directory of the target: operations on names inside it, relative to its descriptor."""

    def __init__(self, path: str | Path, fd: int | None) -> None:
        self.path = str(path)
        self.fd = fd

    def _at(self, name: str) -> str:
        return name if self.fd is not None else os.path.join(self.path, name)

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry ``name`` (not followed), or None when there is none."""
        try:
            return os.lstat(self._at(name), dir_fd=self.fd)
        except FileNotFoundError:
            return None

    def open(self, name: str, flags: int, mode: int = 0o666) -> int:
        return os.open(self._at(name), flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                       mode, dir_fd=self.fd)

    def replace(self, src: str, dst: str) -> None:
        os.replace(self._at(src), self._at(dst), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def move_in(self, src: Path, dst: str) -> None:
        """Rename the file ``src`` (an absolute path elsewhere) to ``dst`` in this directory."""
        os.replace(src, self._at(dst), dst_dir_fd=self.fd)

    def unlink(self, name: str) -> None:
        os.unlink(self._at(name), dir_fd=self.fd)

    def rmdir(self, name: str) -> None:
        os.rmdir(self._at(name), dir_fd=self.fd)

    def mkdir(self, name: str) -> None:
        os.mkdir(self._at(name), 0o777, dir_fd=self.fd)

    def names(self) -> list[str]:
        return os.listdir(self.fd if self.fd is not None else self.path)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Dir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_root(path: Path) -> Dir:
    """The target's root directory (the user named it: symlinks on the way to it are followed)."""
    return Dir(path, os.open(path, _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0)) if _AT else None)


def _refusal(parent: Dir, part: str, path: str) -> PackError:
    st = parent.lstat(part)
    if st is not None and stat.S_ISLNK(st.st_mode):
        try:
            where = f" (to {os.readlink(parent._at(part), dir_fd=parent.fd)})"
        except OSError:
            where = ""
        return PackError(f"refusing to write through {path}: it is a symbolic link{where}, and a pack "
                         "writes only into real directories of its target (this one could lead outside it)")
    return PackError(f"cannot create {path}: a file is in the way")


def open_dir(root: Dir, parts: Sequence[str], *, create: bool,
             before_mkdir: Callable[[PurePosixPath], None] | None = None,
             made: list[PurePosixPath] | None = None, prefix: Sequence[str] = ()) -> Dir | None:
    """The directory ``root/parts...``, every component checked to be a real directory.

    None when a component does not exist and ``create`` is false.  With
    ``create``, missing components are made one at a time: ``before_mkdir`` is
    told each one first (a journal), ``made`` gets those actually created
    (both relative to the target root: ``root`` is the target's ``prefix``).
    A symlink or a file in the way raises :class:`PackError`.
    """
    current = Dir(root.path, os.dup(root.fd) if root.fd is not None else None)
    try:
        for n, part in enumerate(parts, 1):
            path = os.path.join(current.path, part)  # strings: this runs for every file packed
            nxt = _enter(current, part, path)
            if nxt is None:
                if not create:
                    current.close()
                    return None
                rel = PurePosixPath(*prefix, *parts[:n])
                if before_mkdir is not None:
                    before_mkdir(rel)
                try:
                    current.mkdir(part)
                    if made is not None:
                        made.append(rel)
                except FileExistsError:
                    pass  # made by another worker meanwhile
                nxt = _enter(current, part, path)
                if nxt is None:
                    raise PackError(f"cannot create {path}: it disappeared as it was made")
            current.close()
            current = nxt
    except BaseException:
        current.close()
        raise
    return current


def _enter(parent: Dir, part: str, path: str) -> Dir | None:
    """Open ``part`` in ``parent`` as a real directory; None when there is nothing of that name."""
    if parent.fd is None:
        st = parent.lstat(part)
        if st is None:
            return None
        if not stat.S_ISDIR(st.st_mode):
            raise _refusal(parent, part, path)
        return Dir(path, None)
    try:
        return Dir(path, os.open(part, _DIR_FLAGS, dir_fd=parent.fd))
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in _NOT_A_DIR:
            raise _refusal(parent, part, path) from None
        raise
