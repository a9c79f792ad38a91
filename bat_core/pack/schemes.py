"""Turn a target string into a :class:`Target` through the registered target schemes."""

from __future__ import annotations

from ..plugins import Registry
from ..targets import TargetScheme
from .errors import PackError
from .transfer import Target


def _installed(registry: Registry) -> str:
    return ", ".join(sorted(registry.schemes)) or "none"


def choose_scheme(target: str, registry: Registry, name: str | None = None) -> TargetScheme:
    """The scheme named ``name``, else the first that recognises ``target``, else the fallback."""
    if name is not None:
        scheme = registry.schemes.get(name)
        if scheme is None:
            raise PackError(f"unknown target scheme {name!r}; installed: {_installed(registry)}")
        return scheme
    for scheme in registry.schemes.values():
        if not scheme.fallback and scheme.recognises(target):
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
