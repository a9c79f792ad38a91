"""Plugins that fail: recorded, reported once, and kept from breaking a run.

A plugin that raises while it is imported, while one of its hooks runs, or
later from a block reader, expander or progress callback it registered, must
not stop ``bat list`` or ``bat pack``: what it contributed is skipped, the
failure is logged once as a warning (stderr on the command line) and kept for
``bat plugins`` to show.  Errors of bat's own kind (:class:`BatError`, such as
a corrupt blend file found by a reader) are not plugin failures and propagate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import BatError
from .progress import PackCallback, TraceCallback

log = logging.getLogger("bat_core.plugins")

#: Exceptions a plugin may raise that are turned into a failure record.  SystemExit
#: is included: a plugin calling ``sys.exit()`` on import must not end bat.
PLUGIN_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit)


@dataclass(frozen=True)
class PluginFailure:
    """One thing a plugin did wrong, as ``bat plugins`` shows it."""

    #: The plugin's name (its entry-point name, or the name it was registered under).
    plugin: str
    distribution: str | None
    version: str | None
    #: ``import``, ``register`` (pluggy refused it), a hook name, or what raised
    #: later (``block reader for b'OB'``, ``callback Notify.pack_done``).
    stage: str
    #: ``ExceptionType: message``.
    error: str

    def describe(self) -> str:
        origin = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"plugin {self.plugin!r}{origin}: {self.stage}: {self.error}"


def format_exception(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class FailureLog:
    """Every plugin failure of this process; each one is logged the first time it happens."""

    def __init__(self) -> None:
        self._failures: list[PluginFailure] = []
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        #: Where a plugin name's distribution and version are looked up (set by the loader).
        self.origin: Callable[[str], tuple[str | None, str | None]] = lambda name: (None, None)

    def record(self, plugin: str, stage: str, exc: BaseException) -> PluginFailure:
        dist, version = self.origin(plugin)
        failure = PluginFailure(plugin, dist, version, stage, format_exception(exc))
        with self._lock:
            first = (plugin, stage) not in self._seen
            if first:
                self._seen.add((plugin, stage))
                self._failures.append(failure)
        if first:
            log.warning("%s; skipped", failure.describe())
            log.debug("traceback of the plugin failure above", exc_info=exc)
        return failure

    def failures(self, plugin: str | None = None) -> list[PluginFailure]:
        with self._lock:
            return [f for f in self._failures if plugin is None or f.plugin == plugin]

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._seen.clear()


FAILURES = FailureLog()


def call_guarded(plugin: str, stage: str, fn: Callable[[], object]) -> bool:
    """Run ``fn``; a plugin error is recorded and False returned instead of raising."""
    try:
        fn()
    except BatError:
        raise
    except PLUGIN_ERRORS as exc:
        FAILURES.record(plugin, stage, exc)
        return False
    return True


Handler = Callable[..., Any]


def guard_handler(plugin: str, what: str, fn: Handler) -> Handler:
    """Wrap a block reader or expander so that an exception skips its results for that block.

    The usages or blocks it yielded before raising are kept; the failure is
    reported once per handler, whatever the number of blocks it fails on.
    """
    stage = f"{what} {getattr(fn, '__qualname__', repr(fn))}"

    def guarded(block: Any, ctx: Any) -> Iterator[Any]:
        try:
            result: Iterable[Any] | None = fn(block, ctx)
            if result is not None:
                yield from result
        except BatError:
            raise
        except PLUGIN_ERRORS as exc:
            FAILURES.record(plugin, stage, exc)

    guarded.__wrapped__ = fn  # type: ignore[attr-defined]
    guarded.__qualname__ = f"guarded({stage})"
    return guarded


class GuardedCallback(PackCallback):
    """A plugin's progress callback whose exceptions are recorded instead of ending the pack."""

    def __init__(self, plugin: str, wrapped: TraceCallback) -> None:
        self._plugin = plugin
        self._wrapped = wrapped

    @property
    def wrapped(self) -> TraceCallback:
        return self._wrapped

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") or name == "wrapped" or not hasattr(PackCallback, name):
            return object.__getattribute__(self, name)
        wrapped = object.__getattribute__(self, "_wrapped")
        fn = getattr(wrapped, name, None)
        if fn is None:
            return _ignore
        plugin = object.__getattribute__(self, "_plugin")

        def call(*args: Any, **kwargs: Any) -> None:
            try:
                fn(*args, **kwargs)
            except BatError:
                raise
            except PLUGIN_ERRORS as exc:
                FAILURES.record(plugin, f"callback {type(wrapped).__name__}.{name}", exc)

        return call


def _ignore(*args: Any, **kwargs: Any) -> None:
    return None
