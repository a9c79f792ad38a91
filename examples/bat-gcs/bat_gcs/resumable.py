"""Resumable uploads of large files: chunk by chunk, resumed where GCS says it got to.

A resumable upload is a session URL (created with the object's metadata)
that takes the content in chunks of a multiple of 256 KiB, each a ``PUT``
with ``Content-Range``.  GCS answers 308 with the bytes it has so far until
the last chunk, then 200 with the object.  The session URL is itself the
authorisation for these requests, so chunks go out on a plain ``requests``
session shared by the worker threads (urllib3's pool is thread-safe).

Within one send, a dropped connection or a 5xx is healed on the spot: ask
GCS how far it got (``Content-Range: bytes */SIZE``) and go on from there.
When that keeps failing, the send raises ``RetryableError`` and the session
is kept: the engine's next round resumes it instead of starting over.
Between chunks the abort flag is checked; an aborted or failed upload is
cancelled (``DELETE`` on the session), so nothing half-written is left, and
an object only ever appears complete.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass

import requests

from bat_core.targets import Aborted, RetryableError, TransferIO

from .errors import NETWORK_ERRORS, status_error
from .source import SourceReader

#: Resumable chunks must be multiples of this (GCS's rule).
CHUNK_QUANTUM = 256 * 1024
#: Tries of one chunk within one send before the engine gets the file back.
CHUNK_TRIES = 4
#: Seconds to wait between tries (doubling), woken early by an abort.
FIRST_BACKOFF = 0.5
#: (connect, read) timeouts of one request, in seconds.
TIMEOUT = (10.0, 120.0)

#: A status query that failed in one of these ways is simply tried again.
RETRY_STATUS_ERRORS: tuple[type[BaseException], ...] = (RetryableError, *NETWORK_ERRORS)

_RANGE = re.compile(r"bytes=0-(\d+)")


class SessionGone(Exception):
    """GCS no longer knows the session (expired after a week, or cancelled): start a new one."""


@dataclass
class Finished:
    """The object resource GCS answered the last chunk with."""

    resource: dict[str, object]


class Chunks:
    """Sends one file through one session URL; thread-confined (one worker per upload)."""

    def __init__(self, http: requests.Session, url: str, reader: SourceReader, io: TransferIO,
                 chunk_size: int, where: str) -> None:
        if chunk_size % CHUNK_QUANTUM:
            raise ValueError(f"chunk size must be a multiple of {CHUNK_QUANTUM}")
        self.http = http
        self.url = url
        self.reader = reader
        self.io = io
        self.size = reader.size
        self.chunk_size = chunk_size
        self.where = where
        self.reported = 0

    # --- requests -------------------------------------------------------------------

    def _committed(self, response: requests.Response) -> int:
        """Bytes GCS holds, from a 308 answer (no ``Range``: none)."""
        match = _RANGE.fullmatch(response.headers.get("Range", "").strip())
        return int(match.group(1)) + 1 if match else 0

    def _answer(self, response: requests.Response) -> int | Finished:
        """Committed bytes (308), the finished object (200/201), or the error to raise."""
        if response.status_code == 308:
            return self._committed(response)
        if response.status_code in (200, 201):
            try:
                resource = response.json()
            except ValueError:
                raise RetryableError(f"{self.where}: the last chunk's answer is not JSON") from None
            return Finished(resource)
        if response.status_code in (404, 410):
            raise SessionGone()
        raise status_error(response.status_code, _error_message(response), self.where)

    def status(self) -> int | Finished:
        """Ask how far the upload got."""
        response = self.http.put(self.url, data=b"", headers={"Content-Range": f"bytes */{self.size}"},
                                 timeout=TIMEOUT)
        return self._answer(response)

    def _put(self, offset: int, data: bytes) -> int | Finished:
        end = offset + len(data) - 1
        headers = {"Content-Range": f"bytes {offset}-{end}/{self.size}"}
        response = self.http.put(self.url, data=data, headers=headers, timeout=TIMEOUT)
        return self._answer(response)

    # --- the loop -------------------------------------------------------------------

    def _progress(self, committed: int) -> None:
        if committed > self.reported:
            self.io.progress(committed - self.reported)
            self.reported = committed

    def _wait(self, tries: int) -> None:
        if self.io.abort_event.wait(FIRST_BACKOFF * 2 ** (tries - 1)):
            raise Aborted()

    def send(self, committed: int) -> Finished:
        """Send everything after ``committed``; the object GCS made of it."""
        self._progress(committed)
        tries = 0
        while True:
            self.io.check_abort()
            data = self.reader.read_at(committed, self.chunk_size)
            try:
                # Everything sent but not finalised (an answer was lost): ask, which finalises it.
                answer = self._put(committed, data) if data else self.status()
            except NETWORK_ERRORS as exc:
                answer = None
                why = f"{type(exc).__name__}"
            except RetryableError as exc:
                answer = None
                why = str(exc)
            if answer is None:
                tries += 1
                if tries >= CHUNK_TRIES:
                    raise RetryableError(f"{self.where}: upload interrupted at byte {committed} ({why})")
                self._wait(tries)
                try:
                    answer = self.status()
                except RETRY_STATUS_ERRORS:
                    continue  # ask again with the next try
            if isinstance(answer, Finished):
                return answer
            if answer > committed:
                tries = 0
            committed = answer
            self._progress(committed)


def _error_message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", ""))
    return str(error or "")


def cancel(http: requests.Session, url: str) -> None:
    """Drop a session, best effort: GCS forgets what it received (it would after a week anyway)."""
    with contextlib.suppress(Exception):
        http.delete(url, timeout=(5.0, 5.0))


class Sessions:
    """Session URLs of unfinished uploads, kept across rounds, keyed by object and content."""

    def __init__(self) -> None:
        self._urls: dict[tuple[str, str, int], str] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int]) -> str | None:
        with self._lock:
            return self._urls.get(key)

    def put(self, key: tuple[str, str, int], url: str) -> None:
        with self._lock:
            self._urls[key] = url

    def pop(self, key: tuple[str, str, int]) -> str | None:
        with self._lock:
            return self._urls.pop(key, None)

    def drain(self) -> list[str]:
        with self._lock:
            urls = list(self._urls.values())
            self._urls.clear()
            return urls
