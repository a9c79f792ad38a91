"""A FAULT-INJECTING TEST PROXY in front of ``bat shaman serve``: answers the real server never gives.

Everything goes to the real server unless the test's ``fault`` function
answers a request itself (a 5xx storm, "204" for a file it then drops, a
hostile requirements answer, Flamenco 3's refusal of empty uploads) or
changes the body it forwards (a corrupted upload).  aiohttp, on 127.0.0.1
with a free port, in a thread of the test process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import ClientSession, web

_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding", "date",
        "server"}


@dataclass
class Seen:
    """One request the proxy received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    #: What the real server answered (None when the fault answered instead).
    status: int | None = None
    answer: bytes = b""


@dataclass(frozen=True)
class HangUp:
    """Close the connection without answering."""


@dataclass(frozen=True)
class Delay:
    """Wait this long, then forward the request."""

    seconds: float


#: A fault: answer the request (a response), forward another body (bytes), hang up, wait, or
#: forward it as it is (None).
Fault = Callable[[Seen], "web.StreamResponse | bytes | HangUp | Delay | None"]


@dataclass
class FaultProxy:
    upstream: str  # http://127.0.0.1:PORT
    fault: Fault | None = None
    #: Rewrites the real server's answer: (request, status, body) -> (status, body), or None to keep it.
    rewrite: Callable[[Seen, int, bytes], tuple[int, bytes] | None] | None = None
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def requests_to(self, fragment: str, method: str = "POST") -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == method and fragment in s.path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        seen = Seen(request.method, request.path_qs, dict(request.headers), await request.read())
        with self._lock:
            self.seen.append(seen)
        body = seen.body
        if self.fault is not None:
            answer = self.fault(seen)
            if isinstance(answer, web.StreamResponse):
                return answer
            if isinstance(answer, bytes):
                body = answer
            if isinstance(answer, HangUp):
                assert request.transport is not None
                request.transport.abort()
                raise asyncio.CancelledError()
            if isinstance(answer, Delay):
                await asyncio.sleep(answer.seconds)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with self._client.request(request.method, self.upstream + request.path_qs, data=body,
                                        headers=headers, allow_redirects=False) as resp:
            data = await resp.read()
            status = resp.status
            out = {k: v for k, v in resp.headers.items() if k.lower() not in _HOP}
        seen.status, seen.answer = status, data
        if self.rewrite is not None:
            changed = self.rewrite(seen, status, data)
            if changed is not None:
                status, data = changed
        return web.Response(status=status, body=data, headers=out)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._client = ClientSession(auto_decompress=False)
            app = web.Application(client_max_size=1 << 30)
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        async def stop() -> None:
            await self._client.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
