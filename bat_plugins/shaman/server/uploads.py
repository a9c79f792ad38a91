"""Receiving one upload: stream to a temporary file, verify, promote, tell the others.

Shared by both APIs; each maps the :class:`Outcome` to its own status codes.
Parallel receivers of one pair (clients that sent no defer header) each write
their own temporary file.  The first to promote a verified file wins; only
then are the others in this process told (they stop at their next chunk, or
within a second when their client is silent), and receivers in other
processes notice the blob when they look again (once a second) or when their
exclusive ``link`` fails.  A receiver that fails (bad checksum, client gone)
stops nobody.  The others' bodies stay readable, so an API can still drain
them before answering.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import StreamReader

from .bodies import BadBody, GzipInflater
from .store import FileStore, Pair, StoreError, TempUpload

log = logging.getLogger("bat.shaman")
T = TypeVar("T")
WRITE_BATCH = 1 << 20
OVERFLOW = "more bytes than declared"


class Outcome(enum.Enum):
    STORED = "stored"  # this upload made the blob
    ALREADY_STORED = "already stored"  # someone else has (or just made) it
    DEFER = "defer"  # someone else is uploading it and the client can come back
    SIZE_MISMATCH = "size mismatch"
    CHECKSUM_MISMATCH = "checksum mismatch"
    NO_SPACE = "no space"
    TIMEOUT = "timeout"  # the client stopped sending
    CLIENT_GONE = "client gone"
    BAD_BODY = "bad body"  # e.g. broken gzip
    IO_ERROR = "io error"


@dataclass
class UploadResult:
    outcome: Outcome
    received: int = 0  # bytes of (decoded) body read
    digest: str = ""
    detail: str = ""
    at_eof: bool = False  # the whole body was read

    @property
    def overflow(self) -> bool:
        return self.outcome is Outcome.SIZE_MISMATCH and self.detail == OVERFLOW


@dataclass
class _Group:
    """The receivers of one pair in this process."""

    members: int = 0
    stored: bool = False  # set by the one that promoted it


class Uploads:
    """The receivers of this process, and their disk-space reservations."""

    def __init__(self, store: FileStore, executor: Executor, *, idle_timeout_s: float,
                 min_free: int, poll_s: float = 1.0) -> None:
        self.store = store
        self.executor = executor
        self.idle_timeout_s = idle_timeout_s
        self.min_free = min_free
        self.poll_s = poll_s
        self._receivers: dict[Pair, _Group] = {}
        self._reserved = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def _space_problem(self, size: int) -> str | None:
        usage = shutil.disk_usage(self.store.uploading)
        available = usage.free - self.min_free - self._reserved
        if size > available:
            return (f"{size} bytes do not fit: {usage.free} bytes free, {self.min_free} kept free, "
                    f"{self._reserved} reserved by uploads in progress")
        return None

    async def receive(self, pair: Pair, content: StreamReader, *, can_defer: bool,
                      content_length: int | None, encoded: bool, name: str) -> UploadResult:
        """Receive the body in ``content`` as the blob ``pair``; the body may be left unread."""
        if await self.run(self.store.is_stored, pair):
            return UploadResult(Outcome.ALREADY_STORED)
        if can_defer and (pair in self._receivers or await self.run(self.store.is_uploading, pair)):
            return UploadResult(Outcome.DEFER)
        problem = await self.run(self._space_problem, pair.size)
        if problem:
            log.warning("refused %s (%s): %s", pair, name, problem)
            return UploadResult(Outcome.NO_SPACE, detail=problem)
        if content_length is not None and not encoded and content_length != pair.size:
            return UploadResult(Outcome.SIZE_MISMATCH, detail=f"Content-Length {content_length}")
        try:
            temp = await self.run(self.store.open_temp, pair)
        except (OSError, StoreError) as exc:
            log.error("cannot create a temporary file for %s: %s", pair, exc)
            return UploadResult(Outcome.IO_ERROR, detail=f"Unable to open file: {exc}")
        self._reserved += pair.size
        group = self._receivers.setdefault(pair, _Group())
        group.members += 1
        try:
            result = await self._stream(pair, temp, content, GzipInflater() if encoded else None, group)
            if result.outcome is Outcome.STORED:
                log.info("stored %s (%s)", pair, name)
            elif result.outcome not in (Outcome.ALREADY_STORED, Outcome.CLIENT_GONE):
                log.warning("upload of %s (%s) failed: %s %s", pair, name, result.outcome.value, result.detail)
            if result.outcome in (Outcome.STORED, Outcome.ALREADY_STORED):
                group.stored = True  # only now: the blob exists
            return result
        finally:
            group.members -= 1
            if not group.members:
                self._receivers.pop(pair, None)
            self._reserved -= pair.size
            # Synchronous: this must happen even when the handler is being cancelled.
            self.store.discard(temp)

    async def _stream(self, pair: Pair, temp: TempUpload, content: StreamReader,
                      inflater: GzipInflater | None, group: _Group) -> UploadResult:
        received = 0
        buf = bytearray()
        next_poll = time.monotonic() + self.poll_s
        idle_until = time.monotonic() + self.idle_timeout_s

        async def flush() -> UploadResult | None:
            try:
                await self.run(temp.write, bytes(buf))
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    return UploadResult(Outcome.NO_SPACE, received, detail="the disk is full")
                return UploadResult(Outcome.IO_ERROR, received, detail=f"I/O error: {exc}")
            buf.clear()
            return None

        while True:
            # Wake up at least once per poll interval, also while the client sends
            # nothing, to notice a blob another process stored meanwhile.
            wait = max(0.0, min(next_poll, idle_until) - time.monotonic())
            try:
                async with asyncio.timeout(wait):
                    chunk = await content.readany()
            except TimeoutError:
                if group.stored:
                    return UploadResult(Outcome.ALREADY_STORED, received)
                now = time.monotonic()
                if now >= idle_until:
                    return UploadResult(Outcome.TIMEOUT, received, detail=f"no data for {self.idle_timeout_s:g} s")
                if now >= next_poll:
                    next_poll = now + self.poll_s
                    if await self.run(self.store.is_stored, pair):
                        return UploadResult(Outcome.ALREADY_STORED, received)
                continue
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                return UploadResult(Outcome.CLIENT_GONE, received, detail=str(exc))
            except Exception as exc:  # aiohttp's payload errors: truncated body, broken gzip
                return UploadResult(Outcome.BAD_BODY, received, detail=str(exc) or type(exc).__name__)
            if group.stored:
                return UploadResult(Outcome.ALREADY_STORED, received)
            if not chunk:
                break
            idle_until = time.monotonic() + self.idle_timeout_s
            try:
                for piece in inflater.feed(chunk) if inflater else (chunk,):
                    received += len(piece)
                    if received > pair.size:
                        return UploadResult(Outcome.SIZE_MISMATCH, received, detail=OVERFLOW)
                    buf += piece
                    if len(buf) >= WRITE_BATCH and (failed := await flush()):
                        return failed
            except BadBody as exc:
                return UploadResult(Outcome.BAD_BODY, received, detail=str(exc))
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.poll_s
                if await self.run(self.store.is_stored, pair):
                    return UploadResult(Outcome.ALREADY_STORED, received)
        if inflater is not None:
            try:
                inflater.finish()
            except BadBody as exc:
                return UploadResult(Outcome.BAD_BODY, received, detail=str(exc), at_eof=True)
        if buf and (failed := await flush()):
            failed.at_eof = True
            return failed
        if received != pair.size:
            return UploadResult(Outcome.SIZE_MISMATCH, received, at_eof=True)
        digest = temp.hexdigest()
        if digest != pair.sha:
            return UploadResult(Outcome.CHECKSUM_MISMATCH, received, digest=digest, at_eof=True)
        try:
            promoted = await self.run(self.store.promote, temp)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return UploadResult(Outcome.NO_SPACE, received, detail="the disk is full", at_eof=True)
            return UploadResult(Outcome.IO_ERROR, received, detail=f"I/O error: {exc}", at_eof=True)
        except StoreError as exc:
            return UploadResult(Outcome.IO_ERROR, received, detail=str(exc), at_eof=True)
        return UploadResult(Outcome.STORED if promoted else Outcome.ALREADY_STORED, received,
                            digest=digest, at_eof=True)
