"""Multipart uploads a pack started and could not finish or abort, kept so a later pack aborts them.

An open multipart upload is invisible in listings but its parts are stored
(and billed) until it is aborted.  A pack aborts its own on the way out, but
not when it is killed (SIGKILL, a power cut) or when the server is down just
then.  So each pack writes the uploads it starts to a journal of its own,
``<bat cache>/s3-uploads/<random>.jsonl``, and holds an ``flock`` on it while
it runs.  At its end the journal is deleted, or, when some uploads could not
be aborted, rewritten with those.  Every S3 pack first looks at the journals
nobody holds (their pack is gone): it aborts the uploads they list on its
own endpoint and bucket and forgets those the server no longer has.  Journals
for other endpoints wait for a pack that goes there.  Where ``flock`` does not
exist (Windows), a journal counts as abandoned a day after its last write.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from bat_core.cachedir import cache_dir

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DIRECTORY = "s3-uploads"
SUFFIX = ".jsonl"
#: Without flock: a journal untouched for this long belongs to a pack that is gone.
UNLOCKED_AGE_S = 86400.0


@dataclass(frozen=True)
class OpenUpload:
    endpoint: str
    bucket: str
    key: str
    upload_id: str


def _lock(fh: IO[str]) -> bool:
    """Take the journal's lock without waiting; False when a running pack holds it."""
    if fcntl is None:
        return time.time() - os.fstat(fh.fileno()).st_mtime > UNLOCKED_AGE_S
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _read(fh: IO[str]) -> list[OpenUpload]:
    out: list[OpenUpload] = []
    fh.seek(0)
    for line in fh:
        try:
            doc = json.loads(line)
            out.append(OpenUpload(str(doc["endpoint"]), str(doc["bucket"]), str(doc["key"]),
                                  str(doc["upload_id"])))
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a kill
    return out


def _write_all(fh: IO[str], uploads: Iterable[OpenUpload]) -> None:
    fh.seek(0)
    fh.truncate()
    for upload in uploads:
        fh.write(json.dumps(asdict(upload)) + "\n")
    fh.flush()


class Journal:
    """This pack's journal: created at the first multipart upload, held until :meth:`close`."""

    def __init__(self) -> None:
        self._fh: IO[str] | None = None
        self._path: Path | None = None
        self._failed = False

    def record(self, upload: OpenUpload) -> None:
        """Note an upload as soon as the server has given its id."""
        try:
            if self._fh is None:
                if self._failed:
                    return
                directory = cache_dir() / DIRECTORY
                directory.mkdir(parents=True, exist_ok=True)
                self._path = directory / f"{os.getpid()}-{secrets.token_hex(6)}{SUFFIX}"
                self._fh = open(self._path, "a+", encoding="utf-8")  # noqa: SIM115 - closed in close()
                _lock(self._fh)
            self._fh.write(json.dumps(asdict(upload)) + "\n")
            self._fh.flush()
        except OSError as exc:
            self._failed = True
            log.info("cannot keep a journal of multipart uploads (%s); a pack killed mid-upload leaves "
                     "its upload open on the server", exc)

    def close(self, still_open: Iterable[OpenUpload]) -> None:
        """The pack is over: forget the journal, or keep what could not be aborted for a later pack."""
        fh, path = self._fh, self._path
        self._fh = None
        if fh is None or path is None:
            return
        left = list(still_open)
        try:
            if left:
                _write_all(fh, left)
            else:
                path.unlink()
        except OSError as exc:
            log.info("cannot update the journal of multipart uploads %s: %s", path, exc)
        finally:
            fh.close()


def abort_abandoned(endpoint: str, bucket: str, abort: Callable[[OpenUpload], bool]) -> int:
    """Abort the uploads on ``endpoint``/``bucket`` listed by journals whose pack is gone.

    ``abort`` aborts one and says whether the server no longer has it (aborted,
    or gone already); the others stay in their journal.  Returns how many were
    settled.
    """
    try:
        paths = sorted((cache_dir() / DIRECTORY).glob(f"*{SUFFIX}"))
    except OSError:
        return 0
    settled = 0
    for path in paths:
        try:
            fh = open(path, "r+", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError:
            continue
        with contextlib.closing(fh):
            if not _lock(fh):
                continue
            uploads = _read(fh)
            left = []
            for upload in uploads:
                if (upload.endpoint, upload.bucket) == (endpoint, bucket) and abort(upload):
                    settled += 1
                else:
                    left.append(upload)
            try:
                if left:
                    if len(left) != len(uploads):
                        _write_all(fh, left)
                else:
                    path.unlink()
            except OSError:
                continue
    return settled
