"""``os.path.realpath`` with the directories remembered.

A pack resolves the real path of every dependency (to transfer a file reached
through two paths once, and to refuse overwriting a source).  ``realpath``
walks every component of a path with an ``lstat`` each; hundreds of files in
a handful of directories make that the slowest part of planning.  Here a
file's real path is its directory's (resolved once) plus its name, unless the
file itself is a symbolic link.  Answers are remembered too: a pack asks for
the same file's real path in the trace, the plan and the target checks.  Use
one :class:`RealPaths` per operation: the file system may change between
operations.
"""

from __future__ import annotations

import os


class RealPaths:
    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}
        self._files: dict[str, str] = {}

    def __call__(self, path: os.PathLike[str] | str) -> str:
        text = os.fspath(path)
        real = self._files.get(text)
        if real is None:
            real = self._files[text] = self._resolve(text)
        return real

    def _resolve(self, text: str) -> str:
        head, name = os.path.split(text)
        if not head or not name or name in (".", "..") or os.path.islink(text):
            return os.path.realpath(text)
        real_head = self._dirs.get(head)
        if real_head is None:
            real_head = self._dirs[head] = os.path.realpath(head)
        return os.path.join(real_head, name)
