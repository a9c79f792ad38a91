"""BlendPath: a path as stored inside a blend file.

It is bytes, may be relative to the blend file that holds it (``//``), and may
come from another operating system (``C:\\textures\\x.png``, ``\\\\server\\share``).
Filesystem operations always go through :class:`pathlib.Path`; this class only
interprets and builds the stored form.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from .errors import BatError

_DRIVE = re.compile(rb"^[A-Za-z]:[\\/]")


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
        """``C:\\...``, ``C:/...`` or a UNC path ``\\\\server\\share``."""
        return bool(_DRIVE.match(self)) or self.startswith(b"\\\\")

    @property
    def is_absolute(self) -> bool:
        if self.is_blendfile_relative:
            return False
        return self.startswith(b"/") or self.is_windows_absolute

    def decode_path(self) -> str:
        """Text of the path: UTF-8, else the filesystem encoding (lossless)."""
        try:
            return self.decode("utf-8")
        except UnicodeDecodeError:
            return os.fsdecode(bytes(self))

    def to_pure(self) -> PurePath:
        """The path as a pure path of its own flavour (Windows paths stay Windows)."""
        text = self.decode_path()
        if self.is_windows_absolute:
            return PureWindowsPath(text)
        return PurePosixPath(text)

    def absolute(self, blend_file: Path) -> Path:
        """A real path on this machine, resolving ``//`` against ``blend_file``'s directory.

        Windows-absolute paths have no meaning here; they come back as a POSIX path
        with the drive turned into a directory name so they are merely missing.
        """
        text = self.decode_path()
        if self.is_blendfile_relative:
            rel = text[2:].replace("\\", "/")
            return Path(os.path.normpath(blend_file.parent / rel))
        if self.is_windows_absolute:
            win = PureWindowsPath(text)
            parts = [p.strip("\\/").replace(":", "") for p in win.parts]
            return Path("/", *[p for p in parts if p])
        if not text.startswith("/"):
            # Relative without '//': Blender treats these relative to the working dir;
            # the blend file's directory is the only sensible anchor for a packer.
            return Path(os.path.normpath(blend_file.parent / text))
        return Path(os.path.normpath(text))
