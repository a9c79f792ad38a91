"""BlendPath: a path as stored inside a blend file.

It is bytes, may be relative to the blend file that holds it (``//``), and may
come from another operating system (``C:\\textures\\x.png``, ``\\\\server\\share``).
Filesystem operations always go through :class:`pathlib.Path`; this class only
interprets and builds the stored form.

Resolution follows Blender's ``BLI_path_abs``, checked against what Blender
itself loads (``tests/test_bpathlib.py``, fixture ``paths``):

* ``//rest`` is ``rest`` below the directory of the blend file that holds the
  path, even when ``rest`` starts with a separator: ``///abs/t.png`` and
  ``//\\tmp\\t.png`` are ``<blend dir>/abs/t.png`` and ``<blend dir>/tmp/t.png``;
* on a POSIX system every backslash is a separator (Blender turns them into
  ``/`` before opening), and ``..`` is resolved lexically, as Blender does;
* paths of the other operating system's flavour are *foreign*: on POSIX a drive
  (``C:\\x``, ``C:/x``, drive-relative ``D:x``), a UNC or extended-length
  path (``\\\\server\\share``, ``\\\\?\\C:\\x``) or a path rooted in a backslash
  (``\\textures\\x``); on Windows a POSIX absolute path.  A foreign path is
  never resolved through the local file system: it is reported as stored and
  missing.  Blender on Linux would look for ``C:\\x`` at ``/c/x``, which is at
  best some other file.
* A drive-relative path (``D:x``) depends on the current directory of drive
  ``D:`` of whoever runs Blender: foreign on every system.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
import re
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from .errors import BatError

_DRIVE = re.compile(rb"^[A-Za-z]:")
_DRIVE_ABS = re.compile(rb"^[A-Za-z]:[\\/]")

#: The flavour of paths on this machine.
HOST_FLAVOUR: type[PurePath] = PureWindowsPath if os.name == "nt" else PurePosixPath


class NotAPathError(BatError, TypeError):
    """A stored path that came out of the file as a number: in this file's DNA the
    field is a pointer or an integer, so its block is not what it claims (damage)."""


class BlendPath(bytes):
    """A path as Blender stores it (bytes)."""

    def __new__(cls, value: bytes | bytearray | memoryview = b"") -> BlendPath:
        if isinstance(value, int):  # bytes(n) would be n zero bytes: gigabytes for a pointer
            raise NotAPathError(f"a stored path reads as the number {value}, not a string: "
                                "the block holding it is damaged")
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return f"BlendPath({bytes(self)!r})"

    @classmethod
    def mkrelative(cls, asset: Path | PurePath, blend_file: Path | PurePath) -> BlendPath:
        """The ``//``-relative path from ``blend_file``'s directory to ``asset``.

        Both must be absolute paths of the same flavour (POSIX here).
        """
        rel = os.path.relpath(PurePosixPath(asset), PurePosixPath(blend_file).parent)
        return cls(b"//" + os.fsencode(rel))

    @property
    def is_blendfile_relative(self) -> bool:
        return self.startswith(b"//")

    @property
    def is_windows_absolute(self) -> bool:
        """``C:\\...``, ``C:/...``, or a UNC or extended-length path (``\\\\server\\share``, ``\\\\?\\``)."""
        return bool(_DRIVE_ABS.match(self)) or self.startswith(b"\\\\")

    @property
    def is_windows(self) -> bool:
        """A path only Windows can interpret: absolute, drive-relative (``D:x``) or backslash-rooted."""
        if self.is_blendfile_relative:
            return False
        return bool(_DRIVE.match(self)) or self.startswith(b"\\")

    @property
    def is_drive_relative(self) -> bool:
        """``D:x``: relative to the current directory of a drive (meaningful nowhere else)."""
        return bool(_DRIVE.match(self)) and not _DRIVE_ABS.match(self)

    @property
    def is_absolute(self) -> bool:
        if self.is_blendfile_relative:
            return False
        return self.startswith(b"/") or self.is_windows_absolute or (
            self.startswith(b"\\") and not self.startswith(b"\\\\"))

    def is_foreign(self, flavour: type[PurePath] = HOST_FLAVOUR) -> bool:
        """True when the path belongs to another operating system than ``flavour``'s."""
        if self.is_blendfile_relative:
            return False
        if self.is_drive_relative:
            return True
        if flavour is PureWindowsPath:
            return self.startswith(b"/")
        return self.is_windows

    def decode_path(self) -> str:
        """Text of the path: UTF-8, else the filesystem encoding (lossless)."""
        try:
            return self.decode("utf-8")
        except UnicodeDecodeError:
            return os.fsdecode(bytes(self))

    def to_pure(self) -> PurePath:
        """The path as a pure path of its own flavour (Windows paths stay Windows)."""
        text = self.decode_path()
        if self.is_windows:
            return PureWindowsPath(text)
        return PurePosixPath(text)

    def resolve_pure(self, blend_file: PurePath, flavour: type[PurePath] = HOST_FLAVOUR) -> PurePath | None:
        """The absolute path Blender on a ``flavour`` system opens, or None for a foreign path.

        ``blend_file`` is the absolute path of the blend file holding this path.
        Pure path arithmetic: nothing is looked up on disk.
        """
        if self.is_foreign(flavour):
            return None
        text = self.decode_path()
        if flavour is PureWindowsPath:
            return _resolve_windows(text, PureWindowsPath(blend_file))
        return _resolve_posix(text, PurePosixPath(blend_file))

    def absolute(self, blend_file: Path) -> Path:
        """A real path on this machine, resolving ``//`` against ``blend_file``'s directory.

        A foreign path (see :meth:`is_foreign`) comes back exactly as stored, to be
        shown; it names nothing here, and the tracer never looks it up.
        """
        pure = self.resolve_pure(blend_file)
        if pure is None:
            return Path(self.decode_path())
        return Path(pure)


def _resolve_posix(text: str, blend_file: PurePosixPath) -> PurePosixPath:
    text = text.replace("\\", "/")
    if text.startswith("//"):
        text = posixpath.join(str(blend_file.parent), text[2:].lstrip("/"))
    elif not text.startswith("/"):
        # Relative without '//': Blender reads these relative to its working
        # directory; the blend file's directory is the only sensible anchor here.
        text = posixpath.join(str(blend_file.parent), text)
    norm = posixpath.normpath(text)
    if norm.startswith("//"):  # POSIX keeps two leading slashes; Blender does not
        norm = "/" + norm.lstrip("/")
    return PurePosixPath(norm)


def _resolve_windows(text: str, blend_file: PureWindowsPath) -> PureWindowsPath:
    if text.startswith("//"):
        rest = text[2:].replace("/", "\\").lstrip("\\")
        return PureWindowsPath(ntpath.normpath(ntpath.join(str(blend_file.parent), rest)))
    text = text.replace("/", "\\")
    if text.startswith("\\") and not text.startswith("\\\\"):
        text = blend_file.drive + text  # rooted: on the blend file's drive
    elif not ntpath.isabs(text):
        text = ntpath.join(str(blend_file.parent), text)
    return PureWindowsPath(ntpath.normpath(text))
