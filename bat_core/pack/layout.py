"""Proving a pack's layout valid before a byte is written: clashes and names a target cannot hold.

A plan maps every file to a relative POSIX path.  Some sets of paths no
target can hold (a file ``a`` and a file ``a/b``); others only some can
(``Tex.png`` and ``tex.png`` are one file on Windows and macOS; a ZIP entry
with a backslash extracts somewhere else on Windows).  :func:`check_layout`
finds every such problem and names the files; the target's
:class:`LayoutRules` say which stop the pack and which are only warnings.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath


class Severity(enum.Enum):
    ERROR = "error"  # the pack is refused before anything is written
    WARNING = "warning"  # logged; the pack goes on
    ALLOWED = "allowed"  # not reported


#: What can be wrong with a layout (keys of :attr:`LayoutRules.severities`).
FILE_DIRECTORY = "file-directory"  # a file where another file needs a directory (always an error)
CASE = "case"  # names that differ only in case or Unicode normalisation
RESERVED = "reserved"  # a name the target keeps for its own files
BACKSLASH = "backslash"  # a separator on Windows and in many ZIP tools
DRIVE = "drive"  # a component like "C:": a drive on Windows, refused by careful ZIP tools
WINDOWS = "windows"  # a device name (CON, NUL...), a character or an ending Windows refuses
ENCODING = "encoding"  # not valid UTF-8 (ZIP entry names are UTF-8)
LENGTH = "length"  # a component longer than the target's file systems allow

_DEFAULTS: Mapping[str, Severity] = {
    FILE_DIRECTORY: Severity.ERROR, CASE: Severity.WARNING, RESERVED: Severity.ERROR,
    BACKSLASH: Severity.WARNING, DRIVE: Severity.WARNING, WINDOWS: Severity.WARNING,
    ENCODING: Severity.ALLOWED, LENGTH: Severity.WARNING,
}


@dataclass(frozen=True)
class LayoutRules:
    """How a target treats each kind of layout problem."""

    severities: Mapping[str, Severity] = field(default_factory=dict)
    #: Top-level names the target keeps for its own files (``.bat-pack`` in a directory).
    reserved: frozenset[str] = frozenset()
    #: The longest file name (one path component), in bytes of UTF-8.
    max_name_bytes: int = 255

    def severity(self, kind: str) -> Severity:
        if kind == FILE_DIRECTORY:
            return Severity.ERROR  # nothing can hold it
        return self.severities.get(kind, _DEFAULTS[kind])


@dataclass(frozen=True)
class LayoutProblem:
    kind: str
    severity: Severity
    message: str
    sources: tuple[Path, ...]


_WINDOWS_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in "0123456789¹²³"),
                              *(f"LPT{n}" for n in "0123456789¹²³")})
_WINDOWS_BAD = re.compile(r'[<>:"|?*\x00-\x1f]')
_DRIVE = re.compile(r"^[A-Za-z]:")


def _fold(text: str) -> str:
    """A name as a case-insensitive, normalisation-insensitive file system sees it."""
    return unicodedata.normalize("NFC", text).casefold()


def _windows_problem(name: str) -> str | None:
    if name.split(".")[0].rstrip(" ").upper() in _WINDOWS_DEVICES:
        return "a device name on Windows"
    bad = _WINDOWS_BAD.search(name)
    if bad:
        return f"Windows does not allow {bad.group()!r} in a file name"
    if name.endswith((".", " ")):
        return "Windows drops a trailing dot or space"
    return None


def _name_problems(name: str, rules: LayoutRules) -> Iterable[tuple[str, str]]:
    """(kind, why) for each rule one path component breaks."""
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:  # a name that is not UTF-8, kept byte for byte as surrogates
        yield ENCODING, "its name is not valid UTF-8 (a ZIP file cannot hold it)"
        encoded = name.encode("utf-8", "surrogateescape")
    if "\\" in name:
        yield BACKSLASH, "its name holds a backslash, a separator on Windows and in ZIP tools"
    if _DRIVE.match(name):
        yield DRIVE, f"{name!r} looks like a Windows drive"
    else:
        why = _windows_problem(name)
        if why is not None:
            yield WINDOWS, why
    if len(encoded) > rules.max_name_bytes:
        yield LENGTH, f"its name is {len(encoded)} bytes long, more than {rules.max_name_bytes}"


def check_layout(files: Iterable[tuple[PurePosixPath, Path]], rules: LayoutRules) -> list[LayoutProblem]:
    """Every problem of the layout ``files`` (destination, source) for a target with ``rules``.

    Problems the rules allow are left out.  Each names the files concerned.
    (Plain strings throughout: this runs over every file of a pack.)
    """
    dests: dict[str, Path] = {str(dest): source for dest, source in files}
    problems: list[LayoutProblem] = []

    def report(kind: str, message: str, *sources: Path) -> None:
        severity = rules.severity(kind)
        if severity is not Severity.ALLOWED:
            problems.append(LayoutProblem(kind, severity, message, sources))

    # Every directory the layout needs, with the first file below it (for messages).
    dirs: dict[str, tuple[str, Path]] = {}
    for dest, source in dests.items():
        cut = dest.rfind("/")
        while cut > 0:
            parent = dest[:cut]
            if parent in dirs:
                break
            dirs[parent] = (dest, source)
            cut = dest.rfind("/", 0, cut)

    for dest, source in dests.items():
        below = dirs.get(dest)
        if below is not None:
            report(FILE_DIRECTORY, f"{source} would be packed as {dest}, but {below[1]} needs a "
                   f"directory of that name ({below[0]})", source, below[1])
        top = dest.partition("/")[0]
        if top in rules.reserved:
            report(RESERVED, f"{source} would be packed as {dest}, but the target keeps "
                   f"{top!r} for its own files", source)

    # Names that only differ in case: one file, or a file and a directory, elsewhere.
    folded: dict[str, tuple[str, Path]] = {}
    for dest, source in dests.items():
        other = folded.setdefault(_fold(dest), (dest, source))
        if other[0] != dest:
            report(CASE, f"{other[1]} and {source} would be packed as {other[0]} and {dest}, names that "
                   "differ only in case (one file on Windows and macOS)", other[1], source)
    folded_dirs = {_fold(d): (d, first) for d, first in dirs.items()}
    for key, (dest, source) in folded.items():
        clash = folded_dirs.get(key)
        if clash is not None and clash[0] != dest:
            report(CASE, f"{source} would be packed as {dest}, but {clash[1][1]} needs a directory "
                   f"{clash[0]} (the same name on Windows and macOS)", source, clash[1][1])

    # Each name once: a directory's problem is reported for the first file below it.
    named: dict[str, tuple[str, Path]] = dict(dirs)
    named.update((dest, (dest, source)) for dest, source in dests.items())
    for path, (dest, source) in named.items():
        for kind, why in _name_problems(path.rpartition("/")[2], rules):
            where = "" if path == dest else f" (in {dest})"
            report(kind, f"{source}: cannot be packed as {path}{where}: {why}", source)
    return problems


def describe(problems: Iterable[LayoutProblem], limit: int = 5) -> str:
    """The messages of ``problems`` on one line, at most ``limit`` of them."""
    messages = [p.message for p in problems]
    text = "; ".join(messages[:limit])
    if len(messages) > limit:
        text += f"; and {len(messages) - limit} more"
    return text
