"""Errors of a pack: what the CLI shows as one line, and the internal abort signal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import BatError

if TYPE_CHECKING:
    from .result import PackResult


class PackError(BatError):
    """The pack cannot be made or could not finish (bad target, unsafe path, disk full...).

    When files were already transferred, ``result`` tells which; the source
    files are untouched in every case.
    """

    def __init__(self, message: str, result: PackResult | None = None) -> None:
        super().__init__(message)
        self.result = result


class Aborted(Exception):
    """Raised inside the packer and its transfer threads to unwind after :meth:`Packer.abort`."""
