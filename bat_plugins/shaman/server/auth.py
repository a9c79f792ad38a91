"""Tokens: v2's JWT (HS256 with a shared secret) and v3's optional bearer token.

Flamenco 2 signs ES256 tokens with a key pair handed out by Flamenco Server.
A studio running ``bat shaman serve`` has no such server, so tokens here are
HS256 JWTs signed with a secret every server process of the studio shares
(``--jwt-secret``); the standard library's ``hmac`` is all it takes.  Clients
treat the token as opaque, so BAT 1.x works with either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

DEFAULT_LIFETIME_S = 24 * 3600
LEEWAY_S = 60


class TokenError(Exception):
    """The token is missing or unusable; ``expired`` selects 498 over 401."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signing_input: str) -> str:
    return _b64(hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest())


def make_token(secret: bytes, subject: str, *, lifetime_s: float = DEFAULT_LIFETIME_S,
               now: float | None = None) -> str:
    """A compact HS256 JWT for ``subject``, valid from now for ``lifetime_s``."""
    issued = int(time.time() if now is None else now)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = _b64(json.dumps({"sub": subject, "iat": issued, "exp": issued + int(lifetime_s)},
                             separators=(",", ":")).encode())
    signing_input = f"{header}.{claims}"
    return f"{signing_input}.{_sign(secret, signing_input)}"


def verify_token(secret: bytes, token: str, *, now: float | None = None) -> str:
    """The token's subject; TokenError when it is malformed, forged or out of its time."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("token contains an invalid number of segments")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("token is not valid base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenError("token is not valid base64url JSON")
    if header.get("alg") != "HS256":
        raise TokenError(f"unexpected signing method: {header.get('alg')!r}")
    if not hmac.compare_digest(_sign(secret, f"{parts[0]}.{parts[1]}"), parts[2]):
        raise TokenError("signature is invalid")
    t = time.time() if now is None else now
    for claim in ("exp", "iat", "nbf"):
        if claim in claims and not isinstance(claims[claim], int | float):
            raise TokenError(f"claim {claim} is not a number")
    if "exp" in claims and t > claims["exp"] + LEEWAY_S:
        raise TokenError("token is expired", expired=True)
    for claim in ("iat", "nbf"):
        if claim in claims and claims[claim] > t + LEEWAY_S:
            raise TokenError(f"token is not valid yet ({claim})")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise TokenError("token has no subject")
    return subject


def token_from(headers: Mapping[str, str], cookies: Mapping[str, str]) -> str | None:
    """The token of a request: cookie ``jwtToken``, else ``Authorization: Bearer``, as Flamenco 2."""
    cookie = cookies.get("jwtToken")
    if cookie:
        return cookie
    return bearer(headers)


def bearer(headers: Mapping[str, str]) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    return None


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented bearer token with the configured one."""
    return given is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
