"""What bat works out from a blend file's bytes, kept for the next run.

Farm submitters run ``bat`` on every job, and a scene's libraries rarely change
between two jobs.  Walking a library's data to find which IDs each linked ID
pulls in is a large part of a trace, and its answer depends on nothing but
the library's bytes and bat's own code.  A memo keeps such answers in the
cache directory (``<cache>/blendfiles/``), one small file per blend file.

There is one memo file per blend file path and section, holding what is
known about one version of that file: it is keyed by the file's identity
when it was opened (device, inode, size, modification and change times in
nanoseconds; nobody can set a change time back, so a file edited in place,
replaced or restored has a new key) and each section by the code that made it.
Memo files are written whole and renamed into place, carry a check sum, and are
ignored when anything about them is off: the answer is then worked out again.
Set ``BAT_NO_TRACE_CACHE=1`` to neither read nor write them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import struct
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from ..cachedir import cache_dir

log = logging.getLogger(__name__)

#: Set to a non-empty value other than ``0``: no memo is read or written.
NO_MEMO_ENV = "BAT_NO_TRACE_CACHE"
DIRECTORY = "blendfiles"
_MAGIC = b"BATMEMO2"
#: A CRC-32 of the rest: memos guard against damage (a cut-short write, a bad disk); whom
#: to believe is decided by the file's owner and mode (``_trusted``).
_CHECK = struct.Struct("<I")
#: A memo file larger than this is not read (a memo is a few hundred kB at most).
_MAX_SIZE = 256 << 20
_LENGTH = struct.Struct("<Q")
#: Memo files not read or written for this long are removed (their blend files are gone).
MAX_AGE_SECONDS = 60 * 24 * 3600
#: A memo read is marked as used when its file is older than this (not at every read).
_TOUCH_SECONDS = 24 * 3600
#: One save in this many also prunes the directory.
_PRUNE_CHANCE = 1 / 64

Identity = tuple[int, int, int, int, int]


def memos_disabled() -> bool:
    return os.environ.get(NO_MEMO_ENV, "") not in ("", "0")


def identity_of(st: os.stat_result) -> Identity:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _trusted(st: os.stat_result) -> bool:
    """Only this user's memo files, writable by nobody else, are believed (a shared cache directory
    must not let another user hide a dependency)."""
    getuid = getattr(os, "geteuid", None)
    if getuid is None:  # Windows: the file system's permissions are the user's profile's
        return True
    return st.st_uid == getuid() and not st.st_mode & 0o022


def code_version(*sources: str) -> str:
    """A digest of the modules (by file name) whose code derives a section: change the code, lose the memo."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sources:
        try:
            with open(name, "rb") as fh:
                digest.update(fh.read())
        except OSError:
            digest.update(os.urandom(16))  # unknown code: never reuse what it made
    return digest.hexdigest()


class Memo:
    """The memo of one opened blend file: named sections of bytes, each tied to a code version.

    Each section is a file of its own (``<path digest>-<section>.memo``), read when
    asked for and not kept: a big one (a block index) costs memory only while it
    is being decoded.
    """

    def __init__(self, path: str, identity: Identity) -> None:
        self.path = path  # the real path
        self.identity = identity
        self._pending: dict[str, tuple[str, bytes]] = {}
        self._stem = hashlib.blake2b(os.fsencode(path), digest_size=16).hexdigest()
        self.directory = cache_dir() / DIRECTORY

    @classmethod
    def for_file(cls, path: os.PathLike[str] | str, st: os.stat_result) -> Memo | None:
        """The memo of a file just opened (``st``: fstat of what was read), or None when memos are off."""
        if memos_disabled():
            return None
        return cls(os.path.realpath(path), identity_of(st))

    def file(self, name: str) -> Path:
        return self.directory / f"{self._stem}-{name}.memo"

    # --- sections ------------------------------------------------------------------

    def get(self, name: str, version: str) -> bytes | None:
        """The section ``name`` as code ``version`` wrote it for these bytes, or None."""
        pending = self._pending.get(name)
        if pending is not None:
            return pending[1] if pending[0] == version else None
        path = self.file(name)
        try:
            with open(path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if st.st_size > _MAX_SIZE or not _trusted(st):
                    return None
                raw = fh.read(st.st_size + 1)  # read(n) allocates n bytes first: never the bound
        except OSError:
            return None
        try:
            data = self._parse(raw, name, version)
        except (ValueError, KeyError, TypeError, struct.error) as exc:
            log.debug("ignoring the memo %s: %s", path, exc)
            return None
        if st.st_mtime < time.time() - _TOUCH_SECONDS:
            with contextlib.suppress(OSError):
                os.utime(path)  # still in use: kept by prune()
        return data

    def put(self, name: str, version: str, data: bytes) -> None:
        """Keep ``data`` as section ``name``; written by :meth:`save`."""
        self._pending[name] = (version, data)

    # --- disk ------------------------------------------------------------------------

    def _parse(self, raw: bytes, name: str, version: str) -> bytes:
        if len(raw) > _MAX_SIZE or not raw.startswith(_MAGIC):
            raise ValueError("not a memo")
        (check,) = _CHECK.unpack_from(raw, len(_MAGIC))
        body = memoryview(raw)[len(_MAGIC) + _CHECK.size :]
        if zlib.crc32(body) != check:
            raise ValueError("check sum mismatch")
        (head_len,) = _LENGTH.unpack_from(body)
        head: Any = json.loads(bytes(body[_LENGTH.size : _LENGTH.size + head_len]))
        if (head["path"] != self.path or tuple(head["identity"]) != self.identity
                or head["section"] != name or head["version"] != version):
            raise ValueError("another file, section or version")
        data = bytes(body[_LENGTH.size + head_len :])
        if len(data) != head["size"]:
            raise ValueError("truncated")
        return data

    def save(self) -> None:
        """Write the sections put since opening, unless the file has changed since it was opened."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            if identity_of(os.stat(self.path)) != self.identity:
                return  # what was learnt is about bytes that are no longer there
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            for name, (version, data) in pending.items():
                head = json.dumps({"path": self.path, "identity": list(self.identity), "section": name,
                                   "version": version, "size": len(data)}).encode()
                body = _LENGTH.pack(len(head)) + head
                check = zlib.crc32(data, zlib.crc32(body))
                self._write(self.file(name), [_MAGIC, _CHECK.pack(check), body, data])
        except OSError as exc:
            log.debug("cannot write the memo of %s: %s", self.path, exc)
            return
        if random.random() < _PRUNE_CHANCE:
            prune(self.directory)

    def _write(self, path: Path, parts: list[bytes]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".memo-")
        try:
            with os.fdopen(fd, "wb") as fh:
                for part in parts:
                    fh.write(part)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def prune(directory: Path | None = None, keep_seconds: float = MAX_AGE_SECONDS) -> int:
    """Remove memo files not used for ``keep_seconds`` (files of blend files gone or moved)."""
    directory = directory or cache_dir() / DIRECTORY
    removed = 0
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0
    limit = time.time() - keep_seconds
    for entry in entries:
        try:
            if entry.name.endswith(".memo") and entry.stat().st_mtime < limit:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue
    return removed
