"""What bat wrote into a target directory: the manifest, and the journal of a pack in progress.

A directory target may hold other files than a pack's (it may even hold the
project).  A pack replaces only files an earlier pack into the same target
wrote and nobody changed since, so the target remembers them, in
``.bat-pack/manifest.json``::

    {"format": "bat-pack-manifest", "version": 1,
     "files": {"textures/a.png": [1234, 1700000000123456789], ...}}

(relative path -> size and modification time in nanoseconds, as written).
The manifest is replaced atomically (temporary file, rename) at the end of a
pack.  It is not ``fsync``-ed: on ext4 that would wait for every file the pack
just wrote to reach the disk.  After a machine crash a manifest may be empty:
it is then read as "no earlier pack", so the next pack refuses the files
rather than replacing them.  While a pack runs it appends to its own journal,
``.bat-pack/journal-<pid>-<random>.jsonl``, one JSON line per step: a
directory or partial file about to be made, a file in place.  A pack killed
half-way leaves its journal; the next pack into the target (once the owner
is gone) removes the partial files and empty directories it lists and adds
the files it completed to the manifest.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import stat
import threading
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from .tree import Dir

log = logging.getLogger(__name__)

STATE_DIR = ".bat-pack"
MANIFEST = "manifest.json"
FORMAT = "bat-pack-manifest"
VERSION = 1
JOURNAL = re.compile(r"^journal-(\d+)-[0-9a-f]+\.jsonl$")

#: (size, modification time in ns) of a file as bat wrote it.
Record = tuple[int, int]


def record_of(st: os.stat_result) -> Record:
    return (st.st_size, st.st_mtime_ns)


@dataclass
class Manifest:
    files: dict[str, Record] = field(default_factory=dict)

    def owns(self, rel: str, st: os.stat_result) -> bool:
        """``rel`` is a file bat wrote, unchanged since (a regular file with the recorded size and time)."""
        return stat.S_ISREG(st.st_mode) and self.files.get(rel) == record_of(st)

    @classmethod
    def read(cls, state: Dir | None) -> Manifest:
        """The manifest in the state directory ``state`` (empty when there is none or it is unreadable)."""
        manifest = cls()
        if state is None:
            return manifest
        try:
            fd = state.open(MANIFEST, os.O_RDONLY)
        except OSError:
            return manifest
        try:
            with os.fdopen(fd, "rb") as fh:
                fd = -1
                data = json.loads(fh.read(64 << 20))
        except (OSError, ValueError) as exc:
            log.warning("%s is unreadable (%s); treating the target as holding no earlier pack",
                        os.path.join(state.path, MANIFEST), exc)
            return manifest
        finally:
            if fd >= 0:
                os.close(fd)
        if isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("files"), dict):
            for rel, rec in data["files"].items():
                if isinstance(rel, str) and isinstance(rec, list) and len(rec) == 2 \
                        and all(isinstance(n, int) for n in rec):
                    manifest.files[rel] = (rec[0], rec[1])
        return manifest

    def write(self, state: Dir) -> None:
        """Replace the manifest atomically."""
        entries = ",\n".join(f"  {json.dumps(rel)}: [{size}, {mtime}]"
                              for rel, (size, mtime) in sorted(self.files.items()))
        text = f'{{"format": "{FORMAT}", "version": {VERSION}, "files": {{\n{entries}\n}}}}\n'
        tmp = f"{MANIFEST}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        fd = state.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            try:
                view = memoryview(text.encode("ascii"))
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            state.replace(tmp, MANIFEST)
        except BaseException:
            with contextlib.suppress(OSError):
                state.unlink(tmp)
            raise


class Journal:
    """This pack's journal: opened on the first entry, appended to from any worker thread."""

    def __init__(self, open_state: Any) -> None:
        #: Called to get (and create) the state directory on the first entry.
        self._open_state = open_state
        self.name = f"journal-{os.getpid()}-{secrets.token_hex(4)}.jsonl"
        self._fd: int | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._fd is not None

    def log(self, op: str, path: PurePosixPath | str, **extra: int) -> None:
        line = json.dumps({"op": op, "path": str(path), **extra}) + "\n"
        data = line.encode("utf-8", "surrogateescape")
        with self._lock:
            if self._fd is None:
                state: Dir = self._open_state()
                self._fd = state.open(self.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            os.write(self._fd, data)  # one write per line: a line is whole or missing

    def close(self, state: Dir | None, remove: bool) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                if remove and state is not None:
                    with contextlib.suppress(OSError):
                        state.unlink(self.name)


def read_journal(state: Dir, name: str) -> list[dict[str, Any]]:
    """The entries of a journal; a last line cut short by a kill is ignored."""
    try:
        fd = state.open(name, os.O_RDONLY)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as fh:
        lines = fh.read().split(b"\n")
    entries = []
    for raw in lines:
        try:
            entry = json.loads(raw.decode("utf-8", "surrogateescape"))
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("op"), str) and isinstance(entry.get("path"), str):
            entries.append(entry)
    return entries
