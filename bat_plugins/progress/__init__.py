"""Terminal progress for ``bat pack``: a live bar on a terminal, plain lines otherwise.

The display is registered for every pack but draws only when the ``bat``
command line turned console output on (:func:`bat_core.pack.console_output`);
a program using ``bat_core`` as a library keeps its terminal to itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bat_core import hookimpl

if TYPE_CHECKING:
    from bat_core.progress import TraceCallback


@hookimpl
def register_callbacks(register: Callable[[TraceCallback], None]) -> None:
    from .display import ConsoleProgress  # rich: imported only when a command builds the registry

    register(ConsoleProgress())
