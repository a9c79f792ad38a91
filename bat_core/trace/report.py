"""What is missing, counted once: the one rule ``bat list`` (text, JSON) and ``bat pack`` share.

A path is counted once however many blocks (and blend files) refer to it: a
movie used by a movie clip, a sequencer strip and an image is one missing
file.  What counts is a usage with a ``problem`` (see :class:`BlockUsage`):
a cache that was never baked or an empty cache directory is not missing, as
Blender does not miss it either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .usage import BlockUsage


@dataclass
class Problem:
    """One path that cannot be had, and every usage that refers to it."""

    path: Path
    #: The path as shown to the user (as stored, for a foreign path).
    shown: str
    #: Why (the first usage's ``problem``: ``missing``, ``not a regular file (a FIFO)``...).
    reason: str
    usages: list[BlockUsage] = field(default_factory=list)


def problems(usages: Iterable[BlockUsage]) -> list[Problem]:
    """The usages with a problem, grouped by path, in the order they were first seen."""
    by_path: dict[Path, Problem] = {}
    for u in usages:
        if not u.problem:
            continue
        entry = by_path.get(u.abspath)
        if entry is None:
            entry = by_path[u.abspath] = Problem(u.abspath, u.shown_path, u.problem)
        entry.usages.append(u)
    return list(by_path.values())


def skipped(usages: Iterable[BlockUsage]) -> list[tuple[Path, str]]:
    """Entries of directories and sequences left out (FIFOs, dangling links...), once each."""
    seen: dict[Path, str] = {}
    for u in usages:
        for path, reason in u.skipped:
            seen.setdefault(path, reason)
    return list(seen.items())
