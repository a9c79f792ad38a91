"""Every hook a ``bat`` plugin may implement.

Hooks follow the ``llm`` style: most take a ``register`` callable, so one hook
call lets a plugin register as many things as it likes while the core keeps the
registry.  Hooks are called once, when the plugin registry is (re)built, never
per block or per file.  Implement them with ``@bat_core.hookimpl``.

Each hook is called plugin by plugin, in pluggy's order (the plugin registered
last first; ``tryfirst``/``trylast`` honoured): a plugin whose hook raises is
reported once and what that call registered is dropped, and the others go on
(:mod:`bat_core.plugin_failures`).  ``BAT_TRACE_PLUGINS=1`` prints every call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from .progress import TraceCallback
    from .targets import TargetScheme

hookspec = pluggy.HookspecMarker("bat")
hookimpl = pluggy.HookimplMarker("bat")


@hookspec
def register_target_schemes(register: Callable[[TargetScheme], None]) -> None:
    """Register the pack targets this plugin serves.

    Call ``register(TargetScheme(name=..., help=..., resolve=..., url_schemes=...))``
    once per scheme (:class:`bat_core.targets.TargetScheme`).  A target string
    that starts with one of the scheme's ``url_schemes`` (``gs://bucket/job``)
    goes to it by that prefix alone; ``recognises(target: str) -> bool`` claims
    strings without a URL scheme (``*.zip``), asked by ``priority``; the scheme
    registered with ``fallback=True`` (the directory target) takes the rest.
    ``resolve(target: str) -> Target`` turns the string into a
    :class:`bat_core.targets.Target`: where the pack lands and the
    :class:`bat_core.targets.Transfer` that puts files there.  Target strings
    stay strings until a scheme resolves them, so they may be URLs.

    Called with the other registering hooks when bat builds its plugin
    registry: once per process (the first command, trace or pack), again
    after a plugin is registered or unregistered from code, and for a call
    given ``plugins=[...]``.  ``bat pack --target-scheme NAME`` picks a scheme
    by name.
    """


@hookspec
def register_block_readers(register: Callable[[bytes | str, Callable[..., Any]], None]) -> None:
    """Register functions that find the assets one block uses.

    ``register(key, reader)``: ``key`` is a block code as bytes (``b"IM"``) or a
    DNA struct name as str (``"Image"``).  ``reader(block, context)`` yields
    :class:`bat_core.trace.BlockUsage` objects for the external files the block
    refers to.  Dispatch is a dictionary look-up on the block's code and struct
    name; several readers may share a key and all of them run.  A third-party
    reader that raises (anything but a :class:`bat_core.errors.BatError`) loses
    that block's results and is reported once; the trace goes on.
    """


@hookspec
def register_block_expanders(register: Callable[[bytes | str, Callable[..., Any]], None]) -> None:
    """Register functions that tell which other blocks a block depends on.

    ``register(key, expander)`` with keys as for :func:`register_block_readers`;
    ``expander(block, context)`` yields the blocks this one points at (ID pointers,
    node trees, modifiers, linked libraries...).  The tracer follows them to find
    assets used indirectly, in particular through data linked from libraries.
    """


@hookspec
def register_callbacks(register: Callable[[TraceCallback], None]) -> None:
    """Register progress callback objects that want to hear about every trace and pack.

    ``register(callback)`` with a :class:`bat_core.progress.TraceCallback` or
    :class:`bat_core.progress.PackCallback`.  They hear every
    :func:`bat_core.trace.trace` and every pack (``bat list`` and ``bat pack``
    included), after the callback the caller passes, always on the main
    thread.  An exception a third-party callback raises is reported once and
    ignored.  A callback that draws on the terminal should check
    :func:`bat_core.pack.console_mode` so that library users keep theirs.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands or groups to the ``bat`` command line (``cli.add_command``).

    Called once as the command line starts, before its arguments are parsed.
    A command should raise :class:`bat_core.errors.BatError` for a failure the
    user can act on: ``bat`` prints it as one ``bat: error:`` line, exit status 1.
    """
