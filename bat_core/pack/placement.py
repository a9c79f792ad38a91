"""Where a file goes inside a pack: pure path arithmetic, no file-system access.

Files inside the project keep their project-relative path.  Files outside it
go under ``_outside_project/`` by their absolute path, with the root turned
into folder names (``/srv/x`` -> ``srv/x``, ``C:\\x`` -> ``C/x``,
``\\\\server\\share\\x`` -> ``UNC/server/share/x``).  Only paths native to this
machine are ever placed: a path of the other operating system's flavour
(``C:\\x`` on Linux) is never looked up, so it is missing and not packed.  The
Windows rules serve bat running on Windows, and are tested on every host.  Placement only depends on the
path, so a directory and the files below it are placed consistently.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from .errors import PackError

OUTSIDE_PROJECT = "_outside_project"


def _windows_root(path: PureWindowsPath) -> list[str]:
    """Folder names for a Windows anchor: ``C:`` -> ``C``; ``\\\\server\\share`` ->
    ``UNC/server/share``; the extended-length forms (``\\\\?\\C:``, ``\\\\?\\UNC\\...``)
    name the same files as the short ones, so they land in the same place.

    A drive is one letter and never ``UNC``, so drive and share paths cannot collide.
    """
    drive = path.drive.replace("/", "\\")
    if drive.startswith(("\\\\?\\", "\\\\.\\")):
        rest = drive[4:]
        if drive[2] == "." or not (rest[:4].upper() == "UNC\\" or (len(rest) == 2 and rest[1] == ":")):
            raise PackError(f"refusing a Windows device path: {path}")
        drive = "\\\\" + rest[4:] if rest[:4].upper() == "UNC\\" else rest
    if drive.startswith("\\\\"):
        return ["UNC", *[p for p in drive.split("\\") if p]]
    return [drive.rstrip(":").upper()]


def strip_root(path: PurePath) -> PurePosixPath:
    """An absolute path as a relative one: the drive or UNC root becomes folder names."""
    parts = list(path.parts)
    if not parts:
        return PurePosixPath()
    anchor, rest = parts[0], parts[1:]
    if isinstance(path, PureWindowsPath) and path.drive:
        return PurePosixPath(*_windows_root(path), *rest)
    if anchor in ("/", "//", "\\"):
        return PurePosixPath(*rest)
    return PurePosixPath(*parts)


def place_pure(path: PurePath, project: PurePath) -> PurePosixPath:
    """:func:`place` for a path of either flavour (``PurePosixPath`` or ``PureWindowsPath``).

    Pure arithmetic; ``path`` and ``project`` are absolute and of one flavour.
    Windows paths compare case-insensitively with the project, as Windows does.
    """
    flavour = type(path)
    norm = flavour(ntpath.normpath(str(path)) if flavour is PureWindowsPath else posixpath.normpath(str(path)))
    try:
        rel = PurePosixPath(norm.relative_to(flavour(project)).as_posix())
    except ValueError:
        rel = PurePosixPath(OUTSIDE_PROJECT) / strip_root(norm)
    check_relpath(rel, path)
    return rel


def place(path: Path, project: Path) -> PurePosixPath:
    """The path of ``path`` inside the pack (relative to the target root)."""
    if os.sep == "/":
        return _place_posix(os.fspath(path), os.fspath(project))
    return place_pure(PurePath(path), PurePath(project))


def _place_posix(path: str, project: str) -> PurePosixPath:
    """:func:`place_pure` for native POSIX paths, on strings: a plan places every file, and
    pathlib's parsing was most of the plan's own time. Same answers (tests compare them)."""
    norm = posixpath.normpath(path)
    top = posixpath.normpath(project)
    outside = f"{OUTSIDE_PROJECT}/{norm.lstrip('/')}"
    if top == "/":  # "//x" has another root ("//"), as pathlib sees it
        rel = outside if norm.startswith("//") else norm[1:] or "."
    elif norm == top:
        rel = "."
    elif norm.startswith(top + "/"):
        rel = norm[len(top) + 1:]
    else:
        rel = outside
    placed = PurePosixPath(rel)
    check_relpath(placed, path)
    return placed


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
    """The ``//``-path from a packed blend file to a packed dependency (both target-relative).

    On the paths' parts rather than with ``posixpath.relpath``, which normalises
    both again: a plan calls this for every usage, and destinations are already
    clean (:func:`check_relpath`).  Same answers (tests compare them).
    """
    to, base = dest.parts, holder_dest.parent.parts
    common = 0
    for a, b in zip(to, base, strict=False):
        if a != b:
            break
        common += 1
    rel = "/".join(("..",) * (len(base) - common) + to[common:])
    return b"//" + os.fsencode(rel) if rel else b"//"
