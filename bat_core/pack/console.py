"""Whether progress may be drawn on the console, and how: set by the CLI, read by display plugins.

A display plugin registers its callback for every pack, but a program using
``bat_core`` as a library owns its terminal: nothing is drawn unless the
``bat`` command line turned console output on for the pack it runs.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator


class ConsoleMode(enum.Enum):
    OFF = "off"  # library use, --json, -q: print nothing
    BAR = "bar"  # a live progress bar (a terminal)
    LOG = "log"  # one plain line per event (not a terminal)


_mode = ConsoleMode.OFF


def console_mode() -> ConsoleMode:
    return _mode


@contextlib.contextmanager
def console_output(mode: ConsoleMode) -> Iterator[None]:
    """Allow display plugins to draw in ``mode`` for the duration of the block."""
    global _mode
    previous, _mode = _mode, mode
    try:
        yield
    finally:
        _mode = previous
