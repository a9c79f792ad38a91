"""Expand a usage's path (a file, frames, UDIM tiles, a glob, a directory) to the files on disk.

Every function returns a :class:`Found`: the regular files that are
dependencies, the entries that were looked at and left out with the reason
(a FIFO or a dangling symbolic link inside a cache directory), and, when
nothing could be looked at, why (``missing``, ``unreadable (...)``...).
Directories are walked without following symbolic links to directories and
never into a kernel file system.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .files import MISSING, FileProbe

_UDIM_TOKENS = re.compile(r"<UDIM>|<UVTILE>")
_LAST_DIGITS = re.compile(r"(\d+)(?!.*\d)")
_TOKEN_REGEX = {"<UDIM>": r"1\d{3}", "<UVTILE>": r"u\d+_v\d+"}
_WILDCARDS = re.compile(r"[*?\[]")


@dataclass
class Found:
    files: list[Path] = field(default_factory=list)
    #: Entries seen but not dependencies, with the reason.
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    #: Why nothing could be looked at ('' when the place exists).
    problem: str = ""

    def take(self, path: Path, probe: FileProbe) -> None:
        reason = probe.file(path)
        if reason:
            self.skipped.append((path, reason))
        else:
            self.files.append(path)


def single(path: Path, probe: FileProbe) -> Found:
    problem = probe.file(path)
    return Found(problem=problem) if problem else Found([path])


def _match(directory: Path, regex: re.Pattern[str], probe: FileProbe) -> Found:
    names = probe.listdir(directory)
    if isinstance(names, str):
        return Found(problem=names)
    found = Found()
    for name in names:
        if regex.fullmatch(name):
            found.take(directory / name, probe)
    if not found.files and not found.skipped:
        found.problem = MISSING
    return found



def expand_udim(path: Path, probe: FileProbe) -> Found:
    """``tex.<UDIM>.png`` -> the tiles that exist (``tex.1001.png``, ``tex.1002.png``...)."""
    parts = _UDIM_TOKENS.split(path.name)
    tokens = _UDIM_TOKENS.findall(path.name)
    regex = "".join(re.escape(p) + (_TOKEN_REGEX[t] if i < len(tokens) else "")
                    for i, (p, t) in enumerate(zip(parts, [*tokens, ""], strict=True)))
    return _match(path.parent, re.compile(regex), probe)


def expand_frames(path: Path, probe: FileProbe) -> Found:
    """``frame_0001.png`` -> every ``frame_<digits>.png`` beside it; ``#`` runs count too."""
    name = path.name
    if "#" in name:
        regex = re.sub(r"#+", lambda m: rf"\d{{{len(m.group())},}}", re.escape(name).replace(r"\#", "#"))
        return _match(path.parent, re.compile(regex), probe)
    m = _LAST_DIGITS.search(name)
    if m is None:
        return single(path, probe)
    regex = re.escape(name[: m.start()]) + r"\d+" + re.escape(name[m.end():])
    return _match(path.parent, re.compile(regex), probe)


def _walk(top: Path, probe: FileProbe, found: Found) -> list[Path]:
    """Every file name below ``top`` (not following links to directories); sub-directories
    that are links or on a kernel file system are recorded as skipped."""
    out: list[Path] = []
    special = probe.special

    def onerror(exc: OSError) -> None:
        if exc.filename is not None and Path(exc.filename) != top:
            found.skipped.append((Path(exc.filename), probe.directory(Path(exc.filename)) or "unreadable"))

    for root, dirs, files in os.walk(top, onerror=onerror):
        base = Path(root)
        keep = []
        for d in sorted(dirs):
            sub = base / d
            if os.path.islink(sub):
                found.skipped.append((sub, "symbolic link to a directory (not followed)"))
                continue
            try:
                if os.lstat(sub).st_dev in special:
                    found.skipped.append((sub, probe.directory(sub)))
                    continue
            except OSError:
                continue
            keep.append(d)
        dirs[:] = keep
        out.extend(base / f for f in sorted(files))
    return out


def expand_directory(path: Path, probe: FileProbe, subdirs: tuple[str, ...] | None = None) -> Found:
    """Every regular file below a directory (bake and cache directories).

    ``subdirs``: only these sub-directories are walked (what the program that
    reads the cache opens), so a cache path of ``/`` does not mean the whole disk.
    """
    problem = probe.directory(path)
    if problem:
        return Found(problem=problem)
    found = Found()
    tops = [path] if subdirs is None else [path / s for s in subdirs]
    for top in tops:
        if top != path and probe.directory(top):
            continue
        for f in _walk(top, probe, found):
            found.take(f, probe)
    return found


def _dirs_below(base: Path, probe: FileProbe) -> list[Path]:
    """``base`` and every directory below it: no links to directories, no kernel file systems."""
    out = [base]
    special = probe.special
    for root, dirs, _ in os.walk(base):
        keep = []
        for d in sorted(dirs):
            sub = os.path.join(root, d)
            try:
                if os.path.islink(sub) or os.lstat(sub).st_dev in special:
                    continue
            except OSError:
                continue
            keep.append(d)
            out.append(Path(sub))
        dirs[:] = keep
    return out


def expand_glob(directory: Path, pattern: str, probe: FileProbe) -> Found:
    """The files matching ``pattern`` below ``directory``: ``*``, ``?`` and ``[...]`` within a
    component (``glob.escape`` quoting works), ``**`` for any number of directories.

    ``problem`` is set only when ``directory`` itself is unusable: a pattern that
    matches nothing in an existing directory is no error (nothing was baked).
    """
    problem = probe.directory(directory)
    if problem:
        return Found(problem=problem)
    found = Found()
    parts = [p for p in pattern.split("/") if p]
    current = [directory]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: list[Path] = []
        for base in current:
            if part == "**":
                nxt.extend(_dirs_below(base, probe))
                continue
            if _WILDCARDS.search(part):
                names = probe.listdir(base)
                matches = [n for n in names if fnmatch.fnmatchcase(n, part)] if isinstance(names, list) else []
            else:
                matches = [part] if os.path.lexists(base / part) else []
            for name in matches:
                sub = base / name
                if last:
                    found.take(sub, probe)
                elif not os.path.islink(sub) and not probe.directory(sub):
                    nxt.append(sub)
        current = nxt
    found.files.sort()
    return found


def has_udim_token(path: str | bytes) -> bool:
    text = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
    return bool(_UDIM_TOKENS.search(text))
