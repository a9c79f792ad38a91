"""Flamenco Manager 2.x's Shaman API (the one BAT 1.x speaks), at the root of the server.

Status codes and error texts follow ``shaman-protocol.md``; where we are
stricter (64-hex checksums, per-component path rules, duplicate and nested
paths refused before anything is written, a free-space check) the answer is
the 400/417 a client already handles, or 507 for a full disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time

from aiohttp import web

from .app import ServerState, encoding_problem, finish_unread, read_definition, spawn, state_of
from .auth import TokenError, make_token, token_from, verify_token
from .bodies import is_gzip
from .checkouts import V2_ID, CheckoutError, CheckoutExists, MissingFiles, UnsafeLocation, create_checkout, v2_location
from .definitions import DefinitionError, FileSpec, parse_cdf
from .store import MAX_SIZE, SHA_RE, Pair
from .uploads import Outcome

log = logging.getLogger("bat.shaman")
_SIZE = re.compile(r"[0-9]{1,19}")
CHUNK = 1 << 20


def text(status: int, body: str, *, reason: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    """A plain-text answer shaped like Go's ``http.Error``."""
    h = {"X-Content-Type-Options": "nosniff", **(headers or {})}
    return web.Response(status=status, reason=reason, text=body, content_type="text/plain",
                        charset="utf-8", headers=h)


def error(status: int, message: str, *, reason: str | None = None) -> web.Response:
    return text(status, message + "\n", reason=reason)


def _authenticate(request: web.Request) -> str | web.Response:
    """The token's subject, or the 401/498 answer."""
    state = state_of(request)
    if not state.config.auth:
        return ""
    token = token_from(request.headers, request.cookies)
    if not token:
        return error(401, "JWT token authorization required: no token present in request")
    try:
        return verify_token(state.config.jwt_secret, token)
    except TokenError as exc:
        if exc.expired:
            return error(498, "JWT token expired", reason="Token Expired")
        return error(401, f"JWT token authorization required: {exc.reason}")


def _with_user(response: web.StreamResponse, subject: str) -> web.StreamResponse:
    if subject:
        response.headers["x-user-id-from-token"] = subject
    return response


def _url_pair(request: web.Request) -> Pair | web.Response:
    checksum = request.match_info["checksum"]
    size = request.match_info["filesize"]
    if len(checksum) < 32:
        return error(400, "checksum suspiciously short")
    if not SHA_RE.fullmatch(checksum):
        return error(400, "invalid checksum")
    if not _SIZE.fullmatch(size) or int(size) > MAX_SIZE:
        return error(400, "invalid filesize")
    return Pair(checksum, int(size))


def _definition_headers_problem(request: web.Request) -> web.Response | None:
    if request.content_type != "text/plain":
        return error(400, "Expecting text/plain content type")
    problem = encoding_problem(request)
    return error(400, problem) if problem else None


async def _read_cdf(request: web.Request) -> list[FileSpec] | web.StreamResponse:
    try:
        body = await read_definition(request)
    except Exception as exc:  # broken gzip, client gone
        return error(400, str(exc) or type(exc).__name__)
    if body is None:
        return await finish_unread(request, error(413, "checkout definition too large"), drain_limit=0)
    try:
        return parse_cdf(body)
    except DefinitionError as exc:
        return error(400, f"ERROR invalid line {exc.index + 1}: {exc.reason}\n")


async def get_token(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    if not state.config.get_token:
        return error(403, "get-token is disabled on this server: set SHAMAN_JWT_TOKEN to a token "
                          "made with 'bat shaman token'")
    return text(200, make_token(state.config.jwt_secret, "bat-shaman-client"))


async def my_info(request: web.Request) -> web.StreamResponse:
    subject = _authenticate(request)
    if isinstance(subject, web.Response):
        return subject
    return _with_user(text(200, f"You are subject {subject or '-'}"), subject)


async def requirements(request: web.Request) -> web.StreamResponse:
    subject = _authenticate(request)
    if isinstance(subject, web.Response):
        return await finish_unread(request, subject)
    problem = _definition_headers_problem(request)
    if problem:
        return await finish_unread(request, problem)
    specs = await _read_cdf(request)
    if isinstance(specs, web.StreamResponse):
        return specs
    state = state_of(request)
    lines, stored = await asyncio.get_running_loop().run_in_executor(state.executor, _requirements, state, specs)
    if stored:
        spawn(state, _touch_later(state, stored))
    return _with_user(text(200, "".join(lines)), subject)


def _requirements(state: ServerState, specs: list[FileSpec]) -> tuple[list[str], list[Pair]]:
    lines: list[str] = []
    stored: list[Pair] = []
    seen: set[Pair] = set()
    for spec in specs:
        if spec.pair in seen:
            continue
        seen.add(spec.pair)
        st = state.store.state(spec.pair)
        if st == "stored":
            stored.append(spec.pair)
        elif st == "uploading":
            lines.append(f"already-uploading {spec.path}\n")
        else:
            lines.append(f"file-unknown {spec.path}\n")
    return lines, stored


async def _touch_later(state: ServerState, pairs: list[Pair]) -> None:
    def touch() -> None:
        for pair in pairs:
            state.store.touch(pair)

    await asyncio.get_running_loop().run_in_executor(state.executor, touch)


async def upload(request: web.Request) -> web.StreamResponse:
    subject = _authenticate(request)
    if isinstance(subject, web.Response):
        return await finish_unread(request, subject)
    pair = _url_pair(request)
    if isinstance(pair, web.Response):
        return await finish_unread(request, pair)
    problem = encoding_problem(request)
    if problem:
        return await finish_unread(request, error(400, problem))
    state = state_of(request)
    name = request.headers.get("X-Shaman-Original-Filename", "-not specified-")
    encoded = is_gzip(request.headers.get("Content-Encoding"))
    result = await state.uploads.receive(
        pair, request.content, can_defer=request.headers.get("X-Shaman-Can-Defer-Upload") == "true",
        content_length=request.content_length, encoded=encoded, name=name)
    out = result.outcome
    if out is Outcome.STORED:
        resp = web.Response(status=204)
    elif out is Outcome.ALREADY_STORED:
        resp = text(208, "File already stored", headers={"Location": request.raw_path})
    elif out is Outcome.DEFER:
        resp = text(208, "File being uploaded, please defer")
    elif out is Outcome.SIZE_MISMATCH and result.detail.startswith("Content-Length"):
        resp = error(417, f"{result.detail} but you promised {pair.size}")
    elif out is Outcome.SIZE_MISMATCH:
        resp = error(417, f"Received {result.received}{'+' if result.overflow else ''} bytes "
                          f"but you promised {pair.size}")
    elif out is Outcome.CHECKSUM_MISMATCH:
        resp = error(417, "Declared and actual checksums differ")
    elif out is Outcome.NO_SPACE:
        resp = error(507, f"Insufficient storage: {result.detail}")
    elif out is Outcome.TIMEOUT:
        resp = error(408, f"Request timeout: {result.detail}")
    elif out is Outcome.BAD_BODY:
        resp = error(400, result.detail)
    elif out is Outcome.CLIENT_GONE:
        resp = error(400, "client went away")
    else:
        resp = error(500, result.detail or "I/O error")
    _with_user(resp, subject)
    if result.at_eof:
        return resp
    return await finish_unread(request, resp, already_read=result.received)


async def file_status(request: web.Request) -> web.StreamResponse:
    subject = _authenticate(request)
    if isinstance(subject, web.Response):
        return subject
    pair = _url_pair(request)
    if isinstance(pair, web.Response):
        return pair
    state = state_of(request)
    st = await asyncio.get_running_loop().run_in_executor(state.executor, state.store.state, pair)
    status = {"stored": 200, "uploading": 420, "unknown": 404}[st]
    return _with_user(web.Response(status=status, reason="Being Uploaded" if status == 420 else None), subject)


async def download(request: web.Request) -> web.StreamResponse:
    subject = _authenticate(request)
    if isinstance(subject, web.Response):
        return subject
    pair = _url_pair(request)
    if isinstance(pair, web.Response):
        return pair
    state = state_of(request)
    loop = asyncio.get_running_loop()
    try:
        f = await loop.run_in_executor(state.executor, open, state.store.blob_path(pair), "rb")
    except OSError:
        return error(404, "File Not Found")
    try:
        size = os.fstat(f.fileno()).st_size
        if size != pair.size:
            return error(500, "File Size Incorrect")
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": "application/binary", "ETag": f"'{pair.sha}-{pair.size}'",
            "X-Shaman-Checksum": pair.sha})
        resp.content_length = size
        _with_user(resp, subject)
        await resp.prepare(request)
        while chunk := await loop.run_in_executor(state.executor, f.read, CHUNK):
            await resp.write(chunk)
        await resp.write_eof()
        return resp
    finally:
        f.close()


async def checkout_create(request: web.Request) -> web.StreamResponse:
    subject = _authenticate(request)
    if isinstance(subject, web.Response):
        return await finish_unread(request, subject)
    problem = _definition_headers_problem(request)
    if problem:
        return await finish_unread(request, problem)
    checkout_id = request.match_info["checkoutID"]
    if not V2_ID.fullmatch(checkout_id):
        return await finish_unread(request, error(400, f"invalid checkout ID '{checkout_id}'"))
    specs = await _read_cdf(request)
    if isinstance(specs, web.StreamResponse):
        return specs
    state = state_of(request)
    started = time.monotonic()
    try:
        location = await asyncio.get_running_loop().run_in_executor(
            state.executor, lambda: create_checkout(state.store, state.checkouts, v2_location(checkout_id),
                                                    [(s.path, s.pair) for s in specs], unique=False))
    except CheckoutExists:
        return error(409, f"checkout '{checkout_id}' already exists")
    except MissingFiles as exc:
        return text(400, "".join(f"file-unknown {p}\n" for p in exc.paths) + "\n")
    except UnsafeLocation as exc:
        return error(400, f"unsafe checkout location: {exc}")
    except CheckoutError as exc:
        return error(500, str(exc))
    except OSError as exc:
        log.error("checkout %s: %s", checkout_id, exc)
        return error(500, f"creating checkout: {exc.strerror or exc}")
    log.info("checkout %s: %d files in %.2f s", location, len(specs), time.monotonic() - started)
    return _with_user(text(200, location), subject)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/get-token", get_token)
    app.router.add_get("/my-info", my_info)
    app.router.add_post("/checkout/requirements", requirements)
    app.router.add_post("/checkout/create/{checkoutID}", checkout_create)
    app.router.add_post("/files/{checksum}/{filesize}", upload)
    app.router.add_route("OPTIONS", "/files/{checksum}/{filesize}", file_status)
    app.router.add_get("/files/{checksum}/{filesize}", download, allow_head=False)
