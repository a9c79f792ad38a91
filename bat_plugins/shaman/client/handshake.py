"""Before hashing anything: is the server there, is it the right kind, does our token work?

v2 (Flamenco 2) has no version route: the client gets a token
(``SHAMAN_JWT_TOKEN``, else ``GET get-token``) and checks it on ``my-info``.
v3 (Flamenco 3) says what it is at ``/api/v3/version`` and whether Shaman is
on at ``/api/v3/configuration``; a ``bat shaman serve --v3-token`` server
also wants a bearer token (``FLAMENCO_SHAMAN_TOKEN``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import requests

from bat_core.targets import PackError

from .codec import first_line
from .connection import Connection, TransportError

#: Environment variables holding the tokens.
V2_TOKEN_ENV = "SHAMAN_JWT_TOKEN"
V3_TOKEN_ENV = "FLAMENCO_SHAMAN_TOKEN"
#: Status codes that mean the token is missing, wrong or expired.
AUTH_STATUSES = (401, 403, 498)
#: The empty file's checksum: a harmless file-status question that needs the Shaman routes.
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def auth_hint(api: str) -> str:
    if api == "v2":
        return f"set {V2_TOKEN_ENV} to a token the server accepts ('bat shaman token' makes one)"
    return f"set {V3_TOKEN_ENV} to the server's --v3-token"


def _get(conn: Connection, path: str) -> requests.Response:
    try:
        return conn.request("GET", path, timeout=30)
    except TransportError as exc:
        raise PackError(str(exc)) from None


def _text(resp: requests.Response) -> str:
    try:
        doc = json.loads(resp.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("message"), str):
        return first_line(doc["message"])
    return first_line(resp.content.decode("utf-8", "replace"))


def start_v2(conn: Connection) -> dict[str, Any]:
    token = os.environ.get(V2_TOKEN_ENV, "").strip()
    if not token:
        resp = _get(conn, "get-token")
        if resp.status_code in (404, 405):
            raise PackError(f"{conn.shown} does not serve the Shaman v2 API (GET get-token answered "
                            f"{resp.status_code} {_text(resp)}); for a Flamenco 3 Manager use flamenco://")
        if resp.status_code != 200:
            raise PackError(f"{conn.shown}: cannot get a token (GET get-token: {resp.status_code} "
                            f"{_text(resp)}); {auth_hint('v2')}")
        token = resp.content.decode("utf-8", "replace").strip()
        if not token or len(token) > 16384 or not token.isprintable() or " " in token:
            raise PackError(f"{conn.shown}: GET get-token did not answer with a token; {auth_hint('v2')}")
    conn.set_token(token)
    resp = _get(conn, "my-info")  # Flamenco 2 checks the token here; a server without the route says 404
    if resp.status_code in AUTH_STATUSES:
        raise PackError(f"{conn.shown}: the server refuses our token ({resp.status_code} {_text(resp)}); "
                        f"{auth_hint('v2')}")
    return {}


def start_v3(conn: Connection) -> dict[str, Any]:
    token = os.environ.get(V3_TOKEN_ENV, "").strip()
    if token:
        conn.set_token(token)
    not_flamenco = f"{conn.shown} is not a Flamenco Manager"
    resp = _get(conn, "api/v3/version")
    try:
        version = json.loads(resp.content) if resp.status_code == 200 else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        version = None
    if not isinstance(version, dict) or not isinstance(version.get("version"), str):
        said = f"{resp.status_code} {_text(resp)}".strip() if resp.status_code != 200 else "not a version"
        raise PackError(f"{not_flamenco} (GET /api/v3/version answered {said})")
    name = f"{version.get('name') or 'Flamenco'} {version['version']}"
    resp = _get(conn, "api/v3/configuration")
    try:
        config = json.loads(resp.content) if resp.status_code == 200 else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        config = None
    if not isinstance(config, dict) or not isinstance(config.get("shamanEnabled"), bool):
        raise PackError(f"{not_flamenco} (GET /api/v3/configuration answered "
                        f"{resp.status_code} {_text(resp)})".replace(" )", ")"))
    if not config["shamanEnabled"]:
        raise PackError(f"{conn.shown}: Shaman is disabled on this Flamenco Manager ({name}); "
                        f"enable it in its configuration, or pack to a directory on the shared storage")
    resp = _get(conn, f"api/v3/shaman/files/{EMPTY_SHA256}/0")
    if resp.status_code in AUTH_STATUSES:
        raise PackError(f"{conn.shown}: the server refuses our token ({resp.status_code} {_text(resp)}); "
                        f"{auth_hint('v3')}")
    if resp.status_code == 503:
        raise PackError(f"{conn.shown}: Shaman is not active on this Flamenco Manager ({_text(resp)})")
    return {"server": name}
