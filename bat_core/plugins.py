"""The pluggy plugin manager and the registry built from the plugins' hooks.

Plugins come from the ``bat`` entry-point group (built-in ones too) and from
programmatic registration (:func:`register`).  The registry (schemes, readers,
expanders, callbacks) is built once from the hooks and rebuilt only when the
set of plugins changes, so hot paths do plain dictionary look-ups.

A plugin that fails (on import, in a hook, or later in a reader or callback
it registered) is skipped and reported once, never fatal: see
:mod:`bat_core.plugin_failures`.  Environment variables:

- ``BAT_LOAD_PLUGINS=bat-gcs,other``: load only these third-party plugins
  (distribution or entry-point names); set but empty, none.  bat's own
  built-in plugins always load.
- ``BAT_DISABLE_PLUGINS=name,...``: never load these (built-in ones too).
- ``BAT_TRACE_PLUGINS=1``: print every hook call on stderr
  (:mod:`bat_core.plugin_trace`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from . import hookspecs, plugin_trace
from .entry_points import BUILTIN_DISTRIBUTION, DISABLE_ENV, EntryPoint, entry_points, normalise
from .plugin_failures import FAILURES, PLUGIN_ERRORS, GuardedCallback, PluginFailure, call_guarded, guard_handler
from .progress import TraceCallback
from .targets import TargetScheme

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "bat"
#: Comma-separated allow-list of third-party plugins to load; empty: none.
LOAD_ENV = "BAT_LOAD_PLUGINS"

Handler = Callable[..., Any]


@dataclass
class Provided:
    """What one plugin registered, for ``bat plugins``."""

    block_readers: list[str] = field(default_factory=list)
    block_expanders: list[str] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)


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
    #: Plugin name -> what it registered (readers, expanders, callbacks).
    provided: dict[str, Provided] = field(default_factory=dict)
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


def _key_label(key: bytes | str) -> str:
    return key.decode("ascii", "replace") if isinstance(key, bytes) else key


class _Keyed:
    """Collects ``register(key, fn)`` calls into by-code and by-struct tables."""

    def __init__(self, by_code: dict[bytes, list[Handler]], by_struct: dict[bytes, list[Handler]],
                 labels: list[str] | None = None, wrap: Callable[[bytes | str, Handler], Handler] | None = None,
                 ) -> None:
        self.by_code = by_code
        self.by_struct = by_struct
        self.labels = labels if labels is not None else []
        self.wrap = wrap

    def __call__(self, key: bytes | str, fn: Handler) -> None:
        if not callable(fn):
            raise TypeError(f"register({key!r}, ...) needs a callable, not {fn!r}")
        handler = self.wrap(key, fn) if self.wrap is not None else fn
        if isinstance(key, bytes):
            self.by_code.setdefault(key.rstrip(b"\0"), []).append(handler)
        elif isinstance(key, str):
            self.by_struct.setdefault(key.encode(), []).append(handler)
        else:
            raise TypeError(f"register() key must be a block code (bytes) or struct name (str), not {key!r}")
        self.labels.append(_key_label(key))


# --- where plugins come from ---------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    """The distribution a plugin was loaded from (None: registered from code)."""

    distribution: str | None
    version: str | None
    entry_point: str | None = None

    @property
    def builtin(self) -> bool:
        return self.distribution is not None and normalise(self.distribution) == BUILTIN_DISTRIBUTION


_PROGRAMMATIC = Origin(None, None)


def _env_names(var: str) -> set[str] | None:
    """The comma-separated names in ``var`` (normalised); None when it is not set."""
    value = os.environ.get(var)
    if value is None:
        return None
    return {normalise(n.strip()) for n in value.split(",") if n.strip()}


_pm: pluggy.PluginManager | None = None
_registry: Registry | None = None
_origins: dict[str, Origin] = {}


def origin_of(name: str) -> Origin:
    return _origins.get(name, _PROGRAMMATIC)


def _origin_pair(name: str) -> tuple[str | None, str | None]:
    o = origin_of(name)
    return o.distribution, o.version


FAILURES.origin = _origin_pair


def _is_builtin(ep: EntryPoint) -> bool:
    return normalise(ep.distribution) == BUILTIN_DISTRIBUTION


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    """Load every ``bat`` entry point; one that fails is recorded and skipped."""
    allowed = _env_names(LOAD_ENV)
    blocked = _env_names(DISABLE_ENV) or set()
    # bat's own plugins first: a third-party entry point cannot take a built-in's name.
    for ep in sorted(entry_points(ENTRY_POINT_GROUP), key=lambda ep: not _is_builtin(ep)):
        dist_name = ep.distribution
        origin = Origin(dist_name, ep.version, ep.value)
        names = {normalise(ep.name)} | ({normalise(dist_name)} if dist_name else set())
        if names & blocked:
            log.debug("plugin %s not loaded: in %s", ep.name, DISABLE_ENV)
            continue
        if allowed is not None and not origin.builtin and not names & allowed:
            log.debug("plugin %s not loaded: not in %s", ep.name, LOAD_ENV)
            continue
        if ep.name in _origins:
            if _origins[ep.name].distribution != dist_name:
                _origins.setdefault(f"{ep.name} ({dist_name})", origin)
                FAILURES.record(f"{ep.name} ({dist_name})", "register",
                                ValueError(f"plugin name {ep.name!r} is already used by "
                                           f"{_origins[ep.name].distribution}"))
            continue
        _origins[ep.name] = origin
        try:
            plugin = ep.load()
        except PLUGIN_ERRORS as exc:
            FAILURES.record(ep.name, "import", exc)
            continue
        def register_it(plugin: object = plugin, name: str = ep.name) -> None:
            pm.register(plugin, name=name)

        if not call_guarded(ep.name, "register", register_it):
            continue
        log.debug("plugin %s loaded from %s %s (%s)", ep.name, dist_name, origin.version, ep.value)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with entry-point plugins loaded once."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("bat")
        pm.add_hookspecs(hookspecs)
        if plugin_trace.enabled():
            plugin_trace.monitor(pm)
        _load_entry_points(pm)
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


# --- calling hooks one plugin at a time ------------------------------------------------


def call_each(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> None:
    """Call every implementation of a hook separately: one that raises is skipped alone.

    In pluggy's order (last registered first, ``tryfirst``/``trylast`` honoured);
    hook wrappers are not used by bat's hooks and are left out.  A ``register``
    argument is traced call by call with ``BAT_TRACE_PLUGINS``.
    """
    for impl in _impls(pm, hook_name, **kwargs):
        _call_impl(impl, hook_name, kwargs)


def _call_impl(impl: pluggy.HookImpl, hook_name: str, kwargs: dict[str, Any]) -> bool:
    return _call_plugin(impl.plugin_name, hook_name, impl.function, kwargs, impl.argnames)


def _call_plugin(owner: str, hook_name: str, fn: Callable[..., Any], kwargs: dict[str, Any],
                 argnames: Iterable[str] | None = None) -> bool:
    """Call one plugin's hook function: traced, and guarded (False when it raised)."""
    args = {k: plugin_trace.traced_register(owner, hook_name, v) if k == "register" else v
            for k, v in kwargs.items()}
    plugin_trace.call_start(owner, hook_name, kwargs)
    outcome: list[Any] = []

    def run() -> None:
        try:
            if argnames is None:
                outcome.append(fn(**args))
            else:
                outcome.append(fn(*[args[a] for a in argnames]))
        except BaseException as exc:
            plugin_trace.call_end(owner, hook_name, None, exc)
            raise
        plugin_trace.call_end(owner, hook_name, outcome[0], None)

    return call_guarded(owner, hook_name, run)


def _impls(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> list[pluggy.HookImpl]:
    """A hook's implementations in pluggy's calling order (last registered first, tryfirst and
    trylast honoured), without hook wrappers (bat's hooks do not use them)."""
    impls = [i for i in reversed(getattr(pm.hook, hook_name).get_hookimpls()) if not (i.hookwrapper or i.wrapper)]
    if not impls:
        plugin_trace.call_start("(none)", hook_name, kwargs)
    return impls


def _register_handlers(pm: pluggy.PluginManager, hook_name: str, what: str,
                       by_code: dict[bytes, list[Handler]], by_struct: dict[bytes, list[Handler]],
                       provided: dict[str, Provided]) -> None:
    """Collect one plugin's readers or expanders; kept only if its hook call succeeds."""
    for impl in _impls(pm, hook_name, register=None):
        owner = impl.plugin_name
        guard = not origin_of(owner).builtin
        codes: dict[bytes, list[Handler]] = {}
        structs: dict[bytes, list[Handler]] = {}
        labels: list[str] = []

        def wrap(key: bytes | str, fn: Handler, owner: str = owner) -> Handler:
            return guard_handler(owner, f"{what} for {key!r}", fn)

        keyed = _Keyed(codes, structs, labels, wrap if guard else None)
        if not _call_impl(impl, hook_name, {"register": keyed}):
            continue
        for table, part in ((by_code, codes), (by_struct, structs)):
            for key, fns in part.items():
                table.setdefault(key, []).extend(fns)
        entry = provided.setdefault(owner, Provided())
        getattr(entry, what.replace(" ", "_") + "s").extend(labels)


def _register_callbacks(pm: pluggy.PluginManager, reg: Registry) -> None:
    for impl in _impls(pm, "register_callbacks", register=None):
        owner = impl.plugin_name
        mine: list[TraceCallback] = []

        def add(callback: TraceCallback, mine: list[TraceCallback] = mine) -> None:
            if not isinstance(callback, TraceCallback):
                raise TypeError(f"register() takes a TraceCallback or PackCallback, not {callback!r}")
            mine.append(callback)

        if not _call_impl(impl, "register_callbacks", {"register": add}):
            continue
        guard = not origin_of(owner).builtin
        reg.callbacks.extend(GuardedCallback(owner, cb) if guard else cb for cb in mine)
        reg.provided.setdefault(owner, Provided()).callbacks.extend(type(cb).__name__ for cb in mine)


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

                _call_plugin(owner, "register_target_schemes", hook, {"register": add_scheme})
        _register_handlers(pm, "register_block_readers", "block reader",
                           reg.readers_by_code, reg.readers_by_struct, reg.provided)
        _register_handlers(pm, "register_block_expanders", "block expander",
                           reg.expanders_by_code, reg.expanders_by_struct, reg.provided)
        _register_callbacks(pm, reg)
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


def register_commands(cli: Any) -> None:
    """Let every plugin add its click commands; one that raises is skipped."""
    call_each(get_plugin_manager(), "register_commands", cli=cli)


# --- what ``bat plugins`` shows ----------------------------------------------------------


@dataclass
class PluginInfo:
    name: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    schemes: list[str]
    block_readers: list[str] = field(default_factory=list)
    block_expanders: list[str] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)
    #: Shipped with bat itself (the ``bat`` distribution).
    builtin: bool = False
    #: False when the plugin could not be imported or registered.
    loaded: bool = True
    #: What went wrong with it, if anything (import, a hook, a reader...).
    errors: list[PluginFailure] = field(default_factory=list)


def describe_plugins(include_builtin: bool = True) -> list[PluginInfo]:
    """What ``bat plugins`` shows: each plugin, where it comes from, what it provides.

    Plugins that failed to load are included (``loaded=False``, with their errors).
    """
    pm = get_plugin_manager()
    reg = get_registry()
    out: list[PluginInfo] = []
    listed: set[str] = set()
    for plugin in pm.get_plugins():
        name = _plugin_name(pm, plugin)
        origin = origin_of(name)
        listed.add(name)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        schemes = sorted(s for s, owner in reg.scheme_owner.items() if owner == name)
        provided = reg.provided.get(name, Provided())
        out.append(PluginInfo(
            name=name, distribution=origin.distribution, version=origin.version, hooks=hooks, schemes=schemes,
            block_readers=sorted(set(provided.block_readers)),
            block_expanders=sorted(set(provided.block_expanders)),
            callbacks=sorted(set(provided.callbacks)),
            builtin=origin.builtin, errors=FAILURES.failures(name),
        ))
    for failure in FAILURES.failures():
        if failure.plugin in listed:
            continue
        listed.add(failure.plugin)
        origin = origin_of(failure.plugin)
        out.append(PluginInfo(name=failure.plugin, distribution=origin.distribution, version=origin.version,
                              hooks=[], schemes=[], builtin=origin.builtin, loaded=False,
                              errors=FAILURES.failures(failure.plugin)))
    if not include_builtin:
        out = [p for p in out if not p.builtin]
    out.sort(key=lambda p: (not p.builtin, p.name))
    return out
