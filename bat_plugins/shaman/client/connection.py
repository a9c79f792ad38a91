"""HTTP to a Shaman server: one ``requests`` session, errors as one line, file bodies from disk.

``requests`` streams a file object as the body with its ``Content-Length``
and pools connections for the transfer's worker threads.  Nothing is retried
below this module: urllib3 never replays a body (a half-sent upload is the
transfer engine's to retry, in its next round, with the file reopened) and
redirects are not followed (a redirected POST would lose its body).  Every
answer must arrive whole within the request's timeout and be no bigger than
an honest answer could be (:mod:`.answers`): a hostile or broken server cannot
hold a pack or fill its memory.
"""

from __future__ import annotations

import errno
import http.client
import os
import ssl
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import requests.adapters
import requests.utils
import urllib3.util.retry

from bat_core.targets import CHUNK_SIZE, TransferIO

from .answers import POOL_CLASSES, TooLarge, Watchdog, read_body
from .codec import WireRequest, first_line
from .urls import Endpoint

#: Seconds: to connect; to wait for a file list's answer; for any other socket operation.
CONNECT_TIMEOUT = 10.0
LIST_TIMEOUT = 120.0
TIMEOUT = 300.0
#: The largest answer to a request without a list in it (tokens, versions, upload answers); one with
#: a list may answer twice its size more (each path once, with a word or a status).
ANSWER_LIMIT = 1 << 20


class TransportError(Exception):
    """A request got no usable answer; ``closed`` when the server closed or reset the connection."""

    def __init__(self, message: str, closed: bool = False) -> None:
        super().__init__(message)
        self.closed = closed


class FileChanged(Exception):
    """The file being uploaded is shorter than when it was hashed."""


class _Adapter(requests.adapters.HTTPAdapter):
    """Connections that send bodies in CHUNK_SIZE blocks (urllib3's default is 16 KiB)."""

    def init_poolmanager(self, connections: int, maxsize: int, block: bool = False,
                         **pool_kwargs: Any) -> None:
        pool_kwargs.setdefault("blocksize", CHUNK_SIZE)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOL_CLASSES)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(POOL_CLASSES)
        return manager


class FileBody:
    """One upload attempt's body: the file, read from disk a chunk at a time.

    Reads at most CHUNK_SIZE at a time, reports bytes and checks for an abort
    between chunks, and never sends more than the size that was hashed (the
    ``Content-Length``).  No ``__iter__``:
    ``requests`` then sends it with ``Content-Length``, never chunked.
    """

    def __init__(self, path: Path, size: int, io: TransferIO) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = size
        self._left = size
        self._io = io

    def __len__(self) -> int:
        return self._size

    def read(self, n: int | None = -1) -> bytes:
        self._io.check_abort()
        if self._left <= 0:
            return b""
        want = min(self._left, CHUNK_SIZE) if n is None or n < 0 else min(self._left, CHUNK_SIZE, n)
        data = self._file.read(want)
        if not data:
            raise FileChanged()
        self._left -= len(data)
        self._io.progress(len(data))
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FileBody:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _innermost(exc: BaseException) -> BaseException:
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = exc.__cause__ or exc.__context__
        reason = getattr(exc, "reason", None)
        if isinstance(reason, BaseException):
            nxt = reason
        elif exc.args and isinstance(exc.args[0], BaseException):
            nxt = exc.args[0]
        if nxt is None:
            break
        exc = nxt
    return exc


def _ssl_reason(exc: BaseException) -> str:
    inner = _innermost(exc)
    if isinstance(inner, ssl.SSLError):
        reason = inner.reason or inner.strerror or str(inner)
        return str(reason).replace("_", " ").lower()
    return str(inner)


def describe(exc: requests.RequestException, shown: str, timeout: float) -> TransportError:
    """A ``requests`` exception as one line saying what went wrong with the server."""
    if isinstance(exc, requests.exceptions.SSLError):
        reason = _ssl_reason(exc)
        hint = ""
        if any(w in reason for w in ("wrong version number", "record layer", "http request", "unknown protocol")):
            hint = "; is it a plain-HTTP server? Then use shaman+http:// or flamenco+http://"
        elif "certificate" in reason:
            hint = "; the server's certificate is not trusted (REQUESTS_CA_BUNDLE names a CA bundle)"
        return TransportError(f"TLS error talking to {shown}: {reason}{hint}")
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return TransportError(f"cannot reach {shown}: no connection within {CONNECT_TIMEOUT:.0f} s")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return TransportError(f"no answer from {shown} within {timeout:g} s")
    inner = _innermost(exc)
    if isinstance(inner, http.client.HTTPException) and not isinstance(inner, http.client.RemoteDisconnected):
        said = first_line(str(inner.args[0]) if inner.args else "", 60)
        return TransportError(f"{shown} did not answer in HTTP ({type(inner).__name__}"
                              f"{': ' + repr(said) if said else ''})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if isinstance(inner, OSError) and inner.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH,
                                                            errno.ENETUNREACH):
            return TransportError(f"cannot reach {shown}: {(inner.strerror or str(inner)).lower()}")
        text = str(inner)
        if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
            host = urllib.parse.urlsplit(shown).hostname
            return TransportError(f"cannot reach {shown}: unknown host {host}")
        if "NewConnectionError" in type(inner).__name__ or "Failed to establish" in text:
            return TransportError(f"cannot reach {shown}: {text.rsplit(':', 1)[-1].strip()}")
        return TransportError(f"{shown} closed the connection", closed=True)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return TransportError(f"{shown} sent a broken answer", closed=True)
    return TransportError(f"request to {shown} failed: {type(inner).__name__}: {inner}")


class Connection:
    """The session every request to one server goes through."""

    def __init__(self, endpoint: Endpoint, workers: int) -> None:
        self.endpoint = endpoint
        self.shown = endpoint.shown
        self.session = requests.Session()
        no_retries = urllib3.util.retry.Retry(total=0, connect=0, read=0, redirect=0, status=0, other=0,
                                              raise_on_redirect=False, raise_on_status=False)
        adapter = _Adapter(pool_connections=1, pool_maxsize=max(1, workers) + 1, max_retries=no_retries)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = f"bat/{_version()} (Shaman client)"
        # The environment (proxies, NO_PROXY, a CA bundle) is read once here: requests would
        # otherwise scan os.environ on every request, a third of the client's time per upload.
        self.session.proxies = requests.utils.get_environ_proxies(endpoint.base)
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.session.verify = bundle
        self.session.trust_env = False

    def set_token(self, token: str) -> None:
        self.session.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return urllib.parse.urljoin(self.endpoint.base, path)

    def request(self, method: str, path: str, *, timeout: float = TIMEOUT, body: Any = None,
                headers: Mapping[str, str] | None = None) -> requests.Response:
        """Make one request; :class:`TransportError` when no whole answer came back within ``timeout``
        seconds of sending it (or one too big to be honest)."""
        limit = ANSWER_LIMIT + (2 * len(body) if isinstance(body, bytes | bytearray) else 0)
        with Watchdog(timeout) as watchdog:
            try:
                resp = self.session.request(method, self.url(path), data=body, headers=dict(headers or {}),
                                            timeout=(CONNECT_TIMEOUT, timeout), allow_redirects=False,
                                            stream=True)
                try:
                    started = time.monotonic()
                    resp._content = read_body(resp, limit, started + timeout)
                finally:
                    resp.close()
            except TooLarge as exc:
                raise TransportError(f"{self.shown} sent an answer too large to be one ({exc}) to {method} "
                                     f"{first_line(path, 80)}") from None
            except (requests.RequestException, TimeoutError, OSError) as exc:
                if watchdog.fired or isinstance(exc, TimeoutError):
                    raise TransportError(f"no answer from {self.shown} within {timeout:g} s") from None
                if isinstance(exc, requests.RequestException):
                    raise describe(exc, self.shown, timeout) from None
                raise TransportError(f"request to {self.shown} failed: {exc.strerror or exc}") from None
        return resp

    def send(self, request: WireRequest, timeout: float = TIMEOUT) -> requests.Response:
        return self.request(request.method, request.path, timeout=timeout, body=request.body,
                            headers=request.headers)

    def close(self) -> None:
        self.session.close()


def _version() -> str:
    from bat_core import __version__

    return str(__version__)
