"""The content-addressed file store that both Shaman APIs serve.

Layout under the storage directory::

    stored/<sha[:2]>/<sha[2:]>/<size>.blob            verified content, mode 0644
    uploading/<sha[:2]>/<sha[2:]>/<size>-<hex>.tmp    one per upload in flight

The filesystem is the only state, so several server processes can share one
storage directory: a blob appears by an exclusive ``link`` of a complete,
verified and fsynced temporary file (never half-visible, never replaced), and a
pair is "uploading" while a temporary file for it exists whose writer is alive
(see :mod:`.locks`).  Every method here blocks; the server calls them from a
thread pool.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .locks import Probe, try_lock, unlock

SHA_RE = re.compile(r"[0-9a-f]{64}")
MAX_SIZE = 2**63 - 1
BLOB_MODE = 0o644


@dataclass(frozen=True, order=True)
class Pair:
    """What identifies stored content: SHA-256 (lowercase hex) and size."""

    sha: str
    size: int

    def __str__(self) -> str:
        return f"{self.sha}/{self.size}"


def valid_pair(sha: str, size: int) -> bool:
    return SHA_RE.fullmatch(sha) is not None and 0 <= size <= MAX_SIZE


class StoreError(Exception):
    """The storage directory cannot be used."""


def _prune(directory: Path, levels: int) -> None:
    """Remove ``directory`` and up to ``levels - 1`` parents while they are empty."""
    for _ in range(levels):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class TempUpload:
    """A temporary file being written, hashed and counted for one pair."""

    def __init__(self, store: FileStore, pair: Pair, path: Path, fd: int) -> None:
        self.store = store
        self.pair = pair
        self.path = path
        self.fd = fd
        self.received = 0
        self._hash = hashlib.sha256()
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.received += len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class FileStore:
    """Blob paths, pair states, uploads and their promotion, stale-file cleaning."""

    def __init__(self, root: Path, *, stale_age_s: float = 3600.0) -> None:
        # Canonical from the start: GC compares resolved link targets with these paths.
        self.root = Path(os.path.realpath(root))
        self.stored = self.root / "stored"
        self._stored_str = str(self.stored)
        self.uploading = self.root / "uploading"
        # Where locks do not work, a temporary file untouched for this long is stale.
        self.stale_age_s = stale_age_s
        self._own: set[str] = set()
        self._own_lock = threading.Lock()

    # -- layout -------------------------------------------------------------

    def ensure_layout(self) -> None:
        for d in (self.root, self.stored, self.uploading):
            try:
                d.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise StoreError(f"{d}: exists and is not a directory") from None
            except OSError as exc:
                raise StoreError(f"{d}: {exc.strerror or exc}") from None
            if not d.is_dir():
                raise StoreError(f"{d}: not a directory")

    def blob_path(self, pair: Pair) -> Path:
        return self.stored / pair.sha[:2] / pair.sha[2:] / f"{pair.size}.blob"

    def blob_name(self, pair: Pair) -> str:
        """:meth:`blob_path` relative to the ``stored`` directory, as a string (checkouts make
        hundreds of links per request: no Path objects in that loop)."""
        return f"{pair.sha[:2]}/{pair.sha[2:]}/{pair.size}.blob"

    def upload_dir(self, pair: Pair) -> Path:
        return self.uploading / pair.sha[:2] / pair.sha[2:]

    # -- state --------------------------------------------------------------

    def is_stored(self, pair: Pair) -> bool:
        try:
            return stat.S_ISREG(os.stat(self.blob_path(pair)).st_mode)
        except OSError:
            return False

    def is_uploading(self, pair: Pair) -> bool:
        """Whether a live upload of ``pair`` exists in this or another process."""
        prefix = f"{pair.size}-"
        try:
            names = os.listdir(self.upload_dir(pair))
        except OSError:
            return False
        return any(self._probe_temp(self.upload_dir(pair) / n)
                   for n in names if n.startswith(prefix) and n.endswith(".tmp"))

    def state(self, pair: Pair) -> str:
        """``stored``, ``uploading`` or ``unknown``."""
        if self.is_stored(pair):
            return "stored"
        if self.is_uploading(pair):
            return "uploading"
        return "unknown"

    def touch(self, pair: Pair) -> bool:
        """Set the blob's mtime to now (keeps it from GC); False when it is not stored."""
        try:
            os.utime(f"{self._stored_str}/{self.blob_name(pair)}")
        except FileNotFoundError:
            return False
        except OSError:
            return self.is_stored(pair)
        return True

    # -- uploads ------------------------------------------------------------

    def _is_own(self, path: Path) -> bool:
        with self._own_lock:
            return str(path) in self._own

    def open_temp(self, pair: Pair) -> TempUpload:
        """Create, exclusively, and lock a fresh temporary file for ``pair``."""
        directory = self.upload_dir(pair)
        for _ in range(100):
            path = directory / f"{pair.size}-{secrets.token_hex(8)}.tmp"
            # Registered before it exists: a probe in this process never opens it.
            with self._own_lock:
                self._own.add(str(path))
            try:
                directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            except (FileNotFoundError, FileExistsError):
                # The directory was pruned under us, or a name clash: try again.
                self._forget(path)
                continue
            except BaseException:
                self._forget(path)
                raise
            try:
                # Between the create and the lock, a cleaner in another process may take the
                # file for a dead upload's: it then holds the lock, or has unlinked the file.
                if try_lock(fd) is Probe.HELD or os.fstat(fd).st_nlink == 0:
                    unlock(fd)
                    os.close(fd)
                    self._forget(path)
                    continue
            except BaseException:
                os.close(fd)
                self._forget(path)
                raise
            return TempUpload(self, pair, path, fd)
        raise StoreError(f"{directory}: cannot create a temporary file")

    def _forget(self, path: Path) -> None:
        with self._own_lock:
            self._own.discard(str(path))

    def promote(self, temp: TempUpload) -> bool:
        """Make a verified temporary file the blob; False if the blob already existed.

        The blob appears with ``link`` (an exclusive create), so two receivers of
        one pair never replace each other's blob and exactly one of them wins.
        """
        os.fsync(temp.fd)
        if hasattr(os, "fchmod"):
            os.fchmod(temp.fd, BLOB_MODE)
        else:
            os.chmod(temp.path, BLOB_MODE)
        blob = self.blob_path(temp.pair)
        for _ in range(100):
            try:
                blob.parent.mkdir(parents=True, exist_ok=True)
                os.link(temp.path, blob)
            except FileExistsError:
                return False
            except FileNotFoundError:
                continue  # the blob directory was pruned by GC in between
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EXDEV):
                    raise
                return self._promote_without_links(temp, blob)
            _fsync_dir(blob.parent)
            return True
        raise StoreError(f"{blob.parent}: keeps disappearing")

    def _promote_without_links(self, temp: TempUpload, blob: Path) -> bool:
        # Filesystems without hard links: a rename.  On Windows it refuses an
        # existing target; elsewhere it could replace an identical blob, which
        # the existence check keeps to a tiny window (and identical bytes).
        if self.is_stored(temp.pair):
            return False
        try:
            os.rename(temp.path, blob)
        except FileExistsError:
            return False
        return True

    def discard(self, temp: TempUpload) -> None:
        """Remove the temporary file (after promotion or failure) and its empty directories."""
        if temp.closed:
            return
        temp.closed = True
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp.path)
        unlock(temp.fd)
        os.close(temp.fd)
        self._forget(temp.path)
        _prune(temp.path.parent, 2)

    # -- stale temporary files ---------------------------------------------

    def _probe_temp(self, path: Path) -> bool:
        """True when ``path`` belongs to a live upload; removes it when it is stale."""
        if self._is_own(path):
            return True
        try:
            st = os.stat(path)
        except OSError:
            return False
        # No grace period for young files: a writer that loses the race between its create and
        # its lock to this probe notices and starts a new file (open_temp).  So a server killed
        # mid-upload leaves nothing that looks "uploading" once another process looks at it.
        age = time.time() - st.st_mtime
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            return False
        except OSError:
            return True
        try:
            probe = try_lock(fd)
            if probe is Probe.HELD:
                return True
            if probe is Probe.UNSUPPORTED and age < self.stale_age_s:
                return True
            # Stale: remove it while holding its lock, if the name is still this file.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except OSError:
                same = False
            if same:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                except OSError:
                    return True  # Windows: still open by its writer
            return False
        finally:
            unlock(fd)
            os.close(fd)

    def iter_temps(self) -> Iterator[Path]:
        for top in _scandirs(self.uploading):
            for mid in _scandirs(top):
                try:
                    entries = list(os.scandir(mid))
                except OSError:
                    continue
                for e in entries:
                    if e.name.endswith(".tmp"):
                        yield Path(e.path)

    def clean_stale_temps(self) -> int:
        """Remove the temporary files of dead uploads; returns how many."""
        removed = 0
        for path in list(self.iter_temps()):
            if not self._probe_temp(path) and not path.exists():
                removed += 1
                _prune(path.parent, 2)
        return removed


def _scandirs(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
