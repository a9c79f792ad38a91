"""Flamenco 3's Shaman API under ``/api/v3/``, from the same store as v2.

Status codes as ``shaman-v3-protocol.md`` documents them (the OpenAPI answers
Flamenco's own server does not always send): 204 stored, 208 already stored,
425 someone else is uploading, 417 size or checksum wrong, 424 files missing at
checkout, 409 no free checkout path, 400 for anything malformed, 503 when this
server does not serve v3.  Paths are validated; a taken checkout path gets a
``-xxxx`` suffix.
"""

from __future__ import annotations

import asyncio
import email.header
import json
import logging
import platform
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .app import ServerState, encoding_problem, finish_unread, read_definition, spawn, state_of
from .auth import bearer, same_secret
from .bodies import is_gzip
from .checkouts import CheckoutError, CheckoutExists, MissingFiles, UnsafeLocation, create_checkout, v3_location_problem
from .definitions import FileSpec, parse_json_files
from .store import MAX_SIZE, SHA_RE, Pair
from .uploads import Outcome

log = logging.getLogger("bat.shaman")
PREFIX = "/api/v3"
_SIZE = re.compile(r"[0-9]{1,19}")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def err(status: int, message: str) -> web.Response:
    return web.json_response({"code": status, "message": message}, status=status)


@web.middleware
async def json_errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Routing errors under /api/v3/ as JSON, like Flamenco's echo server."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if not request.path.startswith(PREFIX + "/") or exc.status < 400:
            raise
        return web.json_response({"message": exc.reason}, status=exc.status,
                                 headers={k: v for k, v in exc.headers.items() if k == "Allow"})


def _guard(handler: Handler) -> Handler:
    """503 when v3 is off, 401 without the configured bearer token."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        state = state_of(request)
        if not state.config.v3:
            return await finish_unread(request, err(503, "shaman server not active"))
        token = state.config.v3_token
        if token is not None and not same_secret(bearer(request.headers), token):
            resp = err(401, "missing or wrong bearer token")
            resp.headers["WWW-Authenticate"] = "Bearer"
            return await finish_unread(request, resp)
        return await handler(request)

    return guarded


def _location(state: ServerState, system: str) -> str:
    return state.config.worker_paths.get(system, str(state.checkouts))


async def version(request: web.Request) -> web.StreamResponse:
    from bat_core import __version__

    return web.json_response({"version": __version__, "shortversion": __version__,
                              "name": "bat shaman server", "git": ""})


async def configuration(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    return web.json_response({"storageLocation": _location(state, platform.system().lower()),
                              "shamanEnabled": state.config.v3, "isFirstRun": False})


async def shared_storage(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    audience, system = request.match_info["audience"], request.match_info["platform"]
    if audience not in ("users", "workers"):
        return err(400, f"unknown audience {audience!r}: users or workers")
    return web.json_response({"location": _location(state, system), "audience": audience,
                              "platform": system, "shamanEnabled": state.config.v3})


async def _json_body(request: web.Request) -> Any | web.StreamResponse:
    if request.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/json":
        return await finish_unread(request, err(400, "request body has an error: header Content-Type "
                                                     "has unexpected value; expected application/json"))
    problem = encoding_problem(request)
    if problem:
        return await finish_unread(request, err(400, problem))
    try:
        body = await read_definition(request)
    except Exception as exc:
        return err(400, f"request body has an error: {exc or type(exc).__name__}")
    if body is None:
        return await finish_unread(request, err(413, "request body too large"), drain_limit=0)
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return err(400, f"request body has an error: invalid JSON: {exc}")


def _states(state: ServerState, specs: list[FileSpec]) -> tuple[list[dict[str, Any]], list[Pair]]:
    out: list[dict[str, Any]] = []
    stored: list[Pair] = []
    seen: set[Pair] = set()
    for spec in specs:
        if spec.pair in seen:
            continue
        seen.add(spec.pair)
        st = state.store.state(spec.pair)
        if st == "stored":
            stored.append(spec.pair)
        else:
            out.append({"sha": spec.sha, "size": spec.size, "path": spec.path, "status": st})
    return out, stored


async def requirements(request: web.Request) -> web.StreamResponse:
    doc = await _json_body(request)
    if isinstance(doc, web.StreamResponse):
        return doc
    try:
        specs = parse_json_files(doc)
    except ValueError as exc:
        return err(400, f"request body has an error: {exc}")
    state = state_of(request)
    files, stored = await asyncio.get_running_loop().run_in_executor(state.executor, _states, state, specs)
    if stored:
        spawn(state, _touch_later(state, stored))
    return web.json_response({"files": files})


async def _touch_later(state: ServerState, pairs: list[Pair]) -> None:
    def touch() -> None:
        for pair in pairs:
            state.store.touch(pair)

    await asyncio.get_running_loop().run_in_executor(state.executor, touch)


def _url_pair(request: web.Request) -> Pair | web.Response:
    checksum, size = request.match_info["checksum"], request.match_info["filesize"]
    if not _SIZE.fullmatch(size) or int(size) > MAX_SIZE:
        return err(400, f"invalid format for parameter filesize: {size!r}")
    if not SHA_RE.fullmatch(checksum):
        return err(400, f"invalid checksum {checksum!r}: must be 64 lowercase hexadecimal digits")
    return Pair(checksum, int(size))


async def file_status(request: web.Request) -> web.StreamResponse:
    pair = _url_pair(request)
    if isinstance(pair, web.Response):
        return pair
    state = state_of(request)
    st = await asyncio.get_running_loop().run_in_executor(state.executor, state.store.state, pair)
    return web.json_response({"status": st})


def _original_filename(raw: str) -> str:
    """Decode an RFC 2047 (UTF-8) or plain ASCII header value; ValueError otherwise."""
    parts = []
    for chunk, charset in email.header.decode_header(raw):
        if isinstance(chunk, str):
            parts.append(chunk)
        elif charset in (None, "utf-8", "utf8", "us-ascii"):
            parts.append(chunk.decode(charset or "ascii"))
        else:
            raise ValueError(charset)
    return "".join(parts)


async def upload(request: web.Request) -> web.StreamResponse:
    pair = _url_pair(request)
    if isinstance(pair, web.Response):
        return await finish_unread(request, pair)
    if request.headers.get("Content-Type", "").split(";")[0].strip().lower() != "application/octet-stream":
        return await finish_unread(request, err(400, "request body has an error: header Content-Type has "
                                                     "unexpected value; expected application/octet-stream"))
    problem = encoding_problem(request)
    if problem:
        return await finish_unread(request, err(400, problem))
    defer_values = request.headers.getall("X-Shaman-Can-Defer-Upload", [])
    if len(defer_values) > 1 or (defer_values and defer_values[0] not in _TRUE | _FALSE):
        return await finish_unread(request, err(400, "invalid format for parameter X-Shaman-Can-Defer-Upload"))
    can_defer = bool(defer_values) and defer_values[0] in _TRUE
    raw_name = request.headers.get("X-Shaman-Original-Filename", "")
    try:
        name = _original_filename(raw_name) if raw_name else "-not specified-"
    except (ValueError, LookupError, UnicodeDecodeError):
        return await finish_unread(request, err(400, f"invalid X-Shaman-Original-Filename header: {raw_name!r}"))
    state = state_of(request)
    encoded = is_gzip(request.headers.get("Content-Encoding"))
    result = await state.uploads.receive(pair, request.content, can_defer=can_defer,
                                         content_length=request.content_length, encoded=encoded, name=name)
    out = result.outcome
    drain: int | None = None if out in (Outcome.ALREADY_STORED, Outcome.DEFER) else 256 * 1024
    if out is Outcome.STORED:
        resp = web.Response(status=204)
    elif out is Outcome.ALREADY_STORED:
        resp = web.Response(status=208, content_type="text/plain")
    elif out is Outcome.DEFER:
        resp = web.Response(status=425)
    elif out is Outcome.SIZE_MISMATCH:
        got = (f"more than {pair.size}" if result.overflow else
               f"{result.received} (Content-Length)" if result.detail.startswith("Content-Length") else
               str(result.received))
        resp = err(417, f"file size mismatched, declared {pair.size} but received {got} bytes")
    elif out is Outcome.CHECKSUM_MISMATCH:
        resp = err(417, f"file SHA256 mismatched, declared {pair.sha} but received {result.digest}")
    elif out is Outcome.NO_SPACE:
        resp = err(507, f"insufficient storage: {result.detail}")
    elif out is Outcome.TIMEOUT:
        resp = err(408, result.detail)
    elif out in (Outcome.BAD_BODY, Outcome.CLIENT_GONE):
        resp = err(400, f"request body has an error: {result.detail}")
    else:
        resp = err(500, f"unexpected error: {result.detail}")
    if result.at_eof:
        return resp
    return await finish_unread(request, resp, already_read=result.received, drain_limit=drain)


async def checkout_create(request: web.Request) -> web.StreamResponse:
    doc = await _json_body(request)
    if isinstance(doc, web.StreamResponse):
        return doc
    try:
        specs = parse_json_files(doc)
    except ValueError as exc:
        return err(400, f"request body has an error: {exc}")
    location = doc.get("checkoutPath")
    if not isinstance(location, str):
        return err(400, "request body has an error: checkoutPath: value is required and must be a string")
    clean = location.rstrip("/") if location.strip("/") else location
    problem = v3_location_problem(clean)
    if problem:
        return err(400, f"invalid checkout path {location!r}: {problem}")
    state = state_of(request)
    started = time.monotonic()
    try:
        used = await asyncio.get_running_loop().run_in_executor(
            state.executor, lambda: create_checkout(state.store, state.checkouts, clean,
                                                    [(s.path, s.pair) for s in specs], unique=True))
    except CheckoutExists:
        return err(409, f"checkout path {location!r} and its variants are all taken")
    except MissingFiles as exc:
        shown = ", ".join(exc.paths[:10]) + (f" and {len(exc.paths) - 10} more" if len(exc.paths) > 10 else "")
        return err(424, f"unknown files requested in checkout: {shown}")
    except UnsafeLocation as exc:
        return err(400, f"invalid checkout path {location!r}: {exc}")
    except CheckoutError as exc:
        return err(500, f"unexpected error: {exc}")
    except OSError as exc:
        log.error("checkout %s: %s", clean, exc)
        return err(500, f"unexpected error: creating checkout: {exc.strerror or exc}")
    log.info("checkout %s: %d files in %.2f s", used, len(specs), time.monotonic() - started)
    return web.json_response({"checkoutPath": used})


def add_routes(app: web.Application) -> None:
    """Discovery routes always (they say whether Shaman is on); Shaman routes answer 503 when off."""
    r = app.router
    r.add_get(f"{PREFIX}/version", version)
    r.add_get(f"{PREFIX}/configuration", configuration)
    r.add_get(f"{PREFIX}/configuration/shared-storage/{{audience}}/{{platform}}", shared_storage)
    r.add_post(f"{PREFIX}/shaman/checkout/requirements", _guard(requirements))
    r.add_post(f"{PREFIX}/shaman/checkout/create", _guard(checkout_create))
    r.add_get(f"{PREFIX}/shaman/files/{{checksum}}/{{filesize}}", _guard(file_status), allow_head=False)
    r.add_post(f"{PREFIX}/shaman/files/{{checksum}}/{{filesize}}", _guard(upload))
