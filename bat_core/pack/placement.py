"""Where a file goes inside a pack: pure path arithmetic, no file-system access.

Files inside the project keep their project-relative path.  Files outside it
go under ``_outside_project/`` by their absolute path, with the root turned
into folder names (``/srv/x`` -> ``srv/x``, ``C:\\x`` -> ``C/x``,
``\\\\server\\share\\x`` -> ``server/share/x``).  Placement only depends on the
path, so a directory and the files below it are placed consistently.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from .errors import PackError

OUTSIDE_PROJECT = "_outside_project"


def strip_root(path: PurePath) -> PurePosixPath:
    """An absolute path as a relative one: the drive or UNC root becomes folder names."""
    parts = list(path.parts)
    if not parts:
        return PurePosixPath()
    anchor, rest = parts[0], parts[1:]
    if isinstance(path, PureWindowsPath) and path.drive:
        drive = path.drive
        if drive.startswith(("\\\\", "//")):
            root = [p for p in drive.replace("\\", "/").split("/") if p and p not in ("?", ".", "UNC")]
        else:
            root = [drive.rstrip(":")]
        return PurePosixPath(*root, *rest)
    if anchor in ("/", "//"):
        return PurePosixPath(*rest)
    return PurePosixPath(*parts)


def place(path: Path, project: Path) -> PurePosixPath:
    """The path of ``path`` inside the pack (relative to the target root)."""
    norm = Path(os.path.normpath(path))
    try:
        rel = PurePosixPath(norm.relative_to(project).as_posix())
    except ValueError:
        rel = PurePosixPath(OUTSIDE_PROJECT) / strip_root(norm)
    check_relpath(rel, path)
    return rel


def check_relpath(rel: PurePosixPath, source: object = None) -> None:
    """Refuse a destination that could leave the target or that no file system accepts."""
    text = str(rel)
    what = f" (for {source})" if source is not None else ""
    if not rel.parts or text == ".":
        raise PackError(f"refusing to pack a file to the target's root itself{what}")
    if "\0" in text:
        raise PackError(f"refusing a path with a NUL byte: {text!r}{what}")
    if rel.is_absolute() or any(p in ("..", ".", "") for p in text.split("/")):
        raise PackError(f"refusing a path that would escape the target: {text!r}{what}")


def stored_relative(dest: PurePosixPath, holder_dest: PurePosixPath) -> bytes:
    """The ``//``-path from a packed blend file to a packed dependency (both target-relative)."""
    rel = posixpath.relpath("/" + str(dest), "/" + str(holder_dest.parent))
    if rel == ".":
        return b"//"
    return b"//" + os.fsencode(rel)
