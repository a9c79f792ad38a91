"""SHA-256 of the files a content-addressed target stores, with a persistent cache.

S3 and Shaman decide what to send by content, so every file of a pack needs
its checksum — and a re-pack of an unchanged scene must not read hundreds of
megabytes to find out that nothing changed.  The cache is one SQLite file in
the user's cache directory, keyed by the real path and checked against size,
modification time (ns) and inode: a file edited in place, replaced or touched
is hashed again.  SQLite comes with Python and copes with several ``bat``
processes at once.  Hashing runs in worker threads (``hashlib`` releases the
GIL on large buffers); the cache is read and written on one thread only.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..cachedir import cache_dir
from ..targets import CHUNK_SIZE, TransferIO
from .sources import open_source

log = logging.getLogger(__name__)

#: Set to a non-empty value other than ``0`` to turn the cache off (as ``--no-hash-cache``).
NO_CACHE_ENV = "BAT_NO_HASH_CACHE"
#: Entries not used for this long are dropped.
MAX_AGE_SECONDS = 60 * 24 * 3600
#: An entry's last use is refreshed when it is older than this (not on every pack).
_TOUCH_SECONDS = 24 * 3600
#: Paths per query (SQLite's limit on parameters is 999 in old builds).
_QUERY_CHUNK = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checksums (
    path BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    used INTEGER NOT NULL
)
"""


def cache_disabled_by_env() -> bool:
    value = os.environ.get(NO_CACHE_ENV, "")
    return value not in ("", "0")


@dataclass(frozen=True)
class FileKey:
    """What the cache checks a file against: change any of it and the file is hashed again."""

    path: bytes
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, real_path: str, st: os.stat_result) -> FileKey:
        return cls(os.fsencode(real_path), st.st_size, st.st_mtime_ns, st.st_ino)


class ChecksumCache:
    """The persistent table of checksums; a no-op when it cannot be opened (read-only home...)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else cache_dir() / "checksums.sqlite"
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
            self._db = db
        except (OSError, sqlite3.Error) as exc:
            log.warning("checksum cache %s unavailable (%s); hashing every file", self.path, exc)

    def lookup(self, keys: Iterable[FileKey]) -> dict[FileKey, str]:
        """The cached checksums of the keys that are still valid.

        One query per few hundred files; the entries' last use is refreshed
        only when it is more than a day old, so an unchanged re-pack writes nothing.
        """
        found: dict[FileKey, str] = {}
        if self._db is None:
            return found
        wanted = {key.path: key for key in keys}
        paths = list(wanted)
        now = int(time.time())
        stale: list[tuple[int, bytes]] = []
        try:
            for start in range(0, len(paths), _QUERY_CHUNK):
                chunk = paths[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT path, size, mtime_ns, inode, sha256, used FROM checksums WHERE path IN ({marks})",
                    chunk,
                ).fetchall()
                for path, size, mtime_ns, inode, sha, used in rows:
                    key = wanted[path]
                    if (size, mtime_ns, inode) == (key.size, key.mtime_ns, key.inode):
                        found[key] = sha
                        if used < now - _TOUCH_SECONDS:
                            stale.append((now, path))
            if stale:
                with self._transaction():
                    self._db.executemany("UPDATE checksums SET used = ? WHERE path = ?", stale)
        except sqlite3.Error as exc:
            log.warning("checksum cache %s: %s", self.path, exc)
        return found

    def store(self, entries: dict[FileKey, str]) -> None:
        if self._db is None or not entries:
            return
        now = int(time.time())
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT OR REPLACE INTO checksums (path, size, mtime_ns, inode, sha256, used) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(k.path, k.size, k.mtime_ns, k.inode, sha, now) for k, sha in entries.items()],
                )
                self._db.execute("DELETE FROM checksums WHERE used < ?", (now - MAX_AGE_SECONDS,))
        except sqlite3.Error as exc:
            log.warning("checksum cache %s: %s", self.path, exc)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        assert self._db is not None
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()


def sha256_of(path: Path, io: TransferIO) -> tuple[str, os.stat_result]:
    """The SHA-256 of a file's content and the ``fstat`` of what was read."""
    fd, st = open_source(path)  # a regular file, never a FIFO or a kernel file
    digest = hashlib.sha256()
    try:
        with open(fd, "rb", buffering=0, closefd=False) as fh:
            buf = bytearray(CHUNK_SIZE)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                io.check_abort()
                digest.update(view[:n])
                io.progress(n)
    finally:
        os.close(fd)
    return digest.hexdigest(), st
