"""The one Shaman transfer, for both APIs: the engine's rounds, a codec for the wire.

Round by round the transfer engine hands :meth:`ShamanTransfer.prepare` the
files not yet settled; that sends them as a requirements request and returns
what the server lacks.  :meth:`~ShamanTransfer.send` uploads one file,
streaming it from disk, and says whether it was stored, already there or
deferred (someone else is uploading it); deferred and failed files come back
in the next round's requirements request, so every file is confirmed stored
before :meth:`~ShamanTransfer.finish` asks for the checkout.  What differs
between v2 and v3 is in :mod:`.v2` and :mod:`.v3`.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Any, NoReturn

import requests

from bat_core.targets import PackError, RetryableError, SendOutcome, Transfer, TransferIO, TransferItem

from . import handshake
from .codec import Codec, Entry, Reply, WireError
from .connection import LIST_TIMEOUT, TIMEOUT, Connection, FileBody, FileChanged, TransportError
from .urls import Endpoint
from .v2 import V2Codec
from .v2 import path_problem as v2_path_problem
from .v3 import V3Codec

log = logging.getLogger(__name__)

CODECS: dict[str, Callable[[], Codec]] = {"v2": V2Codec, "v3": V3Codec}
STARTS: dict[str, Callable[[Connection], dict[str, Any]]] = {"v2": handshake.start_v2, "v3": handshake.start_v3}


def _path_problem(api: str, path: str) -> str | None:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not UTF-8"
    if any(unicodedata.category(c) == "Cc" for c in path):
        return "its name holds a control character"
    return v2_path_problem(path) if api == "v2" else None


def _retryable(status: int) -> bool:
    return status in (408, 429) or (status >= 500 and status not in (501, 505, 507))


class ShamanTransfer(Transfer):
    """Uploads a pack's files to a Shaman server and creates the checkout."""

    needs_checksums = True
    workers = 4

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.codec = CODECS[endpoint.api]()
        self.checkout = endpoint.checkout
        self._conn: Connection | None = None
        self._server: dict[str, Any] = {}
        #: The checkout's files, each path once, in the order first seen.
        self._definition: dict[str, Entry] = {}
        self._location = ""
        self._left_out: list[str] = []
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return self.endpoint.shown

    def _connection(self) -> Connection:
        if self._conn is None:
            raise PackError(f"{self.where}: the transfer was not started")
        return self._conn

    # --- the engine's calls ---------------------------------------------------------

    def start(self) -> None:
        conn = Connection(self.endpoint, self.workers)
        try:
            self._server = STARTS[self.endpoint.api](conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _entry(self, item: TransferItem) -> Entry:
        if item.sha256 is None:
            raise PackError(f"{self.where}: no checksum for {item.source}")
        return Entry(item.sha256, item.size, item.dest.as_posix())

    def _record(self, entries: Sequence[Entry], items: Sequence[TransferItem]) -> None:
        """Remember the checkout's definition: every path once, the same content for each."""
        for entry, item in zip(entries, items, strict=True):
            problem = _path_problem(self.endpoint.api, entry.path)
            if problem:
                raise PackError(f"{item.source}: cannot be put in a Shaman checkout as {entry.path!r}: {problem}")
            known = self._definition.setdefault(entry.path, entry)
            if known != entry:
                raise PackError(f"{entry.path}: two different files would be packed at this path")

    def prepare(self, items: Sequence[TransferItem], io: TransferIO) -> list[TransferItem]:
        entries = [self._entry(item) for item in items]
        self._record(entries, items)
        asked: dict[str, Entry] = {}
        by_path: dict[str, TransferItem] = {}
        for entry, item in zip(entries, items, strict=True):
            if entry.path not in asked:
                asked[entry.path] = entry
                by_path[entry.path] = item
        io.check_abort()
        listed = list(asked.values())
        try:
            resp = self._connection().send(self.codec.requirements(listed), LIST_TIMEOUT)
        except TransportError as exc:
            raise RetryableError(f"requirements: {exc}") from None
        if not 200 <= resp.status_code < 300:
            self._refused("the requirements request", resp, listed)
        try:
            needed = self.codec.needed(resp.content, asked)
        except WireError as exc:
            raise PackError(f"{self.where}: {exc}") from None
        log.info("round %d: %d of %d file(s) to upload to %s", io.round, len(needed), len(asked), self.where)
        return [by_path[path] for path in needed]

    def _refused(self, what: str, resp: requests.Response, entries: Sequence[Entry] = ()) -> NoReturn:
        """Raise for an error answer: retryable for 5xx and the like, a pack error otherwise."""
        status = resp.status_code
        text = f"{status} {self.codec.error_text(resp.content, entries)}".strip()
        if _retryable(status):
            raise RetryableError(f"{what}: {text}")
        if status in handshake.AUTH_STATUSES:
            raise PackError(f"{self.where}: the server refuses our token ({text}); "
                            f"{handshake.auth_hint(self.endpoint.api)}")
        if 300 <= status < 400:
            moved = resp.headers.get("Location", "")
            raise PackError(f"{self.where}: {what} was redirected ({text}{' to ' + moved if moved else ''}); "
                            f"give the server's own URL")
        raise PackError(f"{self.where}: {what} was refused: {text}")

    def send(self, item: TransferItem, io: TransferIO) -> SendOutcome:
        entry = self._entry(item)
        path, headers = self.codec.upload(entry, io.can_defer)
        try:
            with FileBody(item.read_from, item.size, io) as body:
                resp = self._connection().request("POST", path, timeout=TIMEOUT, body=body, headers=headers)
        except FileChanged:
            raise PackError(f"{item.source} became shorter while it was uploaded; pack again") from None
        except TransportError as exc:
            if exc.closed and io.can_defer:
                # The server answers "someone else is uploading it" before reading the body and
                # hangs up; requests then sees the connection close instead of the answer.
                return SendOutcome.DEFERRED
            raise RetryableError(f"{entry.path}: {exc}") from None
        reply, message = self.codec.upload_reply(resp.status_code, resp.headers, resp.content)
        if reply is Reply.STORED:
            return SendOutcome.SENT
        if reply is Reply.ALREADY_STORED:
            return SendOutcome.ALREADY_THERE
        if reply is Reply.DEFER:
            if io.can_defer:
                return SendOutcome.DEFERRED
            raise RetryableError(f"{entry.path}: the server asked to come back later")
        if reply is Reply.RETRY:
            raise RetryableError(f"{entry.path}: {message}")
        if self.endpoint.api == "v3" and item.size == 0 and resp.status_code == 400 and "required" in message:
            # Flamenco 3's request validator refuses empty bodies (shaman-v3-protocol.md 4.3):
            # the file cannot be stored there, so the checkout goes without it.
            with self._lock:
                self._left_out.append(entry.path)
            return SendOutcome.ALREADY_THERE
        if resp.status_code == 417:
            raise PackError(f"{item.source}: the server refused the upload of {entry.path} ({message}); "
                            f"did the file change during the pack?")
        if resp.status_code in handshake.AUTH_STATUSES:
            raise PackError(f"{self.where}: the server refuses our token ({message}); "
                            f"{handshake.auth_hint(self.endpoint.api)}")
        raise PackError(f"{self.where}: upload of {entry.path} refused: {message}")

    def finish(self, completed: bool) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            if completed:
                self._create(conn)
        finally:
            conn.close()
            self._conn = None

    def _create(self, conn: Connection) -> None:
        if self._left_out:
            log.warning("%s cannot store empty files (Flamenco 3 refuses empty uploads); left out of the "
                        "checkout: %s", self.where, ", ".join(self._left_out))
        if not self.checkout:
            log.warning("no checkout %s given (%s): the files are on the server, no checkout was created",
                        "ID" if self.endpoint.api == "v2" else "path",
                        "shaman://host/#ID" if self.endpoint.api == "v2" else "flamenco://host/PATH")
            return
        left_out = set(self._left_out)
        entries = [e for e in self._definition.values() if e.path not in left_out]
        try:
            resp = conn.send(self.codec.create(entries, self.checkout), TIMEOUT)
        except TransportError as exc:
            raise PackError(f"creating checkout {self.checkout!r}: {exc}") from None
        if resp.status_code in handshake.AUTH_STATUSES or 300 <= resp.status_code < 400:
            self._refused("the checkout request", resp)
        try:
            self._location = self.codec.created(resp.status_code, resp.content, self.checkout)
        except WireError as exc:
            raise PackError(f"{self.where}: {exc}") from None
        log.info("checkout created at %s on %s", self._location, self.where)

    def report(self) -> dict[str, Any]:
        info: dict[str, Any] = {"checkout_path": self._location}
        if self.endpoint.api == "v3" and self._location and self._location != self.checkout:
            info["requested_checkout_path"] = self.checkout
        info["shaman_api"] = self.endpoint.api
        info["shaman_server"] = self.where + (f" ({self._server['server']})" if "server" in self._server else "")
        if self._left_out:
            info["left_out_empty_files"] = list(self._left_out)
        return info

    def display(self, dest: PurePosixPath) -> str | None:
        return f"{self._location}/{dest.as_posix()}" if self._location else None
