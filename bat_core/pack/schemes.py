"""Turn a target string into a :class:`Target` through the registered target schemes.

Routing, in this order (documented in docs/targets.md):

1. ``--target-scheme NAME``: that scheme, whatever the string looks like.
2. A URL scheme (``s3://``, ``s3:/``, ``shaman+http://``: two or more letters,
   then ``:/``, so ``C:\\out`` and ``C:/out`` are drives): the scheme that
   claims it; nobody claims it: a refusal naming what is installed.
3. The schemes' ``recognises`` callables (``out.zip``), by ``priority``
   (higher first), then name.
4. The fallback scheme (the directory target).

A string never reaches the local file system unless a plugin resolves it there.
"""

from __future__ import annotations

import re

from ..plugins import Registry
from ..targets import Target, TargetScheme
from .errors import PackError

#: ``scheme:/...``; at least two characters, so a Windows drive letter is not a scheme.
URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):/")

#: What to install for the URL schemes of bat's optional plugins and known extensions.
INSTALL_HINTS = {
    "s3": "pip install 'bat[s3]'",
    "shaman": "pip install 'bat[shaman]'",
    "flamenco": "pip install 'bat[shaman]'",
    "gs": "pip install bat-gcs (examples/bat-gcs)",
}


def url_scheme(target: str) -> str | None:
    """The URL scheme of a target string (lower case), or None for a plain path."""
    match = URL_SCHEME.match(target)
    return match.group(1).lower() if match else None


def _installed(registry: Registry) -> str:
    return ", ".join(sorted(registry.schemes)) or "none"


def _check_conflict(registry: Registry, what: str) -> None:
    owners = registry.conflicts.get(what)
    if owners:
        raise PackError(f"{what} is registered by several plugins ({', '.join(owners)}); "
                        f"disable one of them (BAT_DISABLE_PLUGINS=name)")


def _refuse_url(target: str, scheme: str, registry: Registry) -> PackError:
    base = scheme.split("+", 1)[0]
    served = ", ".join(f"{s}:" for s in sorted(registry.url_schemes)) or "none"
    hint = INSTALL_HINTS.get(base)
    advice = f"; for {base}: targets, {hint}" if hint else "; target plugins are packages named bat-NAME"
    return PackError(f"no installed plugin serves {scheme}: targets ({target}); URL schemes installed: "
                     f"{served}{advice}")


def choose_scheme(target: str, registry: Registry, name: str | None = None) -> TargetScheme:
    """The scheme for ``target``: by name, by URL scheme, by recogniser, else the fallback."""
    if name is not None:
        _check_conflict(registry, f"target scheme {name!r}")
        scheme = registry.schemes.get(name)
        if scheme is None:
            raise PackError(f"unknown target scheme {name!r}; installed: {_installed(registry)}")
        return scheme
    url = url_scheme(target)
    if url is not None:
        _check_conflict(registry, f"URL scheme '{url}:'")
        owner = registry.url_schemes.get(url)
        if owner is None:
            raise _refuse_url(target, url, registry)
        return registry.schemes[owner]
    asking = sorted((s for s in registry.schemes.values() if s.recognises is not None and not s.fallback),
                    key=lambda s: (-s.priority, s.name))
    for scheme in asking:
        assert scheme.recognises is not None
        if scheme.recognises(target):
            return scheme
    fallback = registry.fallback_scheme
    if fallback is None:
        raise PackError(f"no target scheme accepts {target!r}; installed: {_installed(registry)}")
    return fallback


def resolve_target(target: str, registry: Registry, name: str | None = None) -> Target:
    scheme = choose_scheme(target, registry, name)
    resolved = scheme.resolve(target)
    if not isinstance(resolved, Target):
        raise PackError(f"target scheme {scheme.name!r} returned {type(resolved).__name__}, not a Target")
    return resolved
