"""``BAT_TRACE_PLUGINS``: every hook call, its arguments and its result, on stderr.

For a plugin author asking "is my hook called at all, and what did it
register?".  bat calls the registering hooks one plugin at a time (so that a
failing plugin is skipped alone), so the trace shows each plugin's call, each
``register(...)`` it makes inside it, and what the call returned or raised.
Hook calls that go through pluggy's own ``pm.hook`` are traced with pluggy's
call monitoring.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

TRACE_ENV = "BAT_TRACE_PLUGINS"
PREFIX = "bat: plugin-trace:"


def enabled() -> bool:
    """On when ``BAT_TRACE_PLUGINS`` is set to anything but empty, ``0``, ``no`` or ``false``."""
    return os.environ.get(TRACE_ENV, "").strip().lower() not in ("", "0", "no", "false", "off")


def describe(value: Any) -> str:
    """A short, one-line picture of an argument or a result."""
    name = getattr(value, "__qualname__", None)
    module = getattr(value, "__module__", None)
    if callable(value) and name and not isinstance(value, type):
        return f"{module}.{name}" if module else name
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def write(line: str) -> None:
    sys.stderr.write(f"{PREFIX} {line}\n")
    sys.stderr.flush()


def traced_register(plugin: str, hook: str, register: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap the ``register`` callable handed to a hook so that each call is printed."""
    if not enabled():
        return register

    def tracing(*args: Any, **kwargs: Any) -> Any:
        parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
        write(f"    {plugin}: register({', '.join(parts)})")
        return register(*args, **kwargs)

    return tracing


def _arguments(kwargs: Mapping[str, Any]) -> str:
    # The register callable is bat's own: its name says all there is to say.
    return ", ".join(k if k == "register" else f"{k}={describe(v)}" for k, v in kwargs.items())


def call_start(plugin: str, hook: str, kwargs: Mapping[str, Any]) -> None:
    if enabled():
        write(f"{hook}({_arguments(kwargs)}) -> plugin {plugin}")


def call_end(plugin: str, hook: str, result: Any, error: BaseException | None) -> None:
    if enabled():
        outcome = f"raised {type(error).__name__}: {error}" if error is not None else f"returned {describe(result)}"
        write(f"{hook} -> plugin {plugin}: {outcome}")


def monitor(pm: pluggy.PluginManager) -> None:
    """Trace the hook calls made through ``pm.hook`` (those bat does not call one by one)."""

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        names = ", ".join(i.plugin_name for i in impls) or "(none)"
        write(f"{hook_name}({_arguments(kwargs)}) -> plugins {names}")

    def after(outcome: pluggy.Result[Any], hook_name: str, impls: Sequence[pluggy.HookImpl],
              kwargs: Mapping[str, Any]) -> None:
        error = outcome.exception
        result = f"raised {type(error).__name__}: {error}" if error is not None else \
            f"returned {describe(outcome.get_result())}"
        write(f"{hook_name}: {result}")

    pm.add_hookcall_monitoring(before, after)
