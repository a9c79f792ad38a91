"""Shaman target strings: ``shaman://`` (v2, as BAT 1.x reads them) and ``flamenco://`` (v3).

Only the standard library here, so parsing a target never needs ``requests``.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from bat_core.targets import PackError

#: URL schemes of the v2 API (Flamenco Manager 2.x, BAT 1.x) and of the v3 API (Flamenco 3).
V2_SCHEMES = ("shaman", "shaman+https", "shaman+http")
V3_SCHEMES = ("flamenco", "flamenco+https", "flamenco+http")

#: A v2 checkout ID as Flamenco 2 accepts it.
V2_CHECKOUT_ID = re.compile(r"[A-Za-z0-9_]+")
#: Characters Flamenco 3 refuses anywhere in a checkout path.
_V3_FORBIDDEN = set("?*:;{}\\\0")


@dataclass(frozen=True)
class Endpoint:
    """Where a Shaman server is and which checkout to make there."""

    api: str  # "v2" or "v3"
    #: The server's base URL, ending in "/"; the API's routes are resolved against it.
    base: str
    #: v2: the checkout ID; v3: the requested checkout path; "" for no checkout.
    checkout: str

    @property
    def shown(self) -> str:
        """The server without credentials, for messages."""
        parts = urllib.parse.urlsplit(self.base)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _scheme(url: str) -> str:
    return urllib.parse.urlsplit(url).scheme.lower()


def parse_shaman_url(url: str) -> tuple[str, str]:
    """``shaman[+http|+https]://host[:port]/path/#checkoutID`` -> (endpoint URL, checkout ID).

    As BAT 1.x does it: ``shaman`` and ``shaman+https`` mean HTTPS, ``shaman+http``
    HTTP; host, port, user info and query are kept; an empty path becomes ``/``;
    the fragment, percent-decoded, is the checkout ID.  Unlike BAT, the
    endpoint always ends in ``/``, so ``https://h/base`` does not lose ``base``
    when the API's routes are joined to it.
    """
    parts = urllib.parse.urlparse(url)
    scheme = parts.scheme.lower()
    if scheme in ("shaman", "shaman+https"):
        http = "https"
    elif scheme == "shaman+http":
        http = "http"
    else:
        raise ValueError(f"not a Shaman URL: {url} (use shaman://, shaman+https:// or shaman+http://)")
    path = parts.path or "/"
    if not path.endswith("/"):
        path += "/"
    endpoint = urllib.parse.urlunparse((http, parts.netloc, path, parts.params, parts.query, ""))
    return endpoint, urllib.parse.unquote(parts.fragment)


def parse_flamenco_url(url: str) -> tuple[str, str]:
    """``flamenco[+http|+https]://host[:port]/checkout/path`` -> (Manager base URL, checkout path).

    ``flamenco`` and ``flamenco+https`` mean HTTPS.  The URL's path,
    percent-decoded and without its outer slashes, is the checkout path asked
    for; the Manager's routes are at the root of the host.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("flamenco", "flamenco+https"):
        http = "https"
    elif scheme == "flamenco+http":
        http = "http"
    else:
        raise ValueError(f"not a Flamenco URL: {url} (use flamenco://, flamenco+https:// or flamenco+http://)")
    if parts.query or parts.fragment:
        raise ValueError(f"{url}: a flamenco target has no ?query or #fragment; the path is the checkout path")
    base = urllib.parse.urlunsplit((http, parts.netloc, "/", "", ""))
    return base, urllib.parse.unquote(parts.path).strip("/")


def v3_checkout_problem(path: str) -> str | None:
    """Why Flamenco 3 would refuse this checkout path (told before anything is uploaded), or None."""
    bad = sorted(set(path) & _V3_FORBIDDEN)
    if bad:
        return "must not contain " + " ".join(repr(c) for c in bad)
    if any(part in (".", "..") for part in path.split("/")):
        return "must not contain . or .. segments"
    return None


def resolve_endpoint(target: str, api: str) -> Endpoint:
    """A target string for the ``shaman`` (v2) or ``flamenco`` (v3) scheme as an :class:`Endpoint`.

    Besides their own URL schemes both take a plain ``http://`` or ``https://``
    URL, for ``--target-scheme shaman|flamenco``.  Raises :class:`PackError`.
    """
    scheme = _scheme(target)
    try:
        if api == "v2":
            if scheme in ("http", "https"):
                target = f"shaman+{scheme}" + target[len(scheme):]
            base, checkout = parse_shaman_url(target)
        else:
            if scheme in ("http", "https"):
                target = f"flamenco+{scheme}" + target[len(scheme):]
            base, checkout = parse_flamenco_url(target)
    except ValueError as exc:
        raise PackError(str(exc)) from None
    host = urllib.parse.urlsplit(base)
    try:
        host.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise PackError(f"{target}: bad port number") from None
    if not host.hostname:
        raise PackError(f"{target}: no host name")
    check_checkout(api, checkout, target)
    return Endpoint(api, base, checkout)


def check_checkout(api: str, checkout: str, target: str) -> None:
    """Refuse a checkout the server would refuse, before anything is uploaded."""
    if api == "v2" and checkout and not V2_CHECKOUT_ID.fullmatch(checkout):
        raise PackError(f"{target}: checkout ID {checkout!r} may only hold letters, digits and _ "
                        f"(Flamenco 2's rule)")
    if api == "v3" and checkout:
        problem = v3_checkout_problem(checkout)
        if problem:
            raise PackError(f"{target}: checkout path {checkout!r} {problem}")


def api_of(target: str) -> str | None:
    """``v2`` for shaman URLs, ``v3`` for flamenco URLs, None for anything else."""
    scheme = _scheme(target)
    return "v2" if scheme in V2_SCHEMES else "v3" if scheme in V3_SCHEMES else None
