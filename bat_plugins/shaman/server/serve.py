"""Run the application until SIGINT or SIGTERM, then stop cleanly.

A stop cancels uploads in flight; each removes its temporary file on the way
out.  A server killed outright leaves its temporary files behind, unlocked,
and the next clean-up (any server's) removes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from .app import ServerConfig, make_app


async def serve(config: ServerConfig, host: str, port: int, ready: Callable[[list[str]], None]) -> None:
    """Serve until a stop signal; ``ready`` gets the base URLs once the socket listens."""
    app = make_app(config)
    # lingering_time=0: a request whose body was deliberately left unread (an
    # early 208) closes its connection instead of being read to the end.
    # auto_decompress=False: gzip bodies are decoded by .bodies, other encodings refused.
    runner = web.AppRunner(app, access_log=logging.getLogger("bat.shaman.access"), lingering_time=0,
                           auto_decompress=False, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        urls = []
        for addr in runner.addresses:
            h, p = addr[0], addr[1]
            urls.append(f"http://[{h}]:{p}/" if ":" in h else f"http://{h}:{p}/")
        ready(urls)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
