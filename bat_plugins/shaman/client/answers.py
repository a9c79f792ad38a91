"""Bounded answers: a server may take only so long and send only so much before bat stops listening.

``requests`` applies its read timeout to each socket read, so a server that
dribbles its answer a byte at a time (a slow-loris) would hold a pack forever,
and it reads a body whole into memory, however big.  Here every answer has a
deadline, counted from the moment the request was sent: the connections are
urllib3 connections whose ``getresponse`` starts a timer that shuts the socket
when the deadline passes, headers and body alike.  The body is then read in
chunks up to a size limit (:func:`read_body`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any

import requests
import urllib3.connection
import urllib3.connectionpool

_current = threading.local()


class Watchdog:
    """Shuts the answer's socket at the deadline; says afterwards whether it had to."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._sock: socket.socket | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def arm(self, sock: socket.socket | None) -> None:
        with self._lock:
            if sock is None or self._timer is not None:
                return
            self._sock = sock
            self._timer = threading.Timer(self.seconds, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._sock is None:
                return
            self.fired = True
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)

    def disarm(self) -> None:
        with self._lock:
            self._sock = None
            if self._timer is not None:
                self._timer.cancel()

    def __enter__(self) -> Watchdog:
        _current.watchdog = self
        return self

    def __exit__(self, *exc: object) -> None:
        self.disarm()
        _current.watchdog = None


def _arm_current(conn: Any) -> None:
    watchdog = getattr(_current, "watchdog", None)
    if watchdog is not None:
        watchdog.arm(getattr(conn, "sock", None))


class _HTTPConnection(urllib3.connection.HTTPConnection):
    def getresponse(self) -> Any:  # type: ignore[override]
        _arm_current(self)  # the request is sent: the answer's time starts now
        return super().getresponse()


class _HTTPSConnection(urllib3.connection.HTTPSConnection):
    def getresponse(self) -> Any:  # type: ignore[override]
        _arm_current(self)
        return super().getresponse()


class _HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


POOL_CLASSES = {"http": _HTTPPool, "https": _HTTPSPool}


class TooLarge(Exception):
    """The answer is bigger than any honest answer to the request could be."""


def read_body(resp: requests.Response, limit: int, deadline: float) -> bytes:
    """The whole body of a streamed response, at most ``limit`` bytes (:class:`TooLarge` past it)."""
    length = resp.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        raise TooLarge(f"{int(length)} bytes")
    chunks: list[bytes] = []
    got = 0
    for chunk in resp.iter_content(64 * 1024):
        got += len(chunk)
        if got > limit:
            raise TooLarge(f"more than {limit} bytes")
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError()
    return b"".join(chunks)
