"""The pluggy plugin manager and the registry built from the plugins' hooks.

Plugins come from the ``bat`` entry-point group (built-in ones too) and from
programmatic registration (:func:`register`).  The registry (schemes, readers,
expanders, callbacks) is built once from the hooks and rebuilt only when the
set of plugins changes, so hot paths do plain dictionary look-ups.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs
from .progress import TraceCallback
from .targets import TargetScheme

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "bat"
#: Comma-separated plugin names not to load from entry points (e.g. for debugging).
DISABLE_ENV = "BAT_DISABLE_PLUGINS"

Handler = Callable[..., Any]


@dataclass
class Registry:
    """Everything the plugins registered, keyed for cheap look-up."""

    schemes: dict[str, TargetScheme] = field(default_factory=dict)
    scheme_owner: dict[str, str] = field(default_factory=dict)
    readers_by_code: dict[bytes, list[Handler]] = field(default_factory=dict)
    readers_by_struct: dict[bytes, list[Handler]] = field(default_factory=dict)
    expanders_by_code: dict[bytes, list[Handler]] = field(default_factory=dict)
    expanders_by_struct: dict[bytes, list[Handler]] = field(default_factory=dict)
    callbacks: list[TraceCallback] = field(default_factory=list)
    #: URL scheme ("s3", "shaman+http") -> name of the target scheme that claims it.
    url_schemes: dict[str, str] = field(default_factory=dict)
    #: Scheme names and URL schemes claimed twice -> the owners that claim them (an error when used).
    conflicts: dict[str, list[str]] = field(default_factory=dict)

    def add_scheme(self, scheme: TargetScheme, owner: str) -> None:
        """Record a target scheme; a name or URL scheme claimed twice becomes a conflict."""
        if scheme.name in self.schemes:
            first = self.scheme_owner[scheme.name]
            self.conflicts.setdefault(f"target scheme {scheme.name!r}", [first]).append(owner)
            log.warning("target scheme %r is registered by both %s and %s", scheme.name, first, owner)
            return
        self.schemes[scheme.name] = scheme
        self.scheme_owner[scheme.name] = owner
        for url in scheme.url_schemes:
            url = url.lower()
            if url in self.url_schemes:
                first = self.scheme_owner[self.url_schemes[url]]
                self.conflicts.setdefault(f"URL scheme '{url}:'", [first]).append(owner)
                log.warning("URL scheme %r is claimed by both %s and %s", url, first, owner)
                continue
            self.url_schemes[url] = scheme.name

    @property
    def fallback_scheme(self) -> TargetScheme | None:
        for scheme in self.schemes.values():
            if scheme.fallback:
                return scheme
        return None


class _Keyed:
    """Collects ``register(key, fn)`` calls into by-code and by-struct tables."""

    def __init__(self, by_code: dict[bytes, list[Handler]], by_struct: dict[bytes, list[Handler]]) -> None:
        self.by_code = by_code
        self.by_struct = by_struct

    def __call__(self, key: bytes | str, fn: Handler) -> None:
        if isinstance(key, bytes):
            self.by_code.setdefault(key.rstrip(b"\0"), []).append(fn)
        elif isinstance(key, str):
            self.by_struct.setdefault(key.encode(), []).append(fn)
        else:
            raise TypeError(f"register() key must be a block code (bytes) or struct name (str), not {key!r}")


_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with entry-point plugins loaded once."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("bat")
        pm.add_hookspecs(hookspecs)
        for name in filter(None, (n.strip() for n in os.environ.get(DISABLE_ENV, "").split(","))):
            pm.set_blocked(name)
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        _pm = pm
    return _pm


def register(plugin: object, name: str | None = None) -> str | None:
    """Register a plugin object or module programmatically (no packaging needed)."""
    global _registry
    pm = get_plugin_manager()
    result = pm.register(plugin, name=name)
    _registry = None
    return result


def unregister(plugin: object | None = None, name: str | None = None) -> None:
    global _registry
    get_plugin_manager().unregister(plugin, name=name)
    _registry = None


def _plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    return pm.get_name(plugin) or repr(plugin)


def build_registry(pm: pluggy.PluginManager, extra: Iterable[object] = ()) -> Registry:
    """Call every registering hook once and collect the results."""
    reg = Registry()
    extra = list(extra)
    for plugin in extra:
        pm.register(plugin)
    try:
        for plugin in pm.get_plugins():
            owner = _plugin_name(pm, plugin)
            hook = getattr(plugin, "register_target_schemes", None)
            if hook is not None and pm.get_hookcallers(plugin):

                def add_scheme(scheme: TargetScheme, owner: str = owner) -> None:
                    reg.add_scheme(scheme, owner)

                hook(register=add_scheme)
        pm.hook.register_block_readers(register=_Keyed(reg.readers_by_code, reg.readers_by_struct))
        pm.hook.register_block_expanders(register=_Keyed(reg.expanders_by_code, reg.expanders_by_struct))
        pm.hook.register_callbacks(register=reg.callbacks.append)
    finally:
        for plugin in extra:
            pm.unregister(plugin)
    return reg


def get_registry(extra_plugins: Iterable[object] = ()) -> Registry:
    """The registry of the installed and registered plugins (plus ``extra_plugins``)."""
    global _registry
    extra = list(extra_plugins)
    if extra:
        return build_registry(get_plugin_manager(), extra)
    if _registry is None:
        _registry = build_registry(get_plugin_manager())
    return _registry


@dataclass
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    schemes: list[str]


def describe_plugins() -> list[PluginInfo]:
    """What ``bat plugins`` shows: each plugin, where it comes from, what it provides."""
    pm = get_plugin_manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    reg = get_registry()
    out: list[PluginInfo] = []
    for plugin in pm.get_plugins():
        name = _plugin_name(pm, plugin)
        dist = dists.get(id(plugin))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        schemes = sorted(s for s, owner in reg.scheme_owner.items() if owner == name)
        out.append(PluginInfo(
            name=name,
            distribution=dist.project_name if dist is not None else None,
            version=dist.version if dist is not None else None,
            hooks=hooks,
            schemes=schemes,
        ))
    out.sort(key=lambda p: p.name)
    return out
