"""The aiohttp application: configuration, shared request helpers, start-up and clean-up.

aiohttp because the protocol needs a server that can answer an upload before
reading its body (208 for a file already stored) and then close the
connection; the routes of each API are in :mod:`.routes_v2` and
:mod:`.routes_v3`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from .bodies import decode_all, encoding_supported, is_gzip
from .store import FileStore
from .uploads import Uploads

log = logging.getLogger("bat.shaman")

# An early answer drains at most this much unread body first, so the client can
# read the answer; with more left the connection is closed (as Go's net/http does).
DRAIN_LIMIT = 256 * 1024
DRAIN_TIMEOUT_S = 10.0
MAX_DEFINITION_BYTES = 64 * 1024 * 1024
CLEAN_INTERVAL_S = 600.0


@dataclass
class ServerConfig:
    storage: Path
    checkouts: Path
    api: str = "both"  # v2, v3 or both
    jwt_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    auth: bool = True  # v2 JWT checks
    get_token: bool = True
    v3_token: str | None = None
    min_free: int = 0
    idle_timeout_s: float = 300.0
    worker_paths: dict[str, str] = field(default_factory=dict)  # platform -> checkouts path

    @property
    def v2(self) -> bool:
        return self.api in ("v2", "both")

    @property
    def v3(self) -> bool:
        return self.api in ("v3", "both")


@dataclass
class ServerState:
    config: ServerConfig
    store: FileStore
    checkouts: Path
    executor: ThreadPoolExecutor
    uploads: Uploads
    background: set[asyncio.Task[None]] = field(default_factory=set)


STATE = web.AppKey("state", ServerState)


def state_of(request: web.Request) -> ServerState:
    return request.app[STATE]


def spawn(state: ServerState, coro: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine in the background, keeping a reference until it ends."""
    task = asyncio.ensure_future(coro)
    state.background.add(task)
    task.add_done_callback(state.background.discard)


async def finish_unread(request: web.Request, response: web.StreamResponse, *, already_read: int = 0,
                        drain_limit: int | None = DRAIN_LIMIT) -> web.StreamResponse:
    """Make ``response`` safe to send while the request body is (partly) unread.

    Up to ``drain_limit`` bytes (None: all of it) are read and dropped so the
    client sees the answer and the connection stays usable; if more is left,
    the answer says ``Connection: close`` and the connection is closed after it
    (the client may then see a broken connection instead of the answer).
    """
    content = request.content
    if content.is_eof() or request.content_length == already_read:
        return response
    remaining = None if request.content_length is None else request.content_length - already_read
    if drain_limit is None or remaining is None or remaining <= drain_limit:
        drained = 0
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S if drain_limit is not None else None):
                while drain_limit is None or drained <= drain_limit:
                    async with asyncio.timeout(state_of(request).config.idle_timeout_s):
                        chunk = await content.readany()
                    if not chunk:
                        return response
                    drained += len(chunk)
        except Exception:
            pass
    response.force_close()
    return response


async def read_definition(request: web.Request) -> bytes | None:
    """The whole (small) body of a file-list request, decoded; None when it is too big.

    Raises :class:`BadBody` for broken gzip.
    """
    if request.content_length is not None and request.content_length > MAX_DEFINITION_BYTES:
        return None
    data = bytearray()
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_DEFINITION_BYTES:
            return None
    return decode_all(bytes(data), is_gzip(request.headers.get("Content-Encoding")), MAX_DEFINITION_BYTES)


def encoding_problem(request: web.Request) -> str | None:
    """gzip and identity bodies are accepted, anything else is refused."""
    return None if encoding_supported(request.headers.get("Content-Encoding")) else "Content-Encoding not supported"


async def _clean_periodically(state: ServerState) -> None:
    while True:
        try:
            removed = await asyncio.get_running_loop().run_in_executor(state.executor, state.store.clean_stale_temps)
            if removed:
                log.info("removed %d temporary file(s) of dead uploads", removed)
        except OSError as exc:
            log.warning("cleaning stale uploads: %s", exc)
        await asyncio.sleep(CLEAN_INTERVAL_S)


def make_app(config: ServerConfig) -> web.Application:
    """The application serving the APIs ``config.api`` selects (layout is created here)."""
    from . import routes_v2, routes_v3

    store = FileStore(config.storage)
    store.ensure_layout()
    checkouts = Path(config.checkouts)
    checkouts.mkdir(parents=True, exist_ok=True)
    checkouts = checkouts.resolve()
    executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="bat-shaman")
    uploads = Uploads(store, executor, idle_timeout_s=config.idle_timeout_s, min_free=config.min_free)
    state = ServerState(config, store, checkouts, executor, uploads)

    app = web.Application(middlewares=[routes_v3.json_errors_middleware])
    app[STATE] = state
    if config.v2:
        routes_v2.add_routes(app)
    routes_v3.add_routes(app)

    async def on_startup(app: web.Application) -> None:
        spawn(state, _clean_periodically(state))

    async def on_cleanup(app: web.Application) -> None:
        for task in list(state.background):
            task.cancel()
        for task in list(state.background):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        executor.shutdown(wait=True, cancel_futures=True)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
