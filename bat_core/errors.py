"""Exceptions that the CLI turns into a one-line ``bat: error: ...`` message.

The pack and transfer errors live here too (re-exported by :mod:`bat_core.pack`
and :mod:`bat_core.targets`), so that a target plugin can import them without
pulling in the packer.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .pack.result import PackResult


class BatError(Exception):
    """Base class for every error ``bat`` reports to a user without a traceback."""


class BlendFileError(BatError):
    """A blend file cannot be read: not a blend file, truncated, corrupt DNA, ..."""

    def __init__(self, path: os.PathLike[str] | str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{os.fspath(path)}: {message}")


class UnknownPointerError(BlendFileError):
    """A pointer refers to an address no block has (an error only in strict mode)."""


class PackError(BatError):
    """The pack cannot be made or could not finish (bad target, unsafe path, disk full...).

    Raised by a target plugin for a permanent failure (access denied, no such
    bucket): the pack stops with this one line.  When files were already
    transferred, ``result`` tells which; the source files are untouched in every case.
    """

    def __init__(self, message: str, result: PackResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class RetryableError(Exception):
    """A transient failure of one file's transfer: a timeout, a 5xx, throttling, a reset.

    A target's ``send`` raises it; the transfer engine puts the file back for
    the next round instead of stopping the pack.  The message says what
    happened, in one line, without secrets.
    """


class Aborted(Exception):
    """Raised inside the packer and its transfer threads to unwind after :meth:`Packer.abort`."""
